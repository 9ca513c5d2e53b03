"""
The node's second network over DDS: visual odometry on odom, confidence on depth/confidence.

The real node in its own process with the shipped default weights (they hold a pose
network) on consecutive frames of the real kitchen video; what is checked is the contract
(types, stamps, frames, resets, masking, nothing computed without a subscriber), not the
odometry's accuracy, which `benchmarks/motion.py` measures.
"""

import time

from conftest import DATA, needs
import cv2
from nav_msgs.msg import Odometry
import numpy as np
import pytest
from sensor_msgs.msg import Image
from test_node import DOMAIN, NS, Started
from treeaspp_depth_ros.conversions import (depth_image_msg_to_array, float_image_msg_to_array,
                                            make_camera_info, pointcloud2_to_array,
                                            rgb_to_image_msg)
from treeaspp_depth_ros.conversions.stamps import header_stamp_ns as _stamp, make_header
from treeaspp_depth_ros.data.seven_scenes import load_seven_scenes
from treeaspp_depth_ros.node_launcher import Probe
from treeaspp_depth_ros.weights import DEFAULT_WEIGHTS

VIDEO = DATA / '7scenes-redkitchen-1000'
SIZE = (320, 240)  # half the camera: enough for the contract, light on DDS
FRAME_ID = 'kitchen_optical'
ODOM_FRAME = 'kitchen_odom'


@pytest.fixture(scope='module')
def probe():
    with Probe(DOMAIN, 'motion_test_probe') as probe:
        yield probe


@pytest.fixture(scope='module')
def video():
    """Every 3rd frame from 800 on (10 Hz), at half size, with its camera matrix."""
    dataset = load_seven_scenes(needs(VIDEO))
    K = dataset.K * np.array([[0.5], [0.5], [1.0]])
    return [cv2.resize(dataset.rgb(i), SIZE, interpolation=cv2.INTER_AREA)
            for i in range(800, 860, 3)], K


class Stream:
    """Frames of one video stamped 0.1 s apart from a base time, sent to a started node."""

    def __init__(self, node: Started, video) -> None:
        self.node, (self.frames, self.K) = node, video
        self.size = self.frames[0].shape[1], self.frames[0].shape[0]  # K's image size
        self.base, self.index = time.time_ns(), 0

    def send(self, rgb=None, jump_s: float = 0.0):
        """Send the next frame (or `rgb`) and return its image message once depth is out."""
        if jump_s:
            self.base += int(jump_s * 1e9)
        rgb = self.frames[self.index % len(self.frames)] if rgb is None else rgb
        header = make_header(self.base + self.index * 100_000_000, FRAME_ID)
        self.index += 1
        height, width = rgb.shape[:2]
        K = self.K * np.array([[width / self.size[0]], [height / self.size[1]], [1.0]])
        image = rgb_to_image_msg(rgb, header)
        self.node.send(image, make_camera_info(K, width, height, header))
        return image


def _by_stamp(received, stamp, probe, timeout=10.0):
    return probe.wait_for(lambda: next((m for m in received.messages() if _stamp(m) == stamp),
                                       None), timeout)


def test_odometry_and_confidence_over_dds(probe, tmp_path, video):
    node = Started(probe, tmp_path, DEFAULT_WEIGHTS, f'{NS}/motion', publish_odometry=True,
                   publish_odom_tf=True, odom_frame=ODOM_FRAME)
    try:
        node.wait_ready(120)
        stream = Stream(node, video)
        # nobody subscribes to odom or depth/confidence: the pose network never runs
        for _ in range(3):
            stream.send()
        diag = node.diag_after(lambda d: int(d['frames_published']) >= 3)
        assert (diag['pose_network'], diag['odometry'], diag['pose_pairs']) == \
            ('loaded', 'on', '0'), diag
        odom = probe.subscribe(Odometry, f'{node.ns}/odom')
        confidence = probe.subscribe(Image, f'{node.ns}/depth/confidence')
        assert probe.wait_for(
            lambda: probe.node.count_publishers(f'{node.ns}/odom') > 0, 10)
        deadline = time.monotonic() + 60.0  # until the node has discovered both subscriptions
        while time.monotonic() < deadline:
            stamp = _stamp(stream.send())
            if _by_stamp(odom, stamp, probe, 2.0) and _by_stamp(confidence, stamp, probe, 2.0):
                break
        else:
            raise AssertionError('no odom and confidence within 60 s\n'
                                 + node.process.log_text()[-2000:])

        measured = []
        for _ in range(5):
            image = stream.send()
            stamp = _stamp(image)
            message = _by_stamp(odom, stamp, probe)
            conf_msg = _by_stamp(confidence, stamp, probe)
            depth_msg = _by_stamp(node.depth, stamp, probe)
            assert message is not None and conf_msg is not None, node.process.log_text()[-2000:]
            assert (message.header.frame_id, message.child_frame_id) == (ODOM_FRAME, FRAME_ID)
            assert (conf_msg.header.frame_id, conf_msg.encoding, conf_msg.width,
                    conf_msg.height) == (FRAME_ID, '32FC1', depth_msg.width, depth_msg.height)
            measured.append((message, float_image_msg_to_array(conf_msg)))
        positions = np.array([[m.pose.pose.position.x, m.pose.pose.position.y,
                               m.pose.pose.position.z] for m, _ in measured])
        quaternions = np.array([[m.pose.pose.orientation.x, m.pose.pose.orientation.y,
                                 m.pose.pose.orientation.z, m.pose.pose.orientation.w]
                                for m, _ in measured])
        assert np.isfinite(positions).all() and np.ptp(positions, axis=0).max() > 0
        np.testing.assert_allclose(np.linalg.norm(quaternions, axis=1), 1.0, atol=1e-6)
        variances = np.array([np.diag(np.reshape(m.pose.covariance, (6, 6)))
                              for m, _ in measured])
        assert (variances > 0).all() and (np.diff(variances[:, 0]) > 0).all()  # grows
        assert all(np.diag(np.reshape(m.twist.covariance, (6, 6)))[0] < 1e6
                   for m, _ in measured)  # every pair measured: the twist is known
        for _, conf in measured:
            assert conf.min() >= 0.0 and conf.max() <= 1.0
            assert conf.mean() > 0.5  # consecutive real frames agree with the real weights
        diag = node.diag_after(lambda d: int(d['pose_pairs']) >= 5)
        assert float(diag['pose_ms_mean']) > 0 and diag['odom_resets'] == '0', diag

        # a frame the camera sent but the node never saw (dropped): the pair is just longer
        image = stream.send(jump_s=0.1)
        message = _by_stamp(odom, _stamp(image), probe)
        assert np.reshape(message.twist.covariance, (6, 6))[0, 0] < 1e6
        measured[-1] = (message, None)

        # a stamp jump: not measured, the pose holds, the twist is unknown, confidence 0
        image = stream.send(jump_s=5.0)
        message = _by_stamp(odom, _stamp(image), probe)
        held = measured[-1][0].pose.pose.position
        assert (message.pose.pose.position.x, message.pose.pose.position.z) == (held.x, held.z)
        assert np.reshape(message.twist.covariance, (6, 6))[0, 0] == 1e6
        assert not float_image_msg_to_array(_by_stamp(confidence, _stamp(image), probe)).any()
        diag = node.diag_after(lambda d: d.get('odom_resets_stamp_gap') == '1')
        assert diag.get('odom_resets_stamp_gap') == '1', diag

        # min_confidence, live: the least confident pixels become NaN in depth and cloud
        result = probe.set_parameters(node.name, {'min_confidence': 0.97})[0]
        assert result.successful, result.reason
        image = stream.send()
        conf = float_image_msg_to_array(_by_stamp(confidence, _stamp(image), probe))
        depth = depth_image_msg_to_array(_by_stamp(node.depth, _stamp(image), probe))
        low = conf < 0.97
        assert 0 < low.mean() < 1, low.mean()
        assert np.isnan(depth[low]).all() and np.isfinite(depth[~low]).any()
        xyz, _ = pointcloud2_to_array(_by_stamp(node.points, _stamp(image), probe))
        assert np.isnan(xyz[low]).all()

        # another resolution: a reset; no evidence, so everything is masked
        image = stream.send(cv2.resize(video[0][0], (160, 120)))
        depth = depth_image_msg_to_array(_by_stamp(node.depth, _stamp(image), probe))
        assert depth.shape == (120, 160) and np.isnan(depth).all()
        diag = node.diag_after(lambda d: d.get('odom_resets_resolution_changed') == '1')
        assert diag.get('odom_resets_resolution_changed') == '1', diag

        # a bad frame in between is skipped; the next good one pairs with the last good one
        probe.set_parameters(node.name, {'min_confidence': 0.0})
        image = stream.send(cv2.resize(video[0][1], (160, 120)))
        bad = rgb_to_image_msg(video[0][2], make_header(time.time_ns(), FRAME_ID))
        bad.encoding = 'yuv_unknown'
        node.image_pub.publish(bad)
        node.diag_after(lambda d: int(d['frames_invalid']) >= 1)
        image = stream.send(cv2.resize(video[0][3], (160, 120)))
        message = _by_stamp(odom, _stamp(image), probe)
        assert np.reshape(message.twist.covariance, (6, 6))[0, 0] < 1e6
        assert 'tf2_ros is not installed' in node.process.log_text()
        assert node.process.alive()
    finally:
        node.process.stop()


def test_odometry_needs_a_pose_network(probe, tmp_path, baseline_weights):
    """Weights without a pose network: odometry is refused at start, with the reason."""
    node = Started(probe, tmp_path, baseline_weights, f'{NS}/no_pose', publish_odometry=True)
    try:
        assert node.process.wait(120) not in (None, 0)
        assert 'need a pose network' in node.process.log_text()
    finally:
        node.process.stop()
    node = Started(probe, tmp_path, baseline_weights, f'{NS}/no_pose_plain')
    try:
        node.wait_ready()
        stream = Stream(node, ([np.zeros((120, 160, 3), np.uint8)],
                               np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]])))
        stream.send()
        diag = node.diag_after(lambda d: 'pose_network' in d)
        assert diag['pose_network'].startswith('none'), diag
        result = probe.set_parameters(node.name, {'min_confidence': 0.5})[0]
        assert not result.successful and 'pose network' in result.reason
    finally:
        node.process.stop()
