"""
Hostile files: bad checkpoints, sidecars and bags, and outputs that cannot be written.

Broken or malicious checkpoints, garbage scale sidecars, bags cut off mid-write, a read-only
output folder and a full disk. Every case must end in a clear error that names the file and
the problem, leave nothing half-written and keep a previous output of the same name intact.
Files are real (written, truncated, corrupted here); only the operating system's refusal
(read-only, no space) is injected: this machine cannot mount a small or read-only filesystem.
"""

import errno
import json
import os
from pathlib import Path
import shutil

import cv2
import numpy as np
import pytest
import torch
from treeaspp_depth_ros.bag import bagio
from treeaspp_depth_ros.checkpoint import (atomic_torch_save, CheckpointError, load_checkpoint,
                                           read_scale_sidecar)
from treeaspp_depth_ros.cli import main
from treeaspp_depth_ros.conversions.image import depth_to_image_msg, rgb_to_image_msg
from treeaspp_depth_ros.conversions.stamps import make_header
from treeaspp_depth_ros.inference import DepthEstimator

TOPICS = ['--image-topic', '/camera/image_raw', '--depth-topic', '/camera/depth_gt']
SIZE = '64x64'


class Payload:
    """Pickles as a call of os.system: what a malicious checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


@pytest.fixture(scope='module')
def frames():
    from treeaspp_depth_ros.data.synthetic import generate_sequence
    return generate_sequence(seed=3, num_frames=4, width=64, height=48)


def _write_messages(writer: bagio.BagWriter, frames) -> None:
    writer.add_topic('/camera/image_raw', bagio.IMAGE)
    writer.add_topic('/camera/depth_gt', bagio.IMAGE)
    for k in range(len(frames.images)):
        stamp = 10**12 + k * 10**8
        header = make_header(stamp, 'cam')
        writer.write('/camera/image_raw', stamp, rgb_to_image_msg(frames.images[k], header))
        writer.write('/camera/depth_gt', stamp, depth_to_image_msg(frames.depths[k], header))


def _bag(path: Path, frames, storage: str = 'sqlite3') -> Path:
    with bagio.BagWriter(path, storage=storage) as writer:
        _write_messages(writer, frames)
    return path


def _advises_unsafe_loading(message: str) -> bool:
    """Whether a message passes on torch's advice: weights_only=False, or an allowlist."""
    return any(advice in message for advice in (
        'weights_only=False', 'set to `False`', 'add_safe_globals', 'safe_globals('))


@pytest.mark.parametrize('kind', ['text file', 'pickled code'])
def test_convert_checkpoint_never_suggests_weights_only_false(tmp_path, capsys, kind):
    """Torch's message says to retry with weights_only=False: ours gives the reason only."""
    path = tmp_path / 'in.pth'
    marker = tmp_path / 'code_ran'
    if kind == 'text file':
        path.write_text('# a config, not weights\n')
    else:
        torch.save({'state_dict': {}, 'extra': Payload(marker)}, path)
    err = _fails(capsys, ['convert-checkpoint', '--from', 'sc-sfmlearner', str(path),
                          str(tmp_path / 'out.pth')], str(path))
    assert not _advises_unsafe_loading(err), err
    assert ('Unsupported operand' if kind == 'text file' else 'arbitrary code') in err
    assert not marker.exists() and not (tmp_path / 'out.pth').exists()


def _fails(capsys, argv, *words) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    for word in words:
        assert word in err, err
    return err


@pytest.mark.parametrize('kind, words', [
    ('zero-byte', ['file is empty (0 bytes']),
    ('truncated', ['truncated, corrupt']),
    ('random bytes', ['truncated, corrupt']),
    ('text file', ['truncated, corrupt', 'Unsupported operand']),
    ('pickled code', ['weights_only=True', 'arbitrary code', 'posix.system']),
])
def test_broken_checkpoints_are_refused_with_the_reason(baseline_weights, tmp_path, capsys,
                                                        kind, words):
    path = tmp_path / f'{kind.replace(" ", "_")}.pt'
    marker = tmp_path / 'code_ran'
    if kind == 'zero-byte':
        path.write_bytes(b'')
    elif kind == 'truncated':
        path.write_bytes(baseline_weights.read_bytes()[:len(baseline_weights.read_bytes()) // 2])
    elif kind == 'random bytes':
        path.write_bytes(np.random.default_rng(0).bytes(8192))
    elif kind == 'text file':
        path.write_text('depth_net: not a checkpoint\n')
    else:
        ckpt = torch.load(baseline_weights, weights_only=True)
        ckpt['metrics'] = Payload(marker)
        torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    for word in words:
        assert word in str(caught.value)
    assert str(path) in str(caught.value) and not marker.exists()
    assert not _advises_unsafe_loading(str(caught.value))
    image = tmp_path / 'image.png'
    cv2.imwrite(str(image), np.zeros((48, 64, 3), np.uint8))
    _fails(capsys, ['predict', '--weights', str(path), str(image), '--output-dir',
                    str(tmp_path / 'out')], str(path), *words)
    assert not marker.exists()  # the payload never ran
    assert not (tmp_path / 'out').exists() or not any((tmp_path / 'out').iterdir())


@pytest.mark.parametrize('content, words', [
    (b'\xff\xfe\x00garbage\x80\x81' * 50, 'numeric depth_scale'),  # not even UTF-8
    (b'depth_scale: [1, 2\n', 'numeric depth_scale'),  # broken YAML
    (b'frames: 50\n', 'numeric depth_scale'),
    (b'- 1.0\n', 'numeric depth_scale'),
    (b'depth_scale: metres\n', 'numeric depth_scale'),
    (b'depth_scale: .nan\n', 'positive number'),
    (b'depth_scale: -2.0\n', 'positive number'),
    (b'depth_scale: 0\n', 'positive number'),
])
def test_garbage_scale_sidecar_is_an_error_naming_it(baseline_weights, tmp_path, content,
                                                     words):
    weights = tmp_path / 'model.pt'
    shutil.copy(baseline_weights, weights)
    sidecar = Path(str(weights) + '.scale.yaml')
    sidecar.write_bytes(content)
    with pytest.raises(ValueError, match=words) as caught:
        read_scale_sidecar(weights)
    assert str(sidecar) in str(caught.value)
    if b'nan' in content:  # the loader refuses it too (once: loading a network takes seconds)
        with pytest.raises(ValueError, match=words):
            DepthEstimator(weights, device='cpu', input_size=(64, 64))


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_bag_cut_off_mid_write_is_an_error_and_writes_nothing(tmp_path, capsys, frames,
                                                              baseline_weights, storage):
    """The recorder dies after some messages: no metadata.yaml, storage file as it was then."""
    writing = tmp_path / 'writing'
    writer = bagio.BagWriter(writing, storage=storage)
    writer.__enter__()
    _write_messages(writer, frames)
    cut = tmp_path / 'cut'
    shutil.copytree(writing, cut)  # the files on disk at the moment of the crash
    assert not (cut / 'metadata.yaml').exists()
    output = tmp_path / 'report'
    _fails(capsys, ['bag-eval', str(cut), *TOPICS, '--weights', str(baseline_weights),
                    '--input-size', SIZE, '--output', str(output)],
           str(cut), 'cut off', 'ros2 bag reindex')
    writer._writer.close()
    # a closed bag whose storage file lost its second half (a copy interrupted)
    whole = _bag(tmp_path / 'whole', frames, storage)
    data = next(p for p in whole.iterdir() if p.suffix in ('.db3', '.mcap'))
    data.write_bytes(data.read_bytes()[:data.stat().st_size // 2])
    _fails(capsys, ['bag-eval', str(whole), *TOPICS, '--weights', str(baseline_weights),
                    '--input-size', SIZE, '--output', str(output)], str(whole))
    assert not output.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.report.')]


def test_read_only_output_folder_is_a_clear_error(tmp_path, capsys, frames, baseline_weights,
                                                  monkeypatch):
    """The folder refuses new files (EROFS injected: as root, chmod cannot make one)."""
    bag = _bag(tmp_path / 'bag', frames)
    output = tmp_path / 'readonly' / 'report'

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), kwargs.get('dir'))

    monkeypatch.setattr(bagio.tempfile, 'mkdtemp', refuse)
    _fails(capsys, ['bag-eval', str(bag), *TOPICS, '--weights', str(baseline_weights),
                    '--input-size', SIZE, '--output', str(output)],
           f'cannot write {output}', 'Read-only file system')
    assert not output.exists()


def test_full_disk_leaves_nothing_half_written_and_the_previous_report_intact(
        tmp_path, capsys, frames, baseline_weights, monkeypatch):
    bag = _bag(tmp_path / 'bag', frames)
    output = tmp_path / 'report'
    argv = ['bag-eval', str(bag), *TOPICS, '--weights', str(baseline_weights),
            '--input-size', SIZE, '--output', str(output)]
    output.mkdir()  # a previous report of the same name (bag-eval replaces its own reports)
    (output / 'report.json').write_text(json.dumps({'frames': 3, 'previous': True}) + '\n')
    (output / 'report.md').write_text('# the previous report\n')
    before = {p.name: p.read_bytes() for p in output.iterdir()}
    real_write_text = Path.write_text

    def disk_fills_up(self, data, *args, **kwargs):
        if self.name == 'report.md':  # half of it reaches the disk, then ENOSPC
            real_write_text(self, data[:len(data) // 2], *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write_text(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, 'write_text', disk_fills_up)
    _fails(capsys, argv, f'writing {output} failed', 'No space left on device',
           'previous one is unchanged')
    assert {p.name: p.read_bytes() for p in output.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bag', 'report']


def test_full_disk_while_saving_a_checkpoint_keeps_the_previous_one(tmp_path, baseline_weights,
                                                                    monkeypatch):
    target = tmp_path / 'model.pt'
    shutil.copy(baseline_weights, target)
    before = target.read_bytes()
    ckpt = load_checkpoint(target)

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr('treeaspp_depth_ros.files.os.fsync', no_space)
    with pytest.raises(CheckpointError, match='No space left on device') as caught:
        atomic_torch_save(dict(ckpt, depth_scale=2.0), target)
    assert str(target) in str(caught.value) and 'previous file is unchanged' in str(caught.value)
    assert target.read_bytes() == before and list(tmp_path.iterdir()) == [target]
    monkeypatch.undo()
    fresh = tmp_path / 'new.pt'
    monkeypatch.setattr('treeaspp_depth_ros.files.os.fsync', no_space)
    with pytest.raises(CheckpointError, match='nothing was written'):
        atomic_torch_save(ckpt, fresh)
    assert list(tmp_path.iterdir()) == [target]
