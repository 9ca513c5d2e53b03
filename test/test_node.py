"""
The depth node as a user runs it: its own process, real DDS, real images.

Random-weight checkpoints are enough here: every check compares the node's outputs with what
the same checkpoint predicts in this process, or with the input messages.
"""

import json
import os
from pathlib import Path
import signal
import sys
import time

from conftest import K_KITCHEN
import cv2
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header
from treeaspp_depth_ros.conversions import (
    camera_info_to_K,
    depth_image_msg_to_array,
    image_msg_to_rgb,
    make_camera_info,
    pointcloud2_to_array,
    rgb_to_image_msg,
)
from treeaspp_depth_ros.conversions.stamps import header_stamp_ns as _stamp, make_header
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.node.description import describe_depth_node
from treeaspp_depth_ros.node.qos import input_qos
from treeaspp_depth_ros.node_launcher import isolated_env, NodeProcess, Probe
from treeaspp_depth_ros.pinhole import depth_to_points
from treeaspp_depth_ros.weights import DEFAULT_WEIGHTS, DEMO_WEIGHTS

DOMAIN = 1 + (os.getpid() + 37) % 100
NS = f'/node_test_{os.getpid()}'
INPUT = (128, 96)  # small network input: contract tests, not quality tests
VARIANT = 'tree_aspp'


def _header(frame_id: str = 'test_optical_frame') -> Header:
    return make_header(time.time_ns(), frame_id)


def _diag(received) -> dict:
    msg = received.latest()
    return {} if msg is None else {kv.key: kv.value for kv in msg.status[0].values}


@pytest.fixture(scope='module')
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp('depth_node')


@pytest.fixture(scope='module')
def checkpoint(random_weights_factory) -> Path:
    return random_weights_factory(VARIANT)


@pytest.fixture(scope='module')
def estimator(checkpoint) -> DepthEstimator:
    return DepthEstimator(checkpoint, device='cpu', input_size=INPUT)


@pytest.fixture(scope='module')
def probe():
    with Probe(DOMAIN, 'node_test_probe') as probe:
        yield probe


@pytest.fixture(scope='module')
def kitchen_rgb(kitchen_rgbd) -> np.ndarray:
    return kitchen_rgbd[0]


class Started:
    """A node process, its namespace and its topics as seen by the probe."""

    def __init__(self, probe: Probe, workdir: Path, checkpoint: Path, namespace: str,
                 lifecycle: bool = False, **parameters) -> None:
        values = {'weights': str(checkpoint), 'device': 'cpu', 'input_width': INPUT[0],
                  'input_height': INPUT[1], 'diagnostics_period': 0.2}
        values.update(parameters)
        image_topic = values.pop('image_topic', 'image')
        self.ns, self.probe = namespace, probe
        self.name = f'{namespace}/depth_node'
        self.description = describe_depth_node(namespace=namespace, lifecycle=lifecycle,
                                               image_topic=image_topic, parameters=values)
        log = workdir / f'{namespace.strip("/").replace("/", "_")}.log'
        self.process = NodeProcess.depth_node(self.description, isolated_env(DOMAIN), log)
        self.depth = probe.subscribe(Image, f'{namespace}/depth/image')
        self.info = probe.subscribe(CameraInfo, f'{namespace}/depth/camera_info')
        self.points = probe.subscribe(PointCloud2, f'{namespace}/points')
        self.colored = probe.subscribe(Image, f'{namespace}/depth/image_colored')
        self.diagnostics = probe.subscribe(DiagnosticArray, f'{namespace}/diagnostics')
        self.image_pub = probe.publisher(Image, f'{namespace}/image')
        self.info_pub = probe.publisher(CameraInfo, f'{namespace}/camera_info')

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the node's service appears (lifecycle) or its output is discovered."""
        topic = f'{self.ns}/depth/image'
        ok = self.probe.wait_for(
            lambda: not self.process.alive() or self.probe.node.count_publishers(topic) > 0
            and self.probe.node.count_subscribers(f'{self.ns}/camera_info') > 0, timeout)
        assert ok and self.process.alive(), self.process.log_text()

    def send(self, image, info=None, timeout: float = 20.0, publisher=None):
        """Publish (again every second: best effort) until the output with its stamp arrives."""
        stamp = _stamp(image)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if info is not None:
                self.info_pub.publish(info)
            (publisher or self.image_pub).publish(image)
            found = self.probe.wait_for(
                lambda: next((m for m in self.depth.messages() if _stamp(m) == stamp), None),
                1.0)
            if found is not None:
                return found
        raise AssertionError(f'no depth for stamp {stamp} within {timeout} s\n'
                             + self.process.log_text()[-3000:])

    def diag_after(self, predicate, timeout: float = 10.0) -> dict:
        return self.probe.wait_for(
            lambda: (lambda d: d if d and predicate(d) else None)(_diag(self.diagnostics)),
            timeout) or _diag(self.diagnostics)


@pytest.fixture(scope='module')
def node(probe, workdir, checkpoint):
    started = Started(probe, workdir, checkpoint, f'{NS}/main')
    started.wait_ready()
    yield started
    started.process.stop()


def _expected_mask_ok(received: np.ndarray, expected: np.ndarray, low: float, high: float):
    """Check NaN exactly where expected depth is outside [low, high] (bounds: ties excepted)."""
    outside = ~((expected >= low) & (expected <= high))
    near_bound = (np.abs(expected - low) < 1e-4 * low) | (np.abs(expected - high) < 1e-4 * high)
    mismatch = (np.isnan(received) != outside) & ~near_bound
    assert not mismatch.any(), f'{mismatch.sum()} pixels with wrong NaN-ness'
    valid = ~np.isnan(received) & ~outside
    np.testing.assert_allclose(received[valid], expected[valid], rtol=1e-4)


def test_full_size_outputs_match_the_contract(node, probe, estimator, kitchen_rgb, workdir,
                                              kitchen_dir):
    """640x480 rgb8 best effort from a camera process: every output of every frame checked."""
    expected_first = estimator.predict(kitchen_rgb)
    low, high = (float(v) for v in np.percentile(expected_first, [25.0, 75.0]))
    results = probe.set_parameters(node.name, {'min_depth': low, 'max_depth': high})
    assert all(r.successful for r in results), results
    inputs = probe.subscribe(Image, f'{node.ns}/image', input_qos())
    infos_in = probe.subscribe(CameraInfo, f'{node.ns}/camera_info', input_qos())
    frames = 6
    camera = NodeProcess(
        [sys.executable, '-m', 'treeaspp_depth_ros.demo.camera', '--source', str(kitchen_dir),
         '--frames', str(frames), '--rate', '2', '--wait-subscribers', '2',
         '--ros-args', '-r', f'__ns:={node.ns}'],
        isolated_env(DOMAIN), workdir / 'camera_contract.log')
    assert camera.wait(90) == 0, camera.log_text()
    summary = json.loads(camera.log_text().strip().splitlines()[-1])
    assert summary['frames_sent'] == frames
    sent = set(summary['stamps_ns'])
    diag = node.diag_after(lambda d: int(d['frames_received']) >= frames)
    # full-size frames delivered best effort (the large shared-memory profile at work)
    assert int(diag['frames_received']) == frames, diag
    assert probe.wait_for(lambda: len(node.depth.messages()) >= int(diag['frames_published']),
                          10)
    by_stamp = {_stamp(m): m for m in inputs.messages()}
    info_by_stamp = {_stamp(m): m for m in infos_in.messages()}
    depth_msgs = node.depth.messages()
    assert depth_msgs and int(diag['frames_published']) + int(diag['frames_dropped']) == frames
    for depth_msg in depth_msgs:
        stamp = _stamp(depth_msg)
        assert stamp in sent and stamp in by_stamp  # the input's exact stamp
        image_msg = by_stamp[stamp]
        rgb = image_msg_to_rgb(image_msg)
        assert depth_msg.header.frame_id == image_msg.header.frame_id
        assert (depth_msg.encoding, depth_msg.height, depth_msg.width, depth_msg.step) == \
            ('32FC1', 480, 640, 640 * 4)
        depth = depth_image_msg_to_array(depth_msg)
        _expected_mask_ok(depth, estimator.predict(rgb), low, high)
        assert np.isnan(depth).any() and (~np.isnan(depth)).any()

        info = probe.wait_for(lambda: next(
            (m for m in node.info.messages() if _stamp(m) == stamp), None), 5)
        source = info_by_stamp[stamp]
        assert info.header.frame_id == source.header.frame_id
        assert (info.width, info.height, info.distortion_model) == \
            (source.width, source.height, source.distortion_model)
        for field in ('k', 'd', 'r', 'p'):
            np.testing.assert_array_equal(getattr(info, field), getattr(source, field))

        cloud = probe.wait_for(lambda: next(
            (m for m in node.points.messages() if _stamp(m) == stamp), None), 5)
        assert cloud.header.frame_id == image_msg.header.frame_id
        assert [(f.name, f.offset, f.datatype) for f in cloud.fields] == \
            [('x', 0, 7), ('y', 4, 7), ('z', 8, 7), ('rgb', 16, 7)]
        assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == \
            (480, 640, 32, 640 * 32)
        assert cloud.is_dense is False
        xyz, colours = pointcloud2_to_array(cloud)
        expected_xyz = depth_to_points(depth, camera_info_to_K(source))
        np.testing.assert_array_equal(np.isnan(xyz), np.isnan(expected_xyz))
        np.testing.assert_allclose(xyz[~np.isnan(xyz)], expected_xyz[~np.isnan(expected_xyz)],
                                   rtol=1e-6)
        np.testing.assert_array_equal(colours, rgb)

        colored = probe.wait_for(lambda: next(
            (m for m in node.colored.messages() if _stamp(m) == stamp), None), 5)
        assert (colored.encoding, colored.height, colored.width) == ('rgb8', 480, 640)
    assert diag['device'] == 'cpu' and diag['variant'] == VARIANT
    assert diag['scale_is_metric'] == 'false'  # random weights carry no calibrated scale


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8'])
def test_camera_encodings(node, estimator, kitchen_rgb, encoding):
    rgb = cv2.resize(kitchen_rgb, (160, 120), interpolation=cv2.INTER_AREA)
    header = _header()
    msg = rgb_to_image_msg(rgb, header, encoding)
    info = make_camera_info(K_KITCHEN / 4 * np.array([[1], [1], [4]]), 160, 120, header)
    node.probe.set_parameters(node.name, {'min_depth': 0.0, 'max_depth': 1000.0})
    depth_msg = node.send(msg, info)
    assert (depth_msg.height, depth_msg.width) == (120, 160)
    seen_as = image_msg_to_rgb(msg)  # what the camera's bytes mean in RGB
    if encoding != 'mono8':
        np.testing.assert_array_equal(seen_as, rgb)
    np.testing.assert_allclose(depth_image_msg_to_array(depth_msg), estimator.predict(seen_as),
                               rtol=1e-4)


def _bad(encoding, height, width, step, size) -> Image:
    msg = Image(header=_header(), height=height, width=width, encoding=encoding, step=step)
    msg.data = bytes(size)
    return msg


@pytest.mark.parametrize('make_bad, words', [
    (lambda: _bad('yuv420', 4, 4, 6, 24), 'unsupported encoding'),
    (lambda: _bad('rgb8', 48, 64, 192, 1000), 'does not match height*step'),
    (lambda: _bad('rgb8', 0, 0, 0, 0), 'zero-size'),
    (lambda: _bad('bgr8', 48, 64, 100, 4800), 'smaller than width'),
])
def test_bad_images_are_skipped_and_the_node_keeps_serving(node, kitchen_rgb, make_bad, words):
    before = int(node.diag_after(lambda d: True).get('frames_invalid', 0))
    bad = make_bad()
    node.image_pub.publish(bad)
    diag = node.diag_after(lambda d: int(d['frames_invalid']) > before)
    assert int(diag['frames_invalid']) > before and words in diag['last_error'], diag
    assert node.process.alive()
    header = _header()
    good = rgb_to_image_msg(cv2.resize(kitchen_rgb, (64, 48)), header)
    depth = node.send(good, make_camera_info(K_KITCHEN / 10, 64, 48, header))
    assert (depth.height, depth.width) == (48, 64)
    assert words in node.process.log_text()  # the error log names the problem


def test_camera_info_for_another_resolution_is_scaled(node, kitchen_rgb):
    header = _header()
    image = rgb_to_image_msg(cv2.resize(kitchen_rgb, (320, 240)), header)
    node.send(image, make_camera_info(K_KITCHEN, 640, 480, header))
    info = node.probe.wait_for(lambda: next(
        (m for m in node.info.messages() if _stamp(m) == _stamp(image)), None), 5)
    assert (info.width, info.height) == (320, 240)
    np.testing.assert_allclose(camera_info_to_K(info),
                               [[292.5, 0, 160], [0, 292.5, 120], [0, 0, 1]])


def test_parameters_are_validated_at_run_time(node, probe, kitchen_rgb):
    cases = [({'max_depth': -1.0}, 'out of range'),
             ({'min_depth': 5.0, 'max_depth': 1.0}, 'smaller than max_depth'),
             ({'points_stride': 0}, 'out of range'), ({'precision': 'fp8'}, 'read-only'),
             ({'weights': '/x.pt'}, 'read-only'),
             ({'input_width': 96}, 'read-only'), ({'fx': 300.0}, 'set together')]
    for values, words in cases:
        result = probe.set_parameters(node.name, values, atomically=True)[0]
        assert not result.successful and words in result.reason, (values, result.reason)
    current = probe.get_parameters(node.name, ['max_depth', 'weights', 'points_stride'])
    assert current['max_depth'] > 0 and current['points_stride'] == 1
    assert probe.set_parameters(node.name, {'points_stride': 4, 'min_depth': 0.0,
                                            'max_depth': 1000.0})[0].successful
    header = _header()
    image = rgb_to_image_msg(cv2.resize(kitchen_rgb, (160, 120)), header)
    node.send(image, make_camera_info(K_KITCHEN / 4 * np.array([[1], [1], [4]]), 160, 120,
                                      header))
    cloud = probe.wait_for(lambda: next(
        (m for m in node.points.messages() if _stamp(m) == _stamp(image)), None), 5)
    assert (cloud.height, cloud.width) == (30, 40)  # the new stride took effect live
    probe.set_parameters(node.name, {'points_stride': 1})


def test_compressed_input_and_missing_camera_info(probe, workdir, checkpoint, estimator,
                                                  kitchen_rgb):
    """Compressed topic follows the image remap; without camera_info the parameters are used."""
    started = Started(probe, workdir, checkpoint, f'{NS}/compressed', use_compressed=True,
                      image_topic='cam/image_raw', camera_info_timeout=0.3,
                      fx=100.0, fy=110.0, cx=79.5, cy=59.5)
    try:
        topic = f'{NS}/compressed/cam/image_raw/compressed'
        assert probe.wait_for(lambda: probe.node.count_subscribers(topic) > 0, 60), \
            started.process.log_text()
        publisher = probe.publisher(CompressedImage, topic)
        rgb = cv2.resize(kitchen_rgb, (160, 120))
        ok, png = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        header = _header()
        good = CompressedImage(header=header, format='rgb8; png compressed bgr8')
        good.data = png.tobytes()
        depth = started.send(good, publisher=publisher)
        np.testing.assert_allclose(depth_image_msg_to_array(depth), np.where(
            (estimator.predict(rgb) >= 0.1) & (estimator.predict(rgb) <= 10.0),
            estimator.predict(rgb), np.nan), rtol=1e-4)
        info = probe.wait_for(lambda: next(
            (m for m in started.info.messages() if _stamp(m) == _stamp(good)), None), 5)
        np.testing.assert_array_equal(camera_info_to_K(info),
                                      [[100.0, 0, 79.5], [0, 110.0, 59.5], [0, 0, 1]])
        corrupt = CompressedImage(header=_header(), format='jpeg', data=b'\xff\xd8' + bytes(50))
        publisher.publish(corrupt)
        diag = started.diag_after(lambda d: int(d['frames_invalid']) > 0)
        assert 'corrupt' in diag['last_error'], diag
        # fx..cy back to 0 (atomically, they must agree): the field of view is used instead
        result = probe.set_parameters(started.name, {'fx': 0.0, 'fy': 0.0, 'cx': 0.0,
                                                     'cy': 0.0}, atomically=True)[0]
        assert result.successful, result.reason
        good.header = _header()
        started.send(good, publisher=publisher)
        info = probe.wait_for(lambda: next(
            (m for m in started.info.messages() if _stamp(m) == _stamp(good)), None), 5)
        focal = 80.0 / np.tan(np.radians(60.0) / 2)  # default horizontal_fov_deg 60
        assert camera_info_to_K(info)[0, 0] == pytest.approx(focal)
        assert started.process.log_text().count('no camera_info') == 1  # warned once
    finally:
        started.process.stop()


def test_lifecycle_transitions(probe, workdir, checkpoint, kitchen_rgb):
    started = Started(probe, workdir, checkpoint, f'{NS}/managed', lifecycle=True)
    name = started.name
    try:
        assert probe.lifecycle_state(name) == 'unconfigured'
        header = _header()
        rgb = cv2.resize(kitchen_rgb, (64, 48))
        info = make_camera_info(K_KITCHEN / 10, 64, 48, header)
        assert probe.lifecycle_transition(name, 'configure')
        assert probe.lifecycle_state(name) == 'inactive'
        started.info_pub.publish(info)
        started.image_pub.publish(rgb_to_image_msg(rgb, header))
        time.sleep(1.0)
        assert not started.depth.messages()  # inactive: nothing published
        assert probe.lifecycle_transition(name, 'activate')
        assert probe.lifecycle_state(name) == 'active'
        started.send(rgb_to_image_msg(rgb, _header()), info)
        assert probe.lifecycle_transition(name, 'deactivate')
        count = len(started.depth.messages())
        for _ in range(5):
            started.image_pub.publish(rgb_to_image_msg(rgb, _header()))
            time.sleep(0.2)
        assert len(started.depth.messages()) == count
        assert probe.lifecycle_transition(name, 'cleanup')
        assert probe.lifecycle_state(name) == 'unconfigured'
        assert probe.lifecycle_transition(name, 'configure')  # configure again after cleanup
        assert probe.lifecycle_transition(name, 'activate')
        started.send(rgb_to_image_msg(rgb, _header()), info)
        assert probe.lifecycle_transition(name, 'deactivate')
        assert probe.lifecycle_transition(name, 'cleanup')
        assert probe.lifecycle_transition(name, 'shutdown')
        assert probe.lifecycle_state(name) == 'finalized'
    finally:
        status, seconds = started.process.stop(signal.SIGTERM)
    assert status == 0 and seconds < 2.0, (status, seconds)


def test_startup_errors_exit_with_a_reason(probe, workdir, checkpoint, baseline_weights):
    corrupt = workdir / 'corrupt.pt'
    corrupt.write_bytes(os.urandom(4096))
    other = baseline_weights
    cases = {
        'missing': ({'weights': str(workdir / 'missing.pt')}, 'not found'),
        'corrupt': ({'weights': str(corrupt)}, 'cannot load weights'),
        'variant': ({'weights': str(other), 'variant': VARIANT}, 'wrong variant'),
        'depth_range': ({'min_depth': 5.0, 'max_depth': 1.0}, 'smaller than max_depth'),
        'input_size': ({'input_width': 100}, 'input_width'),
        'input_size_half': ({'input_width': 64, 'input_height': 0}, 'set together'),
        'device': ({'device': 'tpu'}, 'device must be'),
    }
    processes = {}
    for key, (values, _) in cases.items():
        params = {'weights': str(checkpoint), 'device': 'cpu'}
        params.update(values)
        description = describe_depth_node(namespace=f'{NS}/bad_{key}', parameters=params)
        processes[key] = NodeProcess.depth_node(description, isolated_env(DOMAIN),
                                                workdir / f'bad_{key}.log')
    lifecycle = Started(probe, workdir, checkpoint, f'{NS}/bad_managed', lifecycle=True,
                        weights=str(workdir / 'missing.pt'))
    try:
        for key, (_, words) in cases.items():
            status = processes[key].wait(120)
            log = processes[key].log_text()
            assert status not in (None, 0), (key, log)
            assert words in log, (key, log)
        # lifecycle: configure fails with the reason, the node stays up and unconfigured
        assert not probe.lifecycle_transition(lifecycle.name, 'configure')
        assert probe.lifecycle_state(lifecycle.name) == 'unconfigured'
        assert lifecycle.process.alive() and 'not found' in lifecycle.process.log_text()
    finally:
        for process in processes.values():
            process.stop()
        lifecycle.process.stop()


def test_gpu_failure_falls_back_to_cpu(checkpoint, kitchen_rgb):
    """
    A device error at run time: log, continue on the CPU (in-process; no GPU exists here).

    The estimator is told its device is CUDA while the network sits on the CPU, so the next
    predict fails the way a lost GPU does; that is the one thing faked.
    """
    import rclpy
    import torch
    from treeaspp_depth_ros.node.depth_node import DepthNode
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=DOMAIN)
    try:
        node = DepthNode(context=context, parameter_overrides=[
            Parameter('weights', value=str(checkpoint)), Parameter('device', value='cpu'),
            Parameter('input_width', value=INPUT[0]), Parameter('input_height', value=INPUT[1])])
        try:
            if torch.cuda.is_available():
                pytest.skip('a real GPU is present; this test needs a machine without one')
            node._estimator.device = torch.device('cuda')
            depth = node._infer(kitchen_rgb).depth
            assert depth.shape == (480, 640) and np.isfinite(depth).all()
            assert node._estimator.device.type == 'cpu'
            assert node.stats.snapshot()['gpu_fallbacks'] == 1
            assert node._infer(kitchen_rgb).depth.shape == (480, 640)  # stays on the CPU
            assert node.stats.snapshot()['gpu_fallbacks'] == 1
        finally:
            node.shutdown()
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_faster_camera_than_inference_drops_frames_with_bounded_latency_and_memory(
        probe, workdir, checkpoint, kitchen_dir):
    """
    30 Hz full-size camera; the node (320x256 network input on CPU) is slower than that.

    Bounds follow from the design, not tuning: with a newest-frame slot, an output is at most
    one processing time stale plus its own processing time; without it, a backlog would grow
    by ~25 frames per second and latency by seconds. A leak of every dropped 921 KB frame
    would add > 100 MB over the measured window.
    """
    started = Started(probe, workdir, checkpoint, f'{NS}/stream', input_width=320,
                      input_height=256, publish_points=False, publish_colored=False)
    started.wait_ready()
    camera = NodeProcess(
        [sys.executable, '-m', 'treeaspp_depth_ros.demo.camera', '--source', str(kitchen_dir),
         '--rate', '30', '--loop', '--ros-args', '-r', f'__ns:={started.ns}'],
        isolated_env(DOMAIN), workdir / 'camera_stream.log')
    try:
        assert probe.wait_for(lambda: len(started.depth.messages()) >= 3, 60), \
            started.process.log_text()
        rss_start = started.process.rss_bytes()
        time.sleep(6.0)
        rss_end = started.process.rss_bytes()
        diag = _diag(started.diagnostics)
        status, seconds = started.process.stop(signal.SIGINT)  # while frames keep coming
    finally:
        camera.stop()
        if started.process.alive():
            started.process.stop(signal.SIGKILL)
    assert status == 0 and seconds < 2.0, (status, seconds, started.process.log_text()[-2000:])
    received, published = int(diag['frames_received']), int(diag['frames_published'])
    dropped = int(diag['frames_dropped'])
    assert dropped > 0 and published > 0
    skipped = int(diag['frames_invalid']) + int(diag['frames_waiting_camera_info'])
    assert 0 <= received - published - dropped - skipped <= 2, diag  # <= 2 still in flight
    processing = float(diag['processing_ms_p95']) / 1000.0
    latencies = [(arrived - _stamp(m)) * 1e-9 for arrived, m in started.depth.arrivals()]
    recent = latencies[len(latencies) // 2:]
    assert max(recent) < 2.0 * processing + 0.5, (recent, diag)
    assert rss_end - rss_start < 64 * 2**20, (rss_start, rss_end)


def test_without_weights_the_node_runs_the_shipped_default_weights(probe, workdir, kitchen_rgb):
    """Run the default weights for weights '' (the launch file's default); say what they are."""
    started = Started(probe, workdir, Path('unused'), f'{NS}/default_weights', weights='',
                      input_width=0, input_height=0)
    try:
        started.wait_ready()
        rgb, header = cv2.resize(kitchen_rgb, (160, 120)), _header()
        depth = depth_image_msg_to_array(started.send(
            rgb_to_image_msg(rgb, header), make_camera_info(K_KITCHEN / 4 * np.array(
                [[1], [1], [4]]), 160, 120, header)))
        expected = DepthEstimator(DEFAULT_WEIGHTS, device='cpu').predict(rgb)
        valid = ~np.isnan(depth)
        assert valid.mean() > 0.5
        np.testing.assert_allclose(depth[valid], expected[valid], rtol=1e-3)
        diag = started.diag_after(lambda d: 'trained_on' in d)
        assert '7-Scenes' in diag['trained_on'] and 'non-commercial' in diag['licence'], diag
        assert diag['weights'] == str(DEFAULT_WEIGHTS) and diag['weights_shipped'] == 'true'
        assert diag['variant'] == 'tree_aspp' and diag['scale_is_metric'] == 'true'
        assert diag['scale_origin'].startswith('calibrated on 7-Scenes redkitchen'), diag
        log = started.process.log_text()
        assert str(DEFAULT_WEIGHTS) in log and 'non-commercial' in log, log[-2000:]
    finally:
        started.process.stop()


def test_a_scale_from_synthetic_rooms_is_applied_but_never_called_metric(probe, workdir):
    """The demo weights' scale (procedural rooms): diagnostics and the log say so."""
    started = Started(probe, workdir, DEMO_WEIGHTS, f'{NS}/synthetic_scale',
                      input_width=0, input_height=0)
    try:
        started.wait_ready()
        diag = started.diag_after(lambda d: 'scale_origin' in d)
        assert diag['scale_origin'].startswith('calibrated on synthetic rooms'), diag
        assert diag['scale_is_metric'] == 'false' and float(diag['depth_scale']) > 1
        log = started.process.log_text()
        assert 'not metric for a real camera' in log and 'calibrate-scale' in log, log[-2000:]
    finally:
        started.process.stop()
