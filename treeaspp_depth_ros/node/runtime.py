"""
Run-time state of the depth node: the newest-frame slot, frame statistics and diagnostics.

The subscription callback only drops the message into a one-slot buffer and returns, so DDS
never waits for inference; the worker thread always takes the newest frame and every frame it
never saw is counted as dropped. Statistics are kept over a sliding window so diagnostics
report current fps and latency percentiles with bounded memory.
"""

import collections
import threading
import time
from typing import Any, Deque, Dict, Optional, Tuple

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
import numpy as np


class NewestFrameSlot:
    """A one-element mailbox: ``put`` replaces, ``take`` waits. Thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Optional[Any] = None
        self._closed = False

    def put(self, item: Any) -> bool:
        """Store ``item``; return True when it replaced one nobody took (a dropped frame)."""
        with self._cond:
            replaced = self._item is not None
            self._item = item
            self._cond.notify()
        return replaced

    def take(self, timeout: float) -> Optional[Any]:
        """Return the newest item (clearing the slot), or None after ``timeout`` or close."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def clear(self) -> None:
        with self._cond:
            self._item = None

    def close(self) -> None:
        """Wake the worker so it can exit."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class FrameStats:
    """Counters and sliding-window timings, read by the diagnostics timer. Thread-safe."""

    WINDOW = 100

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: Dict[str, int] = collections.Counter()
        self._latency: Deque[float] = collections.deque(maxlen=self.WINDOW)
        self._processing: Deque[float] = collections.deque(maxlen=self.WINDOW)
        self._inference: Deque[float] = collections.deque(maxlen=self.WINDOW)
        self._work: Deque[float] = collections.deque(maxlen=self.WINDOW)
        self._published_at: Deque[float] = collections.deque(maxlen=self.WINDOW)
        #: input problems by kind (``truncated``, ``stamp_backwards``, ...): what was wrong
        self.problems: Dict[str, int] = collections.Counter()
        self.last_error = ''

    def count(self, name: str, error: str = '', kind: str = '') -> None:
        """Count one event ``name``; ``kind`` also counts the kind of input problem."""
        with self._lock:
            self.counters[name] += 1
            if kind:
                self.problems[kind] += 1
            if error:
                self.last_error = error

    def problem(self, kind: str) -> None:
        """Count an input problem that did not stop the frame (a stamp going backwards)."""
        with self._lock:
            self.problems[kind] += 1

    def frame_done(self, latency_s: float, processing_s: float, inference_s: float,
                   work_s: float) -> None:
        """
        Record one published frame.

        ``latency_s``: image stamp to published; ``processing_s``: received to published
        (includes the wait in the slot); ``inference_s``: the estimator's predict;
        ``work_s``: the worker's whole time on the frame (decode, predict, build, publish).
        """
        with self._lock:
            self.counters['published'] += 1
            self._latency.append(latency_s)
            self._processing.append(processing_s)
            self._inference.append(inference_s)
            self._work.append(work_s)
            self._published_at.append(time.monotonic())

    def snapshot(self) -> Dict[str, Any]:
        """Counters plus fps and p50/p95 (milliseconds) over the window."""
        with self._lock:
            out: Dict[str, Any] = dict(self.counters)
            times = list(self._published_at)
            for name, values in (('latency', self._latency), ('processing', self._processing),
                                 ('inference', self._inference), ('work', self._work)):
                p50, p95 = _percentiles(values)
                out[f'{name}_ms_p50'] = p50
                out[f'{name}_ms_p95'] = p95
            out['last_error'] = self.last_error
            out['problems'] = dict(self.problems)
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        recent = time.monotonic() - times[-1] if times else float('inf')
        # no frame for twice the window's mean interval: the stream stopped, fps is 0
        if span > 0 and recent < 2.0 * span / (len(times) - 1) + 1.0:
            out['fps'] = (len(times) - 1) / span
        else:
            out['fps'] = 0.0
        return out


def camera_info_problem(msg: Any) -> str:
    """
    Name what is wrong with a CameraInfo (``''`` when it is usable) for the diagnostics.

    The intrinsics resolver falls back to the parameters for all of these; this only says
    which kind of bad CameraInfo arrived, so an operator can fix the driver.
    """
    k = np.asarray(msg.k, dtype=np.float64)
    if int(msg.width) <= 0 or int(msg.height) <= 0:
        return 'camera_info_zero_size'
    if not np.all(np.isfinite(k)):
        return 'camera_info_nonfinite'
    focal = k[[0, 4]]
    if np.any(focal < 0):
        return 'camera_info_negative_focal'
    if np.any(focal == 0):
        return 'camera_info_zero_focal'
    return ''


def _percentiles(values: Deque[float]) -> Tuple[float, float]:
    if not values:
        return float('nan'), float('nan')
    p50, p95 = np.percentile(np.fromiter(values, float), [50.0, 95.0]) * 1000.0
    return float(p50), float(p95)


def diagnostic_status(name: str, hardware_id: str, snapshot: Dict[str, Any], image_topic: str,
                      details: Dict[str, Any]) -> DiagnosticStatus:
    """
    One status from a :meth:`FrameStats.snapshot`: WARN naming the problems, else OK.

    Problems are what an operator must act on: no input, a GPU lost, frames that fail, bad
    input of any kind. The values list the counters and timings, one count per kind of input
    problem seen (``input_problem_<kind>``), then ``details`` (device, model, scale) as given.
    """
    problems = []
    if snapshot.get('received', 0) == 0:
        problems.append(f'no images received on {image_topic}')
    if snapshot.get('gpu_fallbacks', 0):
        problems.append('running on CPU after a GPU failure')
    if snapshot.get('invalid', 0) or snapshot.get('errors', 0):
        problems.append(f'{snapshot.get("invalid", 0)} invalid frames, '
                        f'{snapshot.get("errors", 0)} errors (last: {snapshot["last_error"]})')
    if snapshot.get('waiting_floor', 0) and not snapshot.get('published', 0):
        problems.append('no floor seen yet: the camera_height scale is unknown, nothing '
                        'published')
    kinds = snapshot.get('problems', {})
    if kinds:
        problems.append('input problems: ' + ', '.join(
            f'{kind} {count}' for kind, count in sorted(kinds.items())))
    status = DiagnosticStatus(name=name, hardware_id=hardware_id)
    status.level = DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
    status.message = '; '.join(problems) if problems else (
        f'{snapshot["fps"]:.1f} fps, latency p50 {snapshot["latency_ms_p50"]:.0f} ms')
    values: Dict[str, Any] = {
        'frames_received': snapshot.get('received', 0),
        'frames_published': snapshot.get('published', 0),
        'frames_dropped': snapshot.get('dropped', 0),
        'frames_invalid': snapshot.get('invalid', 0),
        'frames_waiting_camera_info': snapshot.get('waiting_camera_info', 0),
        'frames_waiting_floor': snapshot.get('waiting_floor', 0),
        'errors': snapshot.get('errors', 0),
        'gpu_fallbacks': snapshot.get('gpu_fallbacks', 0),
        'fps': f'{snapshot["fps"]:.2f}',
    }
    for key in ('latency_ms_p50', 'latency_ms_p95', 'processing_ms_p50', 'processing_ms_p95',
                'inference_ms_p50', 'work_ms_p50'):
        values[key] = f'{snapshot[key]:.1f}'
    values.update({f'input_problem_{kind}': count for kind, count in sorted(kinds.items())})
    values.update(details)
    values.update(image_topic=image_topic, last_error=snapshot['last_error'])
    status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
    return status
