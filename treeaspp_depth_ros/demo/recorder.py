"""
The demo's recorder: subscribes to the depth node's outputs and writes ``demo_output/``.

For each depth image it measures end-to-end latency (image stamp -> arrival here) and, when the
frame's ground truth is known, the median-scaled depth metrics; it saves colour-mapped depth
next to the RGB (and the ground truth) for a few frames, one point cloud of the node as PLY,
and finally ``report.json``.
"""

import json
from pathlib import Path
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import cv2
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image, PointCloud2

from ..conversions.colormap import colorbar_width, colorize_depth, depth_colorbar
from ..conversions.image import depth_image_msg_to_array
from ..conversions.pointcloud import pointcloud2_to_array
from ..conversions.stamps import header_stamp_ns
from ..metrics import aggregate_metrics, compute_depth_metrics
from ..node.qos import output_qos, points_qos

#: stamp (ns) -> (RGB, ground-truth depth in metres or None), or None for an unknown stamp
FrameLookup = Callable[[int], Optional[Tuple[np.ndarray, Optional[np.ndarray]]]]


def write_ply(path: Path, xyz: np.ndarray, rgb: Optional[np.ndarray]) -> int:
    """Binary little-endian PLY of the finite points; returns how many were written."""
    points = xyz.reshape(-1, 3)
    keep = np.isfinite(points).all(axis=1)
    fields = [('x', '<f4'), ('y', '<f4'), ('z', '<f4')]
    if rgb is not None:
        fields += [('red', 'u1'), ('green', 'u1'), ('blue', 'u1')]
    vertices = np.empty(int(keep.sum()), dtype=fields)
    for axis, name in enumerate('xyz'):
        vertices[name] = points[keep, axis]
    if rgb is not None:
        colours = rgb.reshape(-1, 3)[keep]
        for channel, name in enumerate(('red', 'green', 'blue')):
            vertices[name] = colours[:, channel]
    types = {'<f4': 'float', 'u1': 'uchar'}
    header = ['ply', 'format binary_little_endian 1.0',
              'comment treeaspp_depth_ros depth node point cloud (camera optical frame)',
              f'element vertex {len(vertices)}']
    header += [f'property {types[kind]} {name}' for name, kind in fields]
    header.append('end_header')
    with open(path, 'wb') as handle:
        handle.write(('\n'.join(header) + '\n').encode('ascii'))
        handle.write(vertices.tobytes())
    return len(vertices)


class DepthRecorder:
    """Collects the depth node's outputs on ``node`` (topics relative to the node's namespace)."""

    def __init__(self, node: Node, output: Path, lookup: FrameLookup, min_depth: float = 0.1,
                 max_depth: float = 10.0, images_to_save: int = 6,
                 expected_frames: int = 0) -> None:
        self.node, self.output, self.lookup = node, Path(output), lookup
        self.min_depth, self.max_depth = min_depth, max_depth
        self.images_to_save, self.expected_frames = images_to_save, expected_frames
        self.frames_dir = self.output / 'frames'
        self.frames_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.frames_dir.glob('frame_*.png'):  # an earlier run's images
            stale.unlink()
        self._lock = threading.Lock()
        self.latencies_s: List[float] = []
        self.arrivals: List[float] = []
        self.metrics: List[Dict[str, float]] = []
        self.metric_metrics: List[Dict[str, float]] = []  # the same frames, no rescaling
        self.saved_images: List[str] = []
        self.unknown_stamps = 0
        self.diagnostics: Dict[str, str] = {}
        self._streaming_rates: Dict[str, str] = {}
        self.ply: Optional[Dict[str, Any]] = None
        self._points_sub = None
        node.create_subscription(Image, 'depth/image', self._on_depth, output_qos())
        node.create_subscription(DiagnosticArray, 'diagnostics', self._on_diagnostics,
                                 output_qos())

    @property
    def frames(self) -> int:
        with self._lock:
            return len(self.arrivals)

    def want_point_cloud(self) -> None:
        """
        Subscribe to ``points`` until one cloud arrives.

        The node builds clouds only while someone listens, so asking for one cloud keeps the
        measured throughput that of the depth images.
        """
        if self._points_sub is None and self.ply is None:
            self._points_sub = self.node.create_subscription(
                PointCloud2, 'points', self._on_points, points_qos())

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        if not msg.status:
            return
        values = {kv.key: kv.value for kv in msg.status[0].values}
        # The node's rates are over a sliding window that is empty once the camera stops, and
        # the last message arrives after that: keep them from the last message that had frames
        # (counters stay the latest, which are the totals).
        windowed = {k: v for k, v in values.items() if k == 'fps' or k.endswith(('_p50', '_p95'))}
        try:
            streaming = float(values.get('fps', '0')) > 0
        except ValueError:
            streaming = False
        if streaming:
            self._streaming_rates = windowed
        self.diagnostics = dict(values, **self._streaming_rates)

    def _on_points(self, msg: PointCloud2) -> None:
        if self.ply is not None:
            return
        xyz, rgb = pointcloud2_to_array(msg)
        path = self.output / 'cloud.ply'
        count = write_ply(path, xyz, rgb)
        self.ply = {'file': path.name, 'points': count, 'stamp_ns': header_stamp_ns(msg),
                    'organised': f'{msg.width}x{msg.height}', 'frame_id': msg.header.frame_id}

    def _on_depth(self, msg: Image) -> None:
        arrived = time.time()
        stamp = header_stamp_ns(msg)
        depth = depth_image_msg_to_array(msg)
        with self._lock:
            self.arrivals.append(arrived)
            self.latencies_s.append(arrived - stamp * 1e-9)
            index = len(self.arrivals) - 1
        frame = self.lookup(stamp)
        if frame is None:
            self.unknown_stamps += 1
            return
        rgb, gt = frame
        metrics = None
        if gt is not None:
            gt = np.where(np.isfinite(gt), gt, 0.0).astype(np.float32)
            pred = np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)
            valid = (gt > self.min_depth) & (gt < self.max_depth) & (pred > 0)
            if valid.any():
                metrics = compute_depth_metrics(np.where(valid, pred, 0.0), np.where(
                    valid, gt, 0.0), min_depth=self.min_depth, max_depth=self.max_depth,
                    scale='median')
                # the published metres as they are: the weights' own scale, no rescaling
                metric = compute_depth_metrics(np.where(valid, pred, 0.0), np.where(
                    valid, gt, 0.0), min_depth=self.min_depth, max_depth=self.max_depth,
                    scale=1.0)
                with self._lock:
                    self.metrics.append(metrics)
                    self.metric_metrics.append(metric)
        if self._should_save(index):
            self._save_side_by_side(index, rgb, depth, gt, metrics)

    def _should_save(self, index: int) -> bool:
        if len(self.saved_images) >= self.images_to_save:
            return False
        spacing = max(1, self.expected_frames // max(1, self.images_to_save))
        return index % spacing == 0

    def _save_side_by_side(self, index: int, rgb: np.ndarray, depth: np.ndarray,
                           gt: Optional[np.ndarray], metrics: Optional[Dict[str, float]]) -> None:
        """RGB | depth | ground truth | colour bar in metres, all on one colour scale."""
        if gt is not None and metrics is not None:
            # prediction median-scaled to the ground truth, so equal colours mean equal depth
            low, high = np.percentile(gt[gt > 0], [2.0, 98.0])
            shown = [depth * float(metrics['scale']), np.where(gt > 0, gt, np.nan)]
        else:
            valid = depth[np.isfinite(depth) & (depth > 0)]
            low, high = (np.percentile(valid, [2.0, 98.0]) if valid.size
                         else (self.min_depth, self.max_depth))
            shown = [depth]
        panels = [rgb] + [colorize_depth(d, low, high) for d in shown]
        panels.append(depth_colorbar(rgb.shape[0], float(low), float(high),
                                     width=colorbar_width(rgb.shape[0])))
        image = np.hstack(panels)
        path = self.frames_dir / f'frame_{index:04d}.png'
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        self.saved_images.append(str(path.relative_to(self.output)))

    def report(self, **extra: Any) -> Dict[str, Any]:
        """Summary of everything recorded (plus ``extra`` fields)."""
        with self._lock:
            arrivals, latencies = list(self.arrivals), list(self.latencies_s)
            metrics, metric = list(self.metrics), list(self.metric_metrics)
        frames = len(arrivals)
        span = arrivals[-1] - arrivals[0] if frames > 1 else 0.0
        p50, p95 = (np.percentile(latencies, [50.0, 95.0]) * 1000.0).tolist() if latencies \
            else (None, None)
        summary = aggregate_metrics(metrics) if metrics else {}
        report: Dict[str, Any] = {
            'frames': frames,
            'fps': (frames - 1) / span if span > 0 else 0.0,
            'latency_ms_p50': p50,
            'latency_ms_p95': p95,
            'abs_rel': summary.get('abs_rel'),
            'metrics_median_scaled': summary,
            # the node's metres against the ground truth (its diagnostics say the scale's origin)
            'abs_rel_metric': aggregate_metrics(metric)['abs_rel'] if metric else None,
            'metrics_metric': aggregate_metrics(metric) if metric else {},
            'frames_with_ground_truth': len(metrics),
            'outputs_with_unknown_stamp': self.unknown_stamps,
            'side_by_side_images': self.saved_images,
            'point_cloud': self.ply,
            'node_diagnostics': self.diagnostics,
        }
        report.update(extra)
        return report


def write_report(output: Path, report: Dict[str, Any]) -> Path:
    """``output/report.json`` (indented, key order kept: the headline numbers come first)."""
    path = Path(output) / 'report.json'
    path.write_text(json.dumps(report, indent=2) + '\n')
    return path
