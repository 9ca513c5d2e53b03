"""
A depth scale says where it came from, and one from procedural rooms is never called metric.

Real checkpoints: the shipped files (whose origin is derived from the calibration record they
carry), and an untrained network given a recorded scale, exported to ONNX and given a sidecar.
"""

from pathlib import Path

import pytest
from treeaspp_depth_ros.checkpoint import (describe_calibration, load_checkpoint,
                                           scale_origin_entries, scale_provenance,
                                           UNRECORDED_ORIGIN, write_scale_sidecar)
from treeaspp_depth_ros.files import atomic_write_text
from treeaspp_depth_ros.inference import DepthEstimator, NO_SCALE
from treeaspp_depth_ros.tools.info import shipped_weights_cards
from treeaspp_depth_ros.weights import DEFAULT_WEIGHTS, DEMO_WEIGHTS

SIZE = (64, 64)


def test_shipped_scales_name_their_data_and_the_procedural_one_is_not_metric():
    default = DepthEstimator(DEFAULT_WEIGHTS, device='cpu', input_size=SIZE)
    assert default.scale_is_metric and not default.scale_synthetic
    split = "the training split's Kinect depth"
    assert default.scale_origin == (f'calibrated on 7-Scenes redkitchen frames 0-799, every '
                                    f'10th ({split}) (80 frames, ground-truth depth)')
    demo = DepthEstimator(DEMO_WEIGHTS, device='cpu', input_size=SIZE)
    assert demo.scale_origin.startswith('calibrated on synthetic rooms, seeds 90001, 90002')
    assert demo.scale_synthetic and not demo.scale_is_metric
    assert demo.has_depth_scale and demo.depth_scale == pytest.approx(15.1994, rel=1e-4)
    demo.use_depth_scale(9.38)  # a scale the user gives is theirs: metric
    assert (demo.scale_origin, demo.scale_is_metric, demo.depth_scale) == ('parameter', True,
                                                                           9.38)
    demo.use_depth_scale(None, raw=True)
    assert (demo.scale_origin, demo.has_depth_scale) == (NO_SCALE, False)


def test_info_shows_each_shipped_scale_with_its_origin(capsys):
    cards = {card['role']: card for card in shipped_weights_cards()}
    assert cards['demo']['depth_scale_origin'].startswith('calibrated on synthetic rooms')
    assert cards['demo']['scale_is_metric'] is False
    assert cards['default']['scale_is_metric'] is True
    assert '7-Scenes' in cards['default']['depth_scale_origin']


def _with_scale(source: Path, target: Path, **entries) -> Path:
    from treeaspp_depth_ros.checkpoint import atomic_torch_save
    ckpt = load_checkpoint(source)
    ckpt.update(depth_scale=2.5, **entries)
    atomic_torch_save(ckpt, target)
    return target


def test_recorded_origin_reaches_the_estimator_the_onnx_export_and_a_sidecar(
        baseline_weights, tmp_path):
    from treeaspp_depth_ros.onnx_export import export_onnx, read_onnx_info
    record = {'source': 'synthetic rooms, seeds 1, 2', 'frames': 8, 'method': 'ground-truth'}
    synthetic = _with_scale(baseline_weights, tmp_path / 'synthetic.pt',
                            depth_scale_calibration=record, **scale_origin_entries(record))
    assert scale_provenance(load_checkpoint(synthetic)) == (
        'calibrated on synthetic rooms, seeds 1, 2 (8 frames, ground-truth depth)', True)
    info = read_onnx_info(export_onnx(synthetic, tmp_path / 'synthetic.onnx', SIZE))
    assert info.scale_synthetic and info.scale_origin.startswith('calibrated on synthetic')
    exported = DepthEstimator(info.path, device='cpu', backend='onnxruntime')
    assert exported.scale_synthetic and not exported.scale_is_metric
    # a scale with no record says so rather than passing for a calibrated one
    bare = _with_scale(baseline_weights, tmp_path / 'bare.pt')
    assert DepthEstimator(bare, device='cpu', input_size=SIZE).scale_origin == UNRECORDED_ORIGIN
    # a sidecar (calibrate-scale --sidecar) on a real camera overrides: metric, and named
    real = {'depth_scale': 4.0, 'method': 'odometry', 'pairs': 12,
            'source': 'bag robot.db3 (/cam/image_raw, /odom)'}
    write_scale_sidecar(synthetic, real)
    estimator = DepthEstimator(synthetic, device='cpu', input_size=SIZE)
    assert estimator.depth_scale == 4.0 and estimator.scale_is_metric
    assert estimator.scale_origin == ('sidecar synthetic.pt.scale.yaml: ' +
                                      describe_calibration(real))
    assert '12 frame pairs, odometry against the pose network' in estimator.scale_origin


def test_a_hand_written_sidecar_without_a_record_still_names_itself(baseline_weights,
                                                                    tmp_path):
    weights = tmp_path / 'w.pt'
    weights.write_bytes(Path(baseline_weights).read_bytes())
    atomic_write_text('depth_scale: 3.0\n', str(weights) + '.scale.yaml')
    estimator = DepthEstimator(weights, device='cpu', input_size=SIZE)
    assert estimator.scale_origin == 'sidecar w.pt.scale.yaml: calibration not recorded'
    assert estimator.scale_is_metric  # the user's own file: taken at its word
