"""
`treeaspp-depth demo` as a user runs it: a new process, camera -> node -> recorder, report.

Contract tests use a random-weight checkpoint (the depth is wrong, the plumbing is not); the
last tests check the shipped default weights and run the main command with them.
"""

import json
import os
from pathlib import Path
import subprocess
import sys
from typing import Dict, Optional

import cv2
import pytest
import torch
from treeaspp_depth_ros.checkpoint import (depth_net_from_checkpoint, load_checkpoint,
                                           load_pose_net)
from treeaspp_depth_ros.demo.recorder import colorbar_width
from treeaspp_depth_ros.node_launcher import isolated_env
from treeaspp_depth_ros.weights import DEMO_WEIGHTS
from treeaspp_depth_training.config import DEFAULTS, load_config

DOMAIN = 1 + (os.getpid() + 83) % 100
REQUIRED = ('frames', 'fps', 'latency_ms_p50', 'latency_ms_p95', 'dropped', 'abs_rel')


@pytest.fixture(scope='module')
def checkpoint(baseline_weights) -> Path:
    return baseline_weights


def run_demo(output: Path, *args: str, timeout: float = 240.0,
             env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    command = [sys.executable, '-m', 'treeaspp_depth_ros.cli', 'demo', '--output', str(output),
               '--domain-id', str(DOMAIN), *args]
    return subprocess.run(command, env=dict(isolated_env(DOMAIN), **(env or {})),
                          capture_output=True, text=True, timeout=timeout, cwd=output.parent)


def check_outputs(output: Path, result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((output / 'report.json').read_text())
    for key in REQUIRED:
        assert key in report, key
    assert report['frames'] > 0 and report['fps'] > 0
    assert report['frames'] + report['dropped'] == report['frames_sent']
    assert 0 < report['latency_ms_p50'] <= report['latency_ms_p95']
    assert report['frames_with_ground_truth'] == report['frames']
    assert report['abs_rel'] >= 0
    assert report['node_exit_code'] == 0 and report['node_shutdown_s'] < 2.0
    images = report['side_by_side_images']
    width, height = (int(v) for v in report['image_size'].split('x'))
    assert images
    for name in images:  # RGB | depth | ground truth | colour bar in metres, side by side
        assert cv2.imread(str(output / name)).shape == (height, 3 * width + colorbar_width(
            height), 3)
    cloud = report['point_cloud']
    data = (output / cloud['file']).read_bytes()
    header, _, body = data.partition(b'end_header\n')
    assert f'element vertex {cloud["points"]}'.encode() in header
    assert len(body) == cloud['points'] * 15  # float x, y, z + uchar r, g, b
    assert f'{report["frames"]} of {report["frames_sent"]} frames got depth' in result.stdout
    # the metric figure (the node's own metres) beside the median-scaled one, and its origin
    assert f'median-scaled AbsRel {report["abs_rel"]:.3f}, metric AbsRel ' in result.stdout
    assert report['scale_origin'] == report['node_diagnostics']['scale_origin']
    if report['scale_origin'] == 'none':
        assert report['abs_rel_metric'] is None
    else:
        assert report['abs_rel_metric'] >= 0
    return report


def test_demo_on_synthetic_frames(tmp_path, checkpoint):
    output = tmp_path / 'demo_output'
    (output / 'frames').mkdir(parents=True)
    (output / 'frames' / 'frame_0999.png').write_bytes(b'an earlier run')
    result = run_demo(output, '--weights', str(checkpoint), '--frames', '12', '--rate', '5')
    report = check_outputs(output, result)
    on_disk = sorted(str(p.relative_to(output)) for p in (output / 'frames').iterdir())
    assert on_disk == sorted(report['side_by_side_images'])  # no earlier run's images left
    assert report['image_size'] == '640x480' and report['source'].startswith('synthetic')
    assert report['lost_in_transport'] == 0  # full-size frames, best effort, all delivered


def test_demo_on_a_folder_source_with_an_export_backend(tmp_path, checkpoint, kitchen_dir):
    output = tmp_path / 'kitchen'
    result = run_demo(output, '--weights', str(checkpoint), '--source', str(kitchen_dir),
                      '--frames', '6', '--rate', '3', '--backend', 'openvino',
                      env={'TREEASPP_DEPTH_CACHE': str(tmp_path / 'cache')})
    report = check_outputs(output, result)
    assert report['source'] == '7scenes'
    assert report['backend'].startswith('openvino (CPU'), report['backend']
    assert 'backend openvino' in result.stdout


def test_demo_on_a_bag_source(tmp_path, checkpoint, kitchen_dir):
    """A rosbag2 with image, camera_info and ground-truth depth, as make-bag writes it."""
    from treeaspp_depth_ros.cli import main as cli_main
    bag = tmp_path / 'kitchen_bag'
    assert cli_main(['make-bag', str(kitchen_dir), '--format', '7scenes', '--output', str(bag),
                     '--max-frames', '5']) == 0
    output = tmp_path / 'bag_demo'
    result = run_demo(output, '--weights', str(checkpoint), '--source', str(bag),
                      '--frames', '5', '--rate', '3')
    report = check_outputs(output, result)
    assert report['source'] == 'bag kitchen_bag' and report['frames_sent'] == 5


def test_demo_reports_bad_sources_and_weights(tmp_path, checkpoint):
    result = run_demo(tmp_path / 'out', '--weights', str(checkpoint), '--source',
                      str(tmp_path / 'nope'), timeout=120)
    assert result.returncode == 1 and 'no such folder or bag' in result.stderr
    result = run_demo(tmp_path / 'out', '--weights', str(tmp_path / 'missing.pt'), timeout=60)
    assert result.returncode == 1 and 'no such file' in result.stderr


def test_shipped_default_weights_are_the_demo_recipe_in_half_precision():
    """The shipped file loads safely and is what `make_demo_weights` makes from demo.yaml."""
    ckpt = load_checkpoint(DEMO_WEIGHTS)
    net = depth_net_from_checkpoint(ckpt)
    assert ckpt['variant'] == 'baseline' and ckpt['depth_net']['encoder.encoder.conv1.weight'] \
        .dtype == torch.float16
    assert next(net.parameters()).dtype == torch.float32  # loaded into the fp32 network
    assert ckpt['depth_scale'] > 0 and 'synthetic rooms' in ckpt['depth_scale_calibration'][
        'source']
    recipe = load_config('demo')
    for section in ('model', 'data', 'loss', 'optim'):  # regenerate them when demo.yaml changes
        stored, wanted = ckpt['config'][section], recipe[section]
        assert set(stored) <= set(wanted), section
        assert {key: wanted[key] for key in stored} == stored, section
        # options added to the trainer since the weights were made must be off (at default)
        assert {key: wanted[key] for key in set(wanted) - set(stored)} == \
            {key: DEFAULTS[section][key] for key in set(wanted) - set(stored)}, section
    # the pose network too: fine-tuning on a recording and odometry calibration start from it
    assert ckpt['pose_net']['encoder.encoder.conv1.weight'].dtype == torch.float16
    load_pose_net(ckpt)
    assert DEMO_WEIGHTS.stat().st_size < 60e6


def test_default_weights_match_the_scene(tmp_path):
    """
    The README's main command as a user runs it, default weights included.

    The weights ship with the package, so this is also the first run's time; their
    median-scaled AbsRel on the demo's own frames must be <= 0.25.
    """
    output = tmp_path / 'default'
    result = run_demo(output, '--rate', '5', timeout=600)
    print(result.stdout[-2000:])
    report = check_outputs(output, result)
    assert report['weights_origin'].startswith('default demo weights')
    assert report['input_size'] == '64x64'  # the size the weights were trained at
    assert report['input_size_source'] == 'checkpoint'
    assert float(report['node_diagnostics']['fps']) > 0  # the rate while frames flowed
    assert report['abs_rel'] <= 0.25, report['metrics_median_scaled']
    # the demo weights' scale is from procedural rooms: shown, applied, never called metric
    assert report['scale_origin'].startswith('calibrated on synthetic rooms')
    assert report['scale_is_metric'] == 'false'
    assert f'metric AbsRel {report["abs_rel_metric"]:.3f}' in result.stdout
