"""
bag-eval over time: odometry against the recorded poses, confidence, scale drift, flicker.

On a synthetic walk the ground truth is exact, so the sensor's flicker warped with the
recorded poses must vanish: that checks the warp's conventions end to end. The shipped
default weights hold a pose network; the figures themselves are benchmarks/motion.py's.
"""

import json

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from treeaspp_depth_ros.bag.dataset_writer import write_dataset_bag
from treeaspp_depth_ros.bag.temporal import nearest_poses, SPARSIFICATION_STEPS, trend_per_100
from treeaspp_depth_ros.cli import main
from treeaspp_depth_ros.data.records import from_arrays
from treeaspp_depth_ros.trajectory import trajectory_errors
from treeaspp_depth_ros.weights import DEFAULT_WEIGHTS

FRAMES = 10
TOPICS = ['--image-topic', '/camera/image_raw', '--depth-topic', '/camera/depth_gt']


@pytest.fixture(scope='module')
def walk_bag(tmp_path_factory):
    from treeaspp_depth_ros.data.synthetic import generate_sequence
    walk = generate_sequence(seed=3, num_frames=FRAMES, width=128, height=96,
                             trajectory='mixed')
    bag = tmp_path_factory.mktemp('walk') / 'walk_bag'
    write_dataset_bag(from_arrays(walk.images, walk.intrinsics, walk.depths, walk.poses,
                                  fps=10.0), bag)
    return bag, walk


def test_report_over_time(walk_bag, tmp_path, capsys):
    bag, walk = walk_bag
    out, recorded = tmp_path / 'report', tmp_path / 'slam'
    assert main(['bag-eval', str(bag), *TOPICS, '--weights', str(DEFAULT_WEIGHTS),
                 '--output', str(out), '--record-out', str(recorded)]) == 0
    printed = capsys.readouterr().out
    assert 'odometry: ATE' in printed and 'flicker' in printed
    section = json.loads((out / 'report.json').read_text())['over_time']
    assert section['pose_topic'] == '/camera/pose_gt'

    odometry = section['odometry']
    assert odometry['frames'] == FRAMES and odometry['pairs'] == FRAMES - 1
    assert odometry['resets'] == {'first_frame': 1}
    assert odometry['trajectory_length_m'] == pytest.approx(
        np.linalg.norm(np.diff(walk.poses[:, :3, 3], axis=0), axis=1).sum())

    # exact depth warped with the exact poses: the sensor does not flicker; ours does
    flicker = section['flicker']
    assert flicker['warped_with'] == 'recorded poses' and flicker['pairs'] == FRAMES - 1
    assert flicker['sensor_mean_relative_change'] < 0.01
    assert flicker['ours_mean_relative_change'] > 3 * flicker['sensor_mean_relative_change']

    confidence = section['confidence']
    assert confidence['frames'] == FRAMES - 1
    oracle = np.array(confidence['abs_rel_oracle_order'])
    ours = np.array(confidence['abs_rel_confidence_order'])
    assert len(oracle) == len(SPARSIFICATION_STEPS) and (np.diff(oracle) <= 1e-9).all()
    assert ours[0] == pytest.approx(oracle[0], rel=1e-5) and (ours >= oracle - 1e-6).all()
    assert section['scale_drift']['frames'] == FRAMES

    with Reader(recorded) as reader:
        odom = [c for c in reader.connections if c.topic == '/camera/odom']
        assert odom and odom[0].msgtype == 'nav_msgs/msg/Odometry'
        assert odom[0].msgcount == FRAMES


def test_no_motion_keeps_the_recorded_pose_flicker(walk_bag, tmp_path):
    bag, _ = walk_bag
    assert main(['bag-eval', str(bag), *TOPICS, '--weights', str(DEFAULT_WEIGHTS),
                 '--output', str(tmp_path / 'r'), '--no-motion']) == 0
    section = json.loads((tmp_path / 'r' / 'report.json').read_text())['over_time']
    assert 'odometry' not in section and 'confidence' not in section
    assert section['flicker']['pairs'] == FRAMES - 1


def test_trend_nearest_poses_and_alignment():
    index = np.arange(200.0)
    assert trend_per_100(1.0 + 0.001 * index, index) == pytest.approx(0.1 / 1.1, rel=0.05)
    assert trend_per_100(np.ones(200), index) == pytest.approx(0.0, abs=1e-12)
    stamps = np.array([0, 100, 200], np.int64)
    poses = np.stack([np.eye(4) * (k + 1) for k in range(3)])
    picked, found = nearest_poses(stamps, poses, np.array([90, 160, 900]), max_dt=50e-9)
    assert found.tolist() == [True, True, False] and picked[0][0, 0] == 2
    # a path that is the truth scaled by 2 and moved: similarity ATE 0, rigid ATE not
    rng = np.random.default_rng(0)
    truth = np.tile(np.eye(4), (20, 1, 1))
    truth[:, :3, 3] = np.cumsum(rng.normal(size=(20, 3)) * 0.1, axis=0)
    path = truth.copy()
    path[:, :3, 3] = 2.0 * truth[:, :3, 3] + 1.0
    errors = trajectory_errors(path, truth)
    assert errors['ate_similarity']['rmse_m'] < 1e-9
    assert errors['ate_similarity']['scale'] == pytest.approx(0.5)
    assert errors['ate_rigid']['rmse_m'] > 0.05
