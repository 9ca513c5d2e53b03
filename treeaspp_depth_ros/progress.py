"""
Progress of long steps: a tqdm bar on a terminal, a plain line every few seconds otherwise.

A command that works for a minute without a word looks hung, and a carriage-return bar is
noise in a log file or CI output; this picks the right one for where the output goes, and both
say what is being done, how far it is and about how long is left.
"""

import sys
import time
from typing import Any, Iterable, Iterator, Optional, TextIO, TypeVar

Item = TypeVar('Item')


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s`` or ``1 h 02 min``: durations as people read them."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f'{seconds:.0f} s'
    if seconds < 3600:
        return f'{int(seconds // 60)} min {int(seconds % 60):02d} s'
    return f'{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min'


class Progress:
    """Count work done towards a total; report it as a bar (terminal) or periodic lines."""

    def __init__(self, total: Optional[int], what: str, unit: str = 'it', initial: int = 0,
                 bar: Optional[bool] = None, interval_s: float = 5.0,
                 stream: Optional[TextIO] = None, enabled: bool = True) -> None:
        """
        Report progress on `stream` (stderr by default).

        `bar` None picks a tqdm bar when the stream is a terminal; False always prints lines,
        at most one per `interval_s` seconds. `enabled` False reports nothing (other ranks).
        """
        self.total, self.what, self.unit = total, what, unit
        self.done = self._start_count = initial
        self.postfix = ''
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s = interval_s
        self.enabled = enabled
        self._started = self._last_line = time.monotonic()
        self._bar = None
        if enabled and (bar if bar is not None else _is_terminal(self.stream)):
            from tqdm import tqdm
            self._bar = tqdm(total=total, initial=initial, desc=what, unit=unit,
                             dynamic_ncols=True, file=self.stream)
        elif enabled:  # say at once what is being done; the first count may be a while off
            size = f'{total} {unit}' if total else unit
            print(f'{what}: {size} to do', file=self.stream, flush=True)

    def __enter__(self) -> 'Progress':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, count: int = 1) -> None:
        """Record `count` more units done; print a line when one is due."""
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
        elif self.enabled and time.monotonic() - self._last_line >= self.interval_s:
            self._print_line()

    def set_postfix(self, **values: Any) -> None:
        """Extra figures shown after the count (e.g. the loss)."""
        self.postfix = ', '.join(f'{k} {v}' for k, v in values.items())
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)

    def close(self) -> None:
        """End the bar, or print the final line when anything was counted."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self.done > self._start_count:
            self._print_line(final=True)
        self.enabled = False

    def line(self, final: bool = False) -> str:
        """Format one progress line: what, count, rate, time left or taken, extras."""
        elapsed = time.monotonic() - self._started
        counted = self.done - self._start_count
        rate = counted / elapsed if elapsed > 0 else 0.0
        parts = [f'{self.done}/{self.total} {self.unit}' if self.total else
                 f'{self.done} {self.unit}']
        if rate > 0:
            parts.append(f'{rate:.2f} {self.unit}/s' if rate < 10 else
                         f'{rate:.0f} {self.unit}/s')
        if final:
            parts.append(f'done in {format_duration(elapsed)}')
        elif self.total and rate > 0:
            parts.append(f'about {format_duration((self.total - self.done) / rate)} left')
        if self.postfix:
            parts.append(self.postfix)
        return f'{self.what}: ' + ', '.join(parts)

    def _print_line(self, final: bool = False) -> None:
        print(self.line(final), file=self.stream, flush=True)
        self._last_line = time.monotonic()


def track(items: Iterable[Item], total: Optional[int], what: str, unit: str = 'it',
          **options: Any) -> Iterator[Item]:
    """Yield `items`, counting each one in a :class:`Progress`."""
    with Progress(total, what, unit, **options) as progress:
        for item in items:
            yield item
            progress.update()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
