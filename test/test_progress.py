"""Progress of long steps: lines with a count and time left when the output is not a terminal."""

import io

from treeaspp_depth_ros.progress import format_duration, Progress, track


def test_lines_say_what_how_far_and_how_long_left():
    stream = io.StringIO()  # not a terminal: plain lines, never a carriage-return bar
    with Progress(4, '[x] predicting', 'frames', interval_s=0.0, stream=stream) as progress:
        for _ in range(2):
            progress.update()
        progress.set_postfix(loss='0.5')
    lines = stream.getvalue().splitlines()
    assert lines[0] == '[x] predicting: 4 frames to do'
    assert lines[1].startswith('[x] predicting: 1/4 frames') and 'left' in lines[1]
    assert lines[2].startswith('[x] predicting: 2/4 frames') and 'left' in lines[2]
    assert 'done in' in lines[-1] and lines[-1].endswith('loss 0.5')
    assert '\r' not in stream.getvalue()


def test_lines_are_rate_limited_and_disabled_progress_is_silent():
    stream = io.StringIO()
    assert list(track(range(50), 50, 'quick', stream=stream, interval_s=3600.0)) == \
        list(range(50))
    assert len(stream.getvalue().splitlines()) == 2  # the start and the final line
    silent = io.StringIO()
    list(track(range(5), 5, 'rank 1', stream=silent, enabled=False))
    assert silent.getvalue() == ''


def test_durations_read_like_a_person_writes_them():
    assert format_duration(42.4) == '42 s'
    assert format_duration(185) == '3 min 05 s'
    assert format_duration(3720) == '1 h 02 min'
