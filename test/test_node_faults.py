"""
Faults around a running node, each survived without a restart (or a clean, fast exit).

A GPU failure, a camera driver that dies and comes back, camera_info that stops and returns,
parameters changed under load, signals during inference. Three node processes, started
together: ``main`` (demo weights at 64x64, so frames are cheap) goes through the first four
faults in order; ``sigint`` and ``sigterm`` run the network at 640x480 so that a frame spends
most of a second in inference when the signal arrives. The GPU failure is the one thing
simulated (no GPU here): the node's test-only hook
(``TREEASPP_DEPTH_TEST_GPU_FAULT=N``) raises a CUDA out-of-memory error on the N-th inference.
"""

from contextlib import contextmanager
import os
from pathlib import Path
import signal
import sys
import threading
import time
from typing import Dict, Iterator, List

from conftest import K_KITCHEN
import cv2
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from treeaspp_depth_ros.conversions import (
    camera_info_to_K,
    depth_image_msg_to_array,
    make_camera_info,
    pointcloud2_to_array,
    rgb_to_image_msg,
)
from treeaspp_depth_ros.conversions.stamps import header_stamp_ns, make_header, stamp_to_ns
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.node.depth_node import GPU_FAULT_ENV
from treeaspp_depth_ros.node.description import describe_depth_node
from treeaspp_depth_ros.node.outputs import limit_range
from treeaspp_depth_ros.node_launcher import isolated_env, NodeProcess, Probe
from treeaspp_depth_ros.weights import DEMO_WEIGHTS

DOMAIN = 1 + (os.getpid() + 47) % 100
NS = f'/faults_{os.getpid()}'
WEIGHTS = DEMO_WEIGHTS
SIZE = (64, 48)
K = K_KITCHEN / 10 * np.array([[1], [1], [10]])  # the kitchen camera at 64x48
FALLBACK = {'fx': 100.0, 'fy': 100.0, 'cx': 31.5, 'cy': 23.5}  # distinct from K
GPU_FAULT_AT = 3


def _header(frame_id: str = 'faults_optical_frame'):
    return make_header(time.time_ns(), frame_id)


@contextmanager
def _streaming(node: 'Node', rgb: np.ndarray, period_s: float) -> Iterator[None]:
    """Publish `rgb` with its camera_info every `period_s` from a thread while the block runs."""
    stop = threading.Event()

    def stream() -> None:
        while not stop.is_set():
            header = _header()
            node.info_pub.publish(make_camera_info(K, *SIZE, header))
            node.image_pub.publish(rgb_to_image_msg(rgb, header))
            time.sleep(period_s)

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    try:
        yield
    finally:
        stop.set()
        streamer.join()


class Node:
    """A node process with the probe's publishers and subscriptions for its topics."""

    def __init__(self, probe: Probe, workdir: Path, name: str, env: Dict[str, str] = None,
                 **parameters) -> None:
        values = {'weights': str(WEIGHTS), 'device': 'cpu', 'input_width': 64,
                  'input_height': 64, 'diagnostics_period': 0.2}
        values.update(parameters)
        self.ns, self.probe, self.name = f'{NS}/{name}', probe, f'{NS}/{name}/depth_node'
        description = describe_depth_node(namespace=self.ns, parameters=values)
        self.process = NodeProcess.depth_node(
            description, isolated_env(DOMAIN, extra=env), workdir / f'{name}.log')
        self.depth = probe.subscribe(Image, f'{self.ns}/depth/image')
        self.info = probe.subscribe(CameraInfo, f'{self.ns}/depth/camera_info')
        self.points = probe.subscribe(PointCloud2, f'{self.ns}/points')
        self.diagnostics = probe.subscribe(DiagnosticArray, f'{self.ns}/diagnostics')
        self.image_pub = probe.publisher(Image, f'{self.ns}/image')
        self.info_pub = probe.publisher(CameraInfo, f'{self.ns}/camera_info')

    def wait_ready(self) -> None:
        ok = self.probe.wait_for(
            lambda: not self.process.alive()
            or self.probe.node.count_subscribers(f'{self.ns}/image') > 0
            and self.probe.node.count_publishers(f'{self.ns}/depth/image') > 0, 120)
        assert ok and self.process.alive(), self.process.log_text()

    def status(self):
        msg = self.diagnostics.latest()
        return None if msg is None else msg.status[0]

    def diag(self) -> Dict[str, str]:
        status = self.status()
        return {} if status is None else {kv.key: kv.value for kv in status.values}

    def by_stamp(self, received, stamp: int):
        return next((m for m in received.messages() if header_stamp_ns(m) == stamp), None)

    def send(self, rgb: np.ndarray, with_info: bool = True, timeout: float = 20.0):
        """Publish (again every second: best effort) until its depth arrives; the depth."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            header = _header()
            if with_info:
                self.info_pub.publish(make_camera_info(K, *SIZE, header))
            self.image_pub.publish(rgb_to_image_msg(rgb, header))
            stamp = stamp_to_ns(header.stamp)
            found = self.probe.wait_for(lambda: self.by_stamp(self.depth, stamp), 1.0)
            if found is not None:
                return found
        raise AssertionError(f'no depth within {timeout} s: {self.diag()}\n'
                             + self.process.log_tail(30))

    def depth_info(self, depth_msg) -> CameraInfo:
        stamp = header_stamp_ns(depth_msg)
        info = self.probe.wait_for(lambda: self.by_stamp(self.info, stamp), 5.0)
        assert info is not None
        return info


@pytest.fixture(scope='module')
def rgb(kitchen_rgbd) -> np.ndarray:
    return cv2.resize(kitchen_rgbd[0], SIZE, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope='module')
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp('faults')


@pytest.fixture(scope='module')
def nodes(workdir):
    with Probe(DOMAIN, 'faults_probe') as probe:
        started = {'main': Node(probe, workdir, 'main', env={GPU_FAULT_ENV: str(GPU_FAULT_AT)},
                                camera_info_timeout=0.5, publish_colored=False, **FALLBACK)}
        try:
            started['main'].wait_ready()
            # started now: they load while main's tests run, not while main starts; the
            # network at 640x480, so most of each frame's time is spent in inference
            for name in ('sigint', 'sigterm'):
                started[name] = Node(probe, workdir, name, input_width=640, input_height=480,
                                     publish_points=False, publish_colored=False)
            yield started
        finally:
            for node in started.values():
                if node.process.alive():
                    node.process.stop()


def test_gpu_failure_at_run_time_falls_back_to_cpu_and_keeps_publishing(nodes, rgb):
    node = nodes['main']
    for _ in range(GPU_FAULT_AT + 2):  # the failing inference's frame is served on the CPU
        node.send(rgb)
    diag = node.probe.wait_for(lambda: (lambda d: d if int(d.get('frames_published', 0))
                                        >= GPU_FAULT_AT + 2 else None)(node.diag()), 5.0)
    assert diag, node.diag()
    assert diag['gpu_fallbacks'] == '1' and diag['errors'] == '0', diag
    assert diag['device'].startswith('cpu (fell back from cuda: OutOfMemoryError: CUDA out '
                                     'of memory'), diag
    assert 'running on CPU after a GPU failure' in node.status().message
    assert 'GPU inference failed' in node.process.log_text()


def _camera(node: Node, workdir: Path, frame_id: str) -> NodeProcess:
    return NodeProcess(
        [sys.executable, '-m', 'treeaspp_depth_ros.demo.camera', '--source', 'synthetic',
         '--width', '64', '--height', '48', '--frames', '10', '--rate', '10', '--loop',
         '--frame-id', frame_id, '--ros-args', '-r', f'__ns:={node.ns}'],
        isolated_env(DOMAIN), workdir / f'{frame_id}.log')


def test_camera_killed_and_restarted_is_served_without_restarting_the_node(nodes, workdir):
    node = nodes['main']
    pid = node.process.pid

    def served(frame_id: str) -> bool:
        return any(m.header.frame_id == frame_id for m in node.depth.messages())

    first = _camera(node, workdir, 'camera_one')
    try:
        assert node.probe.wait_for(lambda: served('camera_one'), 60), first.log_text()
    finally:
        first.process.kill()  # the driver dies: no goodbye on the DDS graph
        first.stop()
    second = _camera(node, workdir, 'camera_two')
    try:
        assert node.probe.wait_for(lambda: served('camera_two'), 60), \
            second.log_text() + node.process.log_tail()
    finally:
        second.stop()
    assert node.process.alive() and node.process.pid == pid


def test_camera_info_stops_then_returns(nodes, rgb):
    """After camera_info_timeout without camera_info the parameters apply, until it returns."""
    node = nodes['main']
    fallback = [[FALLBACK['fx'], 0, FALLBACK['cx']], [0, FALLBACK['fy'], FALLBACK['cy']],
                [0, 0, 1]]
    np.testing.assert_allclose(camera_info_to_K(node.depth_info(node.send(rgb))), K)
    time.sleep(0.7)  # camera_info stops for longer than camera_info_timeout (0.5 s)
    for _ in range(3):  # images keep coming
        np.testing.assert_allclose(
            camera_info_to_K(node.depth_info(node.send(rgb, with_info=False))), fallback)
    assert node.process.log_text().count('stopped') == 1  # warned once
    np.testing.assert_allclose(camera_info_to_K(node.depth_info(node.send(rgb))), K)


def test_parameters_changed_under_load_never_mix_in_one_frame(nodes, rgb):
    """
    Frames stream while two parameter sets alternate (atomically set, as one change).

    Each frame's depth (scale and range) and its cloud (stride, colour) with the same stamp
    must come from one set: set A (scale s, range r_A, full-resolution xyzrgb) or set B (2s,
    r_B, every second pixel, xyz).
    """
    node = nodes['main']
    raw = DepthEstimator(WEIGHTS, device='cpu', input_size=(64, 64), depth_scale=1.0).predict(rgb)
    lo, mid, hi = (float(v) for v in np.percentile(raw, [20, 50, 80]))
    sets = {'A': {'depth_scale': 1.0, 'min_depth': lo, 'max_depth': hi, 'points_stride': 1,
                  'points_rgb': True},
            'B': {'depth_scale': 2.0, 'min_depth': 2 * mid, 'max_depth': 2 * hi + 1.0,
                  'points_stride': 2, 'points_rgb': False}}
    expected = {name: raw * s['depth_scale'] for name, s in sets.items()}  # before the range
    layouts = {'A': (48, 64, 32), 'B': (24, 32, 16)}
    node.depth.clear()
    node.points.clear()
    result = node.probe.set_parameters(node.name, sets['B'], atomically=True)[0]
    assert result.successful, result.reason
    first_stamp = time.time_ns()  # frames before this may carry the previous parameters
    with _streaming(node, rgb, 1 / 30):
        for toggle in range(10):
            name = 'AB'[toggle % 2]
            result = node.probe.set_parameters(node.name, sets[name], atomically=True)[0]
            assert result.successful, result.reason
            time.sleep(0.3)
    node.probe.wait_for(lambda: False, 1.0)  # the last frames arrive
    clouds = {header_stamp_ns(c): c for c in node.points.messages()}
    seen: List[str] = []
    for depth_msg in node.depth.messages():
        if header_stamp_ns(depth_msg) < first_stamp:
            continue
        depth = depth_image_msg_to_array(depth_msg)
        matches = [name for name, want in expected.items() if _same(depth, want, sets[name])]
        ratio = np.nanmedian(depth / raw)
        assert len(matches) == 1, (f'frame matches {matches or "no parameter set"}: depth / '
                                   f'raw {ratio:.4f}, valid {np.mean(~np.isnan(depth)):.2f}')
        seen.append(matches[0])
        cloud = clouds.get(header_stamp_ns(depth_msg))
        if cloud is None:
            continue
        assert (cloud.height, cloud.width, cloud.point_step) == layouts[matches[0]]
        stride = sets[matches[0]]['points_stride']
        xyz, colours = pointcloud2_to_array(cloud)
        assert (colours is not None) == sets[matches[0]]['points_rgb']
        np.testing.assert_array_equal(xyz[..., 2], depth[::stride, ::stride])
    assert seen.count('A') >= 3 and seen.count('B') >= 3, seen
    assert len(clouds) >= 6 and node.diag()['errors'] == '0'


def _same(depth: np.ndarray, scaled: np.ndarray, values: Dict[str, float]) -> bool:
    """Depth is ``scaled`` limited to the set's range (a pixel at a bound may go either way)."""
    want = limit_range(scaled, values['min_depth'], values['max_depth'])
    near = np.zeros(depth.shape, bool)
    for bound in (values['min_depth'], values['max_depth']):
        near |= np.abs(scaled - bound) < 1e-3 * bound
    both = ~np.isnan(depth) & ~np.isnan(want)
    return bool(not ((np.isnan(depth) != np.isnan(want)) & ~near).any()
                and np.allclose(depth[both], want[both], rtol=1e-3))


@pytest.mark.parametrize('name, sig', [('sigint', signal.SIGINT), ('sigterm', signal.SIGTERM)])
def test_signal_during_inference_exits_within_a_second_without_traceback(nodes, rgb, name, sig):
    node = nodes[name]
    node.wait_ready()
    with _streaming(node, rgb, 0.05):
        assert node.probe.wait_for(lambda: node.depth.messages(), 60), node.process.log_tail()
        assert node.probe.wait_for(
            lambda: float(node.diag().get('inference_ms_p50') or 0) > 0, 30)
        inference_ms = float(node.diag()['inference_ms_p50'])
        count = len(node.depth.messages())
        # right after an output the worker has taken the next frame: a quarter of this
        # machine's inference time later it is still in inference, on any machine's speed
        assert node.probe.wait_for(lambda: len(node.depth.messages()) > count, 30)
        time.sleep(inference_ms / 4000.0)
        status, seconds = node.process.stop(sig, timeout=10.0)
    log = node.process.log_text()
    assert status == 0 and seconds < 1.0, (status, seconds, log[-2000:])
    assert 'Traceback' not in log, log[-2000:]
