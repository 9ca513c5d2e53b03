"""
Test live bag-eval against the real depth node process over DDS.

It agrees with offline evaluation on the frames both produced, its recorded bag follows the
node's contracts, and offline `--record-out` writes the very messages the live node publishes.
"""

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Dict

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from rosbags.typesys import get_typestore, Stores
import torch
from treeaspp_depth_ros.bag.dataset_writer import write_dataset_bag
from treeaspp_depth_ros.cli import main
from treeaspp_depth_ros.conversions.stamps import header_stamp_ns
from treeaspp_depth_ros.data.layouts import load_dataset
from treeaspp_depth_ros.data.records import from_arrays
from treeaspp_depth_ros.metrics import METRIC_NAMES

pytest.importorskip('rclpy')
pytest.importorskip('treeaspp_depth_ros.node.depth_node')

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
TOPICS = ['--image-topic', '/camera/image_raw', '--depth-topic', '/camera/depth_gt']
#: the node infers with this process's thread count, so both modes compute the same floats
SAME_THREADS = ['--node-param', f'cpu_threads:={torch.get_num_threads()}']


@pytest.fixture(scope='module')
def weights(random_weights_factory) -> Path:
    return random_weights_factory('baseline', seed=1)


def _evaluate(bag: Path, weights: Path, out: Path, *extra: str) -> dict:
    assert main(['bag-eval', str(bag), *TOPICS, '--weights', str(weights), '--input-size',
                 '128x96', '--output', str(out), *extra]) == 0
    return json.loads((out / 'report.json').read_text())


def _assert_agree(offline: dict, live: dict) -> None:
    assert live['mode'] == 'live' and offline['mode'] == 'offline'
    assert live['received'] >= 1, 'the node published nothing'
    assert live['received'] + live['dropped'] == offline['frames']
    by_index = {f['index']: f for f in offline['per_frame']}
    assert len(live['per_frame']) == live['received']
    for frame in live['per_frame']:
        reference = by_index[frame['index']]
        assert frame['stamp_ns'] == reference['stamp_ns']
        assert frame['latency_ms'] > 0
        assert frame['scale_ratio'] == pytest.approx(reference['scale_ratio'], rel=1e-4)
        for m in METRIC_NAMES:
            assert frame['median_scaled'][m] == pytest.approx(
                reference['median_scaled'][m], rel=1e-4, abs=1e-6)
    if live['dropped'] == 0:  # same frames, so the same global scale and aggregates
        assert live['global_scale'] == pytest.approx(offline['global_scale'], rel=1e-4)
        for key in ('median_scaled', 'global_scaled'):
            for m in METRIC_NAMES:
                assert live[key][m] == pytest.approx(offline[key][m], rel=1e-4, abs=1e-6)


@pytest.fixture(scope='module')
def kitchen_runs(tmp_path_factory, kitchen_dir, weights) -> SimpleNamespace:
    """Eight kitchen frames evaluated offline and live, both with --record-out."""
    folder = tmp_path_factory.mktemp('kitchen_runs')
    bag = folder / 'kitchen'
    write_dataset_bag(load_dataset('7scenes', kitchen_dir), bag, max_frames=8)
    offline = _evaluate(bag, weights, folder / 'offline', *SAME_THREADS,
                        '--record-out', str(folder / 'slam_offline'))
    live = _evaluate(bag, weights, folder / 'live', '--mode', 'live', '--rate', '0.1',
                     *SAME_THREADS, '--record-out', str(folder / 'slam'))
    return SimpleNamespace(folder=folder, offline=offline, live=live)


def test_live_agrees_with_offline_and_records_node_outputs(kitchen_runs):
    tmp_path, offline, live = kitchen_runs.folder, kitchen_runs.offline, kitchen_runs.live
    _assert_agree(offline, live)
    assert live['latency_ms']['p50'] > 0
    assert (tmp_path / 'live' / 'latency.png').is_file()

    messages, types = {}, {}
    with Reader(tmp_path / 'slam') as reader:
        for conn in reader.connections:
            types[conn.topic] = conn.msgtype
        for conn, timestamp, data in reader.messages():
            msg = TYPESTORE.deserialize_cdr(data, conn.msgtype)
            messages.setdefault(conn.topic, []).append((timestamp, msg))
    assert types['/camera/points'] == 'sensor_msgs/msg/PointCloud2'
    input_stamps = [f['stamp_ns'] for f in offline['per_frame']]
    assert [t for t, _ in messages['/camera/image_raw']] == input_stamps
    depth_stamps = []
    for topic in ('/camera/depth/image', '/camera/depth/camera_info', '/camera/points'):
        assert len(messages[topic]) == live['received'], topic
        for timestamp, msg in messages[topic]:
            stamp = header_stamp_ns(msg)
            assert timestamp == stamp and stamp in input_stamps
            assert msg.header.frame_id == 'camera_color_optical_frame'
            if topic == '/camera/depth/image':
                depth_stamps.append(stamp)
                assert (msg.encoding, msg.width, msg.height) == ('32FC1', 640, 480)
            if topic == '/camera/points':
                assert (msg.height, msg.width, msg.is_dense) == (480, 640, False)
                assert [(f.name, f.offset) for f in msg.fields][:3] == \
                    [('x', 0), ('y', 4), ('z', 8)]
                z = np.frombuffer(msg.data.tobytes(), np.float32).reshape(
                    480, 640, msg.point_step // 4)[:, :, 2]
                depth = dict(messages['/camera/depth/image'])[timestamp]
                np.testing.assert_array_equal(
                    z, np.frombuffer(depth.data.tobytes(), np.float32).reshape(480, 640))
    assert sorted(depth_stamps) == sorted(
        f['stamp_ns'] for f in live['per_frame'])
    assert (tmp_path / 'slam' / 'orbslam3_rgbd.yaml').is_file()


def _recorded(bag: Path) -> Dict[str, Dict[int, bytes]]:
    """
    Topic -> bag time -> the message's CDR bytes, padding made canonical.

    rclpy's serializer leaves alignment padding uninitialised (and pads the end), so the bytes
    are compared after a rosbags round trip, which writes the same fields with zero padding.
    """
    out: Dict[str, Dict[int, bytes]] = {}
    with Reader(bag) as reader:
        for conn, timestamp, data in reader.messages():
            out.setdefault(conn.topic, {})[timestamp] = bytes(TYPESTORE.serialize_cdr(
                TYPESTORE.deserialize_cdr(data, conn.msgtype), conn.msgtype))
    return out


def test_offline_record_out_holds_what_the_live_node_publishes(kitchen_runs):
    """Same frames, weights and node parameters: the same messages, byte for byte."""
    live = _recorded(kitchen_runs.folder / 'slam')
    offline = _recorded(kitchen_runs.folder / 'slam_offline')
    assert set(live) == set(offline)
    for topic in ('/camera/depth/image', '/camera/depth/camera_info', '/camera/points'):
        assert live[topic], f'the node published nothing on {topic}'
    for topic, messages in live.items():
        for timestamp, data in messages.items():
            assert offline[topic].get(timestamp) == data, (topic, timestamp)
    assert (kitchen_runs.folder / 'slam_offline' / 'orbslam3_rgbd.yaml').read_text() == \
        (kitchen_runs.folder / 'slam' / 'orbslam3_rgbd.yaml').read_text()


def test_live_with_sim_clock_on_synthetic_bag(tmp_path, weights):
    synthetic = pytest.importorskip('treeaspp_depth_ros.data.synthetic')
    seq = synthetic.generate_sequence(seed=5, num_frames=6, width=160, height=128)
    bag = tmp_path / 'syn'
    write_dataset_bag(from_arrays(seq.images, seq.intrinsics, seq.depths, fps=10.0), bag,
                      storage='mcap', depth_encoding='32FC1')
    offline = _evaluate(bag, weights, tmp_path / 'offline')
    live = _evaluate(bag, weights, tmp_path / 'live', '--mode', 'live', '--rate', '0.3',
                     '--clock')
    assert live['clock'] is True
    _assert_agree(offline, live)
