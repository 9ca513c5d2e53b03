"""
Soak: the real depth node for minutes at full camera rate, with memory and tail latency over time.

Three runs, each writing JSON and a PNG of its samples over time to a fresh run folder
(``--output-dir benchmarks/results`` regenerates the committed ones):

- ``node`` (``soak_node.json``): the node process and a 640x480 rgb8 camera process at 30 Hz
  (best effort, the package's shared-memory Fast DDS profile), every output subscribed here, for
  ``--minutes`` (default 10). Every 10 s: the node's RSS and threads, output fps, latency (image
  stamp to arrival here) p50/p95/p99 over those 10 s, drops and errors from its diagnostics.
- ``lifecycle`` (``soak_lifecycle.json``): the managed node under the same load, cycled through
  deactivate / cleanup / configure / activate ``--cycles`` times (default 50); after each cycle
  the first new depth frame, RSS, threads and the node's publishers and subscriptions.
- ``bag`` (``soak_bag_eval.json``): ``bag-eval --mode live`` on a bag of the kitchen frames
  looped for ``--bag-minutes`` (default 3) at 15 Hz, 320x240; RSS of bag-eval and its node.

Targets (issue 13): RSS growth after the first minute < 50 MB, p99 latency of the last minute
<= 1.2x the first minute's, zero errors; lifecycle: RSS, threads and publishers flat. The
baseline of each run is its own first minute (or first cycles). The machine's other load is
not controlled: say so when quoting the figures.

Usage: python -m benchmarks.soak_node [--mode node|lifecycle|bag|all] [--minutes 10]
"""

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from benchmarks.common import (add_output_option, machine_info, percentile, resolve_output,
                               write_json)
import cv2
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from treeaspp_depth_ros.bag import bagio
from treeaspp_depth_ros.bag.report import line_chart
from treeaspp_depth_ros.conversions import make_camera_info, rgb_to_image_msg
from treeaspp_depth_ros.conversions.image import depth_to_image_msg
from treeaspp_depth_ros.conversions.stamps import cdr_header_stamp_ns, make_header
from treeaspp_depth_ros.node.description import describe_depth_node
from treeaspp_depth_ros.node_launcher import isolated_env, NodeProcess, PACKAGE_ROOT, Probe
from treeaspp_depth_ros.weights import DEMO_WEIGHTS

WEIGHTS = DEMO_WEIGHTS
KITCHEN = PACKAGE_ROOT.parent / 'shared' / 'data' / '7scenes-redkitchen'
K_KITCHEN = np.array([[585.0, 0.0, 320.0], [0.0, 585.0, 240.0], [0.0, 0.0, 1.0]])
PERIOD_S = 10.0
MB = 2.0 ** 20


def proc_status(pid: int) -> Dict[str, int]:
    """RSS (bytes) and thread count of a process from /proc; empty once it has exited."""
    out = {}
    try:
        with open(f'/proc/{pid}/status') as handle:
            for line in handle:
                if line.startswith('VmRSS:'):
                    out['rss'] = int(line.split()[1]) * 1024
                elif line.startswith('Threads:'):
                    out['threads'] = int(line.split()[1])
    except OSError:
        pass
    return out


def children(pid: int) -> List[int]:
    try:
        with open(f'/proc/{pid}/task/{pid}/children') as handle:
            return [int(v) for v in handle.read().split()]
    except OSError:
        return []


class Arrivals:
    """Depth frames as they arrive here: (monotonic arrival, latency from image stamp)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: List[Tuple[float, float]] = []

    def add(self, data: bytes) -> None:
        latency = (time.time_ns() - cdr_header_stamp_ns(data)) * 1e-9
        with self._lock:
            self.items.append((time.monotonic(), latency))

    def between(self, start: float, end: float) -> List[float]:
        with self._lock:
            return [lat for t, lat in self.items if start <= t < end]

    def count(self) -> int:
        with self._lock:
            return len(self.items)


def _latency_stats(latencies: List[float]) -> Dict[str, Optional[float]]:
    if not latencies:
        return {'p50_ms': None, 'p95_ms': None, 'p99_ms': None}
    ms = [v * 1000.0 for v in latencies]
    return {f'p{q}_ms': round(percentile(ms, q), 1) for q in (50, 95, 99)}


class Rig:
    """A depth node process, a 30 Hz camera process and this process's subscriptions."""

    def __init__(self, workdir: Path, lifecycle: bool, threads: int) -> None:
        self.domain = 1 + (os.getpid() + 53) % 100
        self.ns = f'/soak_{os.getpid()}'
        self.name = f'{self.ns}/depth_node'
        parameters = {'weights': str(WEIGHTS), 'device': 'cpu', 'diagnostics_period': 1.0}
        if threads:
            parameters['cpu_threads'] = threads
        description = describe_depth_node(namespace=self.ns, lifecycle=lifecycle,
                                          parameters=parameters)
        self.probe = Probe(self.domain, 'soak_probe')
        self.node = NodeProcess.depth_node(description, isolated_env(self.domain),
                                           workdir / 'node.log')
        self.arrivals = Arrivals()
        # raw CDR: the probe reads stamps from the bytes instead of deserialising every
        # image and cloud in Python, which would compete with the node for the cores (a C++
        # consumer such as RTAB-Map pays no such cost)
        self.probe.node.create_subscription(Image, f'{self.ns}/depth/image', self.arrivals.add,
                                            _output_qos(), raw=True)
        self.counts: Dict[str, int] = {}
        for kind, topic in ((CameraInfo, 'depth/camera_info'), (PointCloud2, 'points'),
                            (Image, 'depth/image_colored')):
            self.counts[topic] = 0
            self.probe.node.create_subscription(kind, f'{self.ns}/{topic}',
                                                self._counting(topic), _output_qos(), raw=True)
        self.diagnostics = self.probe.subscribe(DiagnosticArray, f'{self.ns}/diagnostics',
                                                maxlen=1)
        source = str(KITCHEN) if KITCHEN.is_dir() else 'synthetic'
        self.source = ('7scenes-redkitchen' if KITCHEN.is_dir() else 'synthetic') + \
            ' 640x480 rgb8, looped'
        self.camera = NodeProcess(
            [sys.executable, '-m', 'treeaspp_depth_ros.demo.camera', '--source', source,
             '--rate', '30', '--loop', '--ros-args', '-r', f'__ns:={self.ns}'],
            isolated_env(self.domain), workdir / 'camera.log')

    def _counting(self, topic: str) -> Callable[[Any], None]:
        def counted(msg: Any) -> None:
            self.counts[topic] += 1  # only the probe's executor thread writes
        return counted

    def diag(self) -> Dict[str, str]:
        msg = self.diagnostics.latest()
        return {} if msg is None else {kv.key: kv.value for kv in msg.status[0].values}

    def wait_output(self, after: int, timeout: float = 120.0) -> bool:
        return bool(self.probe.wait_for(
            lambda: self.arrivals.count() > after or not self.node.alive(), timeout)) \
            and self.node.alive()

    def endpoints(self) -> Dict[str, int]:
        """Count the node's publishers and subscriptions in the graph (leaks show here)."""
        node = self.probe.node
        name, ns = 'depth_node', self.ns
        return {'publishers': len(node.get_publisher_names_and_types_by_node(name, ns)),
                'subscriptions': len(node.get_subscriber_names_and_types_by_node(name, ns))}

    def close(self) -> Dict[str, Any]:
        status, seconds = self.node.stop()
        self.camera.stop()
        self.probe.close()
        return {'exit_status': status, 'stop_s': round(seconds, 2)}


def _output_qos():
    from treeaspp_depth_ros.node.qos import output_qos
    return output_qos()


def _sample(rig: Rig, t0: float, start: float, end: float) -> Dict[str, Any]:
    status, diag = proc_status(rig.node.pid), rig.diag()
    window = rig.arrivals.between(start, end)
    return {
        't_s': round(end - t0, 1), 'rss_mb': round(status.get('rss', 0) / MB, 1),
        'threads': status.get('threads'), 'fps': round(len(window) / (end - start), 2),
        **_latency_stats(window),
        'frames_received': int(diag.get('frames_received', 0)),
        'frames_published': int(diag.get('frames_published', 0)),
        'frames_dropped': int(diag.get('frames_dropped', 0)),
        'frames_invalid': int(diag.get('frames_invalid', 0)),
        'errors': int(diag.get('errors', 0)),
        'outputs_received': dict(rig.counts, **{'depth/image': rig.arrivals.count()}),
    }


def soak_node(args: argparse.Namespace, workdir: Path) -> Dict[str, Any]:
    rig = Rig(workdir, lifecycle=False, threads=args.threads)
    try:
        if not rig.wait_output(0):
            raise SystemExit('the node published nothing:\n' + rig.node.log_tail(30))
        t0 = time.monotonic()
        samples = []
        end_at = t0 + args.minutes * 60.0
        start = t0
        while start < end_at - 1e-6 and rig.node.alive():
            time.sleep(max(0.0, start + PERIOD_S - time.monotonic()))
            end = time.monotonic()
            samples.append(_sample(rig, t0, start, end))
            print(json.dumps(samples[-1]), flush=True)
            start = end
        first = rig.arrivals.between(t0, t0 + 60.0)
        last = rig.arrivals.between(start - 60.0, start)
        diag = rig.diag()
    finally:
        stopped = rig.close()
    at_minute = next((s for s in samples if s['t_s'] >= 60.0 - 1e-6), samples[0])
    growth = samples[-1]['rss_mb'] - at_minute['rss_mb']
    p99_first, p99_last = (_latency_stats(first)['p99_ms'], _latency_stats(last)['p99_ms'])
    errors = samples[-1]['errors']
    return {
        'mode': 'node', 'minutes': args.minutes, 'camera': rig.source + ', 30 Hz best effort',
        'node': {'weights': 'demo default_weights.pt', 'device': 'cpu',
                 'input_size': diag.get('input_size'), 'cpu_threads': diag.get('cpu_threads')},
        'samples': samples,
        'summary': {
            'rss_mb_at_1min': at_minute['rss_mb'], 'rss_mb_end': samples[-1]['rss_mb'],
            'rss_growth_after_1min_mb': round(growth, 1),
            'p99_ms_first_minute': p99_first, 'p99_ms_last_minute': p99_last,
            'p99_ratio_last_first': round(p99_last / p99_first, 3),
            'fps_mean': round(float(np.mean([s['fps'] for s in samples])), 2),
            'frames_received': samples[-1]['frames_received'],
            'frames_published': samples[-1]['frames_published'],
            'frames_dropped': samples[-1]['frames_dropped'], 'errors': errors,
            'threads_first_last': [samples[0]['threads'], samples[-1]['threads']],
            **stopped,
        },
        'targets': {'rss_growth_lt_50mb': growth < 50.0,
                    'p99_last_le_1p2x_first': p99_last <= 1.2 * p99_first,
                    'zero_errors': errors == 0},
    }


def soak_lifecycle(args: argparse.Namespace, workdir: Path) -> Dict[str, Any]:
    rig = Rig(workdir, lifecycle=True, threads=args.threads)
    cycles = []
    try:
        assert rig.probe.lifecycle_transition(rig.name, 'configure'), rig.node.log_tail()
        assert rig.probe.lifecycle_transition(rig.name, 'activate'), rig.node.log_tail()
        if not rig.wait_output(0):
            raise SystemExit('the node published nothing:\n' + rig.node.log_tail(30))
        time.sleep(1.0)
        t0 = time.monotonic()
        baseline = {**proc_status(rig.node.pid), **rig.endpoints()}
        for cycle in range(1, args.cycles + 1):
            started = time.monotonic()
            for label in ('deactivate', 'cleanup', 'configure', 'activate'):
                if not rig.probe.lifecycle_transition(rig.name, label):
                    raise SystemExit(f'cycle {cycle}: {label} failed\n' + rig.node.log_tail())
            activated = time.monotonic()
            count = rig.arrivals.count()
            served = rig.wait_output(count, 60.0)
            first_frame = time.monotonic() - activated
            time.sleep(1.0)  # under load for a moment before measuring
            status = proc_status(rig.node.pid)
            cycles.append({'cycle': cycle, 't_s': round(time.monotonic() - t0, 1),
                           'cycle_s': round(activated - started, 2),
                           'first_frame_s': round(first_frame, 2), 'served': served,
                           'rss_mb': round(status.get('rss', 0) / MB, 1),
                           'threads': status.get('threads'), **rig.endpoints(),
                           'errors': int(rig.diag().get('errors', 0))})
            print(json.dumps(cycles[-1]), flush=True)
    finally:
        stopped = rig.close()
    settled = cycles[min(4, len(cycles) - 1)]  # after 5 cycles: allocator caches warm
    growth = cycles[-1]['rss_mb'] - settled['rss_mb']
    # from the first cycle on: the first configure of a process may start lazy threads once
    flat = {key: len({c[key] for c in cycles}) == 1
            for key in ('threads', 'publishers', 'subscriptions')}
    return {
        'mode': 'lifecycle', 'cycles': args.cycles, 'camera': rig.source + ', 30 Hz',
        'cycle': 'deactivate, cleanup, configure, activate; then the first new depth frame',
        'baseline_before_cycling': {'rss_mb': round(baseline.get('rss', 0) / MB, 1),
                                    'threads': baseline.get('threads'),
                                    'publishers': baseline['publishers'],
                                    'subscriptions': baseline['subscriptions']},
        'samples': cycles,
        'summary': {'rss_mb_after_5_cycles': settled['rss_mb'],
                    'rss_mb_end': cycles[-1]['rss_mb'],
                    'rss_growth_after_5_cycles_mb': round(growth, 1),
                    'all_cycles_served': all(c['served'] for c in cycles),
                    'first_frame_s_max': max(c['first_frame_s'] for c in cycles),
                    'flat': flat, **stopped},
        'targets': {'rss_growth_lt_50mb': growth < 50.0, 'threads_flat': flat['threads'],
                    'publishers_flat': flat['publishers'] and flat['subscriptions'],
                    'zero_errors': cycles[-1]['errors'] == 0},
    }


def _looped_bag(path: Path, minutes: float, fps: float = 15.0) -> int:
    """Kitchen frames (320x240) repeated for ``minutes`` at ``fps``; returns the frame count."""
    files = sorted(KITCHEN.glob('frame-*.color.png'))
    if not files:
        raise SystemExit(f'{KITCHEN} not present: the bag soak needs the kitchen frames')
    frames = []
    for color in files:
        rgb = cv2.resize(cv2.cvtColor(cv2.imread(str(color)), cv2.COLOR_BGR2RGB), (320, 240),
                         interpolation=cv2.INTER_AREA)
        depth = cv2.imread(str(color).replace('.color.png', '.depth.png'), cv2.IMREAD_UNCHANGED)
        depth = cv2.resize(depth, (320, 240), interpolation=cv2.INTER_NEAREST)
        depth = np.where(depth == 65535, 0, depth).astype(np.float32) / 1000.0
        frames.append((rgb, depth))
    count = int(minutes * 60 * fps)
    K = K_KITCHEN * np.array([[0.5], [0.5], [1.0]])
    with bagio.BagWriter(path) as writer:
        for topic, msgtype in (('/camera/image_raw', bagio.IMAGE),
                               ('/camera/camera_info', bagio.CAMERA_INFO),
                               ('/camera/depth_gt', bagio.IMAGE)):
            writer.add_topic(topic, msgtype)
        for index in range(count):
            stamp = 10**18 + int(index * 1e9 / fps)
            rgb, depth = frames[index % len(frames)]
            header = make_header(stamp, 'camera_color_optical_frame')
            writer.write('/camera/image_raw', stamp, rgb_to_image_msg(rgb, header))
            writer.write('/camera/camera_info', stamp, make_camera_info(K, 320, 240, header))
            writer.write('/camera/depth_gt', stamp, depth_to_image_msg(depth, header, '16UC1'))
    return count


def soak_bag(args: argparse.Namespace, workdir: Path) -> Dict[str, Any]:
    bag = workdir / 'looped_bag'
    frames = _looped_bag(bag, args.bag_minutes)
    output = workdir / 'eval'
    command = [sys.executable, '-m', 'treeaspp_depth_ros.cli', 'bag-eval', str(bag),
               '--image-topic', '/camera/image_raw', '--depth-topic', '/camera/depth_gt',
               '--weights', str(WEIGHTS), '--output', str(output), '--mode', 'live',
               '--rate', '1.0']
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT), ROS_DOMAIN_ID=str(
        1 + (os.getpid() + 59) % 100))
    with open(workdir / 'bag_eval.log', 'wb') as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        samples = []
        while process.poll() is None:
            time.sleep(PERIOD_S)
            kids = children(process.pid)
            node = proc_status(kids[0]) if kids else {}
            sample = {'t_s': round(time.monotonic() - t0, 1),
                      'bag_eval_rss_mb': round(proc_status(process.pid).get('rss', 0) / MB, 1),
                      'node_rss_mb': round(node.get('rss', 0) / MB, 1),
                      'node_threads': node.get('threads')}
            samples.append(sample)
            print(json.dumps(sample), flush=True)
    status = process.returncode
    if status != 0:
        raise SystemExit((workdir / 'bag_eval.log').read_text()[-3000:])
    report = json.loads((output / 'report.json').read_text())
    summary, targets = bag_summary(samples)
    return {
        'mode': 'bag-eval live', 'bag': f'kitchen frames 320x240 looped, {frames} frames at '
        f'15 Hz ({args.bag_minutes} min), sqlite3', 'samples': samples,
        'report': {key: report.get(key) for key in ('frames', 'fps', 'latency_ms', 'dropped',
                                                    'drop_rate', 'received')},
        'summary': dict(summary, exit_status=status), 'targets': targets,
    }


def bag_summary(samples: List[Dict[str, Any]]) -> Tuple[Dict[str, Any], Dict[str, bool]]:
    """RSS growth of the node from one minute after it appeared (start-up excluded)."""
    running = [s for s in samples if s['node_rss_mb'] > 0]
    at_minute = next((s for s in running if s['t_s'] >= running[0]['t_s'] + 60.0), running[0])
    growth = running[-1]['node_rss_mb'] - at_minute['node_rss_mb']
    playing = [s for s in samples if s['t_s'] >= at_minute['t_s'] and s['node_rss_mb'] > 0]
    summary = {'node_seen_from_s': running[0]['t_s'], 'baseline_t_s': at_minute['t_s'],
               'node_rss_mb_at_1min': at_minute['node_rss_mb'],
               'node_rss_mb_end': running[-1]['node_rss_mb'],
               'node_rss_growth_after_1min_mb': round(growth, 1),
               'bag_eval_rss_mb_at_1min_end': [playing[0]['bag_eval_rss_mb'],
                                               playing[-1]['bag_eval_rss_mb']]}
    return summary, {'node_rss_growth_lt_50mb': growth < 50.0}


def write_png(result: Dict[str, Any], path: Path) -> None:
    """Write RSS, fps and latency percentiles over time as one PNG (OpenCV-drawn charts)."""
    samples = result['samples']
    if result['mode'] == 'lifecycle':
        x = [s['cycle'] for s in samples]
        charts = [line_chart([('node RSS (MB)', x, [s['rss_mb'] for s in samples])],
                             'lifecycle cycling: RSS', 'cycle', 'MB'),
                  line_chart([('threads', x, [s['threads'] for s in samples]),
                              ('publishers', x, [s['publishers'] for s in samples])],
                             'threads and publishers', 'cycle', 'count'),
                  line_chart([('first frame after activate (s)', x,
                               [s['first_frame_s'] for s in samples])],
                             'time to first frame', 'cycle', 's')]
    elif result['mode'] == 'node':
        x = [s['t_s'] for s in samples]
        nan = float('nan')
        charts = [line_chart([('node RSS (MB)', x, [s['rss_mb'] for s in samples])],
                             'node RSS', 'time (s)', 'MB'),
                  line_chart([('fps', x, [s['fps'] for s in samples]),
                              ('drops / 10 s', x, np.diff(
                                  [0] + [s['frames_dropped'] for s in samples]) / PERIOD_S)],
                             'output fps and drops per second', 'time (s)', '1/s'),
                  line_chart([(f'p{q}', x, [s[f'p{q}_ms'] if s[f'p{q}_ms'] is not None
                                            else nan for s in samples]) for q in (50, 95, 99)],
                             'latency (image stamp to arrival)', 'time (s)', 'ms')]
    else:
        x = [s['t_s'] for s in samples]
        charts = [line_chart([('node RSS (MB)', x, [s['node_rss_mb'] for s in samples]),
                              ('bag-eval RSS (MB)', x, [s['bag_eval_rss_mb'] for s in samples])],
                             'bag-eval --mode live on a looped bag', 'time (s)', 'MB')]
    image = np.vstack(charts)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--mode', choices=('node', 'lifecycle', 'bag', 'all'), default='node')
    parser.add_argument('--minutes', type=float, default=10.0, help='node soak length')
    parser.add_argument('--cycles', type=int, default=50, help='lifecycle cycles')
    parser.add_argument('--bag-minutes', type=float, default=3.0, help='looped bag length')
    parser.add_argument('--threads', type=int, default=0, help='node cpu_threads (0 = default)')
    add_output_option(parser, '', '--output-dir')
    args = parser.parse_args()
    args.output_dir = resolve_output(args.output_dir, '', '--output-dir')
    modes = ('node', 'lifecycle', 'bag') if args.mode == 'all' else (args.mode,)
    runs = {'node': (soak_node, 'soak_node'), 'lifecycle': (soak_lifecycle, 'soak_lifecycle'),
            'bag': (soak_bag, 'soak_bag_eval')}
    for mode in modes:
        function, name = runs[mode]
        with tempfile.TemporaryDirectory(prefix=f'soak_{mode}_') as tmp:
            started = time.time()
            result = function(args, Path(tmp))
        load = os.getloadavg()
        result.update(machine=machine_info(), started_unix=round(started),
                      wall_s=round(time.time() - started, 1),
                      load_average_at_end=[round(v, 2) for v in load],
                      note='shared 2-core machine; other processes were running (see load)')
        args.output_dir.mkdir(parents=True, exist_ok=True)
        write_png(result, args.output_dir / f'{name}.png')
        write_json(result, args.output_dir / f'{name}.json')


if __name__ == '__main__':
    main()
