"""`treeaspp-depth export`: ONNX graph, metadata, atomic writes, INT8 vs fp32 on real frames."""

from pathlib import Path

from conftest import DATA, needs
import cv2
import numpy as np
import onnx
import pytest
from treeaspp_depth_ros import __version__
from treeaspp_depth_ros.cli import main
from treeaspp_depth_ros.data.images import read_depth
from treeaspp_depth_ros.data.seven_scenes import load_seven_scenes
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.metrics import aggregate_metrics, compute_depth_metrics
from treeaspp_depth_ros.onnx_export import file_sha256, read_onnx_info
from treeaspp_depth_ros.weights import DEMO_WEIGHTS


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Keep compiled models out of the user's ~/.cache."""
    monkeypatch.setenv('TREEASPP_DEPTH_CACHE', str(tmp_path_factory.getbasetemp() / 'cache'))


@pytest.fixture(scope='module')
def tree_onnx(random_weights_factory, tmp_path_factory):
    """One tree_aspp export at 64x64, made through the command line (in this process)."""
    folder = tmp_path_factory.mktemp('export')
    weights = random_weights_factory('tree_aspp')
    output = folder / 'tree.onnx'
    assert main(['export', '--weights', str(weights), '--format', 'onnx', '--input-size',
                 '64x64', '--output', str(output)]) == 0
    return weights, output


def test_export_writes_a_checked_static_graph_with_the_metadata_a_consumer_needs(tree_onnx):
    weights, output = tree_onnx
    model = onnx.load(str(output))
    onnx.checker.check_model(model, full_check=True)
    assert max(entry.version for entry in model.opset_import if entry.domain in ('', 'ai.onnx')) \
        >= 17
    (graph_input,), (graph_output,) = model.graph.input, model.graph.output
    dims = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert (graph_input.name, dims) == ('image', [1, 3, 64, 64])
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in graph_output.type.tensor_type.shape.dim] == [1, 1, 64, 64]
    meta = {entry.key: entry.value for entry in model.metadata_props}
    assert meta['variant'] == 'tree_aspp'
    assert (meta['input_width'], meta['input_height']) == ('64', '64')
    assert (meta['normalization_mean'], meta['normalization_std']) == ('0.45', '0.225')
    assert meta['depth_scale'] == ''  # random weights carry no metric scale
    assert meta['checkpoint_sha256'] == file_sha256(weights)
    assert meta['package_version'] == __version__
    info = read_onnx_info(output)
    assert (info.variant, info.input_size, info.precision, info.depth_scale) == \
        ('tree_aspp', (64, 64), 'fp32', None)
    assert sorted(p.name for p in output.parent.iterdir()) == ['tree.onnx']  # no temporaries


def test_export_errors_exit_1_and_leave_no_file(tmp_path, capsys):
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(DEMO_WEIGHTS.read_bytes()[:4096])
    assert main(['export', '--weights', str(truncated), '--output',
                 str(tmp_path / 'x.onnx')]) == 1
    assert 'truncated, corrupt' in capsys.readouterr().err
    assert main(['export', '--weights', str(DEMO_WEIGHTS), '--int8', '--output',
                 str(tmp_path / 'x.onnx')]) == 1
    assert '--int8 needs --calibration' in capsys.readouterr().err
    assert main(['export', '--weights', str(DEMO_WEIGHTS), '--opset', '13', '--output',
                 str(tmp_path / 'x.onnx')]) == 1
    assert 'opset must be >= 17' in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['truncated.pth']


def test_int8_export_keeps_abs_rel_on_7scenes_within_0_01_of_fp32(kitchen_dir, tmp_path):
    """
    Score the shipped weights in fp32 and INT8 against the Kinect depth.

    The shipped (trained, metric) weights at their 64x64 training size, INT8-calibrated on 16
    kitchen frames and scored on 30 others: median-scaled AbsRel.
    """
    dataset = load_seven_scenes(kitchen_dir)
    calibration = tmp_path / 'calibration'
    calibration.mkdir()
    for frame in dataset.frames[:16]:
        (calibration / frame.rgb_path.name).symlink_to(frame.rgb_path)
    fp32, int8 = tmp_path / 'demo.onnx', tmp_path / 'demo_int8.onnx'
    assert main(['export', '--weights', str(DEMO_WEIGHTS), '--output', str(fp32)]) == 0
    assert main(['export', '--weights', str(fp32), '--int8', '--calibration', str(calibration),
                 '--calibration-frames', '16', '--output', str(int8)]) == 0
    info = read_onnx_info(int8)
    assert (info.precision, info.input_size) == ('int8', (64, 64))
    assert info.depth_scale == pytest.approx(read_onnx_info(fp32).depth_scale)
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size  # weights really are 8-bit
    scores = {}
    for name, path in (('fp32', fp32), ('int8', int8)):
        estimator = DepthEstimator(path, device='cpu', backend='onnxruntime')
        assert estimator.has_depth_scale  # applied (the demo scale is synthetic: not "metric")
        metrics = []
        for index in range(20, 50):
            frame = dataset.frames[index]
            gt = read_depth(frame.depth_path, dataset.depth_unit, dataset.depth_invalid)
            pred = estimator.predict(dataset.rgb(index))
            metrics.append(compute_depth_metrics(pred, np.nan_to_num(gt, nan=0.0)))
        scores[name] = aggregate_metrics(metrics)['abs_rel']
    print(f'7-Scenes AbsRel (30 frames, median-scaled): fp32 {scores["fp32"]:.4f}, '
          f'int8 {scores["int8"]:.4f}')
    assert scores['fp32'] < 0.3  # a trained network, not noise
    assert abs(scores['int8'] - scores['fp32']) <= 0.01


def test_exported_file_loads_where_a_checkpoint_does(tree_onnx, tmp_path, capsys):
    weights, output = tree_onnx
    estimator = DepthEstimator(output, device='cpu', backend='onnxruntime')
    assert (estimator.variant, estimator.input_size) == ('tree_aspp', (64, 64))
    assert estimator.backend == 'onnxruntime'
    assert 'onnxruntime' in estimator.describe()
    rgb = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    expected = DepthEstimator(Path(weights), device='cpu', input_size=(64, 64)).predict(rgb)
    depth = estimator.predict(rgb)
    assert depth.shape == (48, 80)
    assert np.max(np.abs(depth - expected) / expected) < 1e-4
    # the same through `treeaspp-depth predict --weights model.onnx --backend ...`
    image = tmp_path / 'frame.png'
    cv2.imwrite(str(image), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert main(['predict', '--weights', str(output), '--backend', 'openvino', str(image),
                 '--output-dir', str(tmp_path / 'out')]) == 0
    assert 'backend openvino (CPU' in capsys.readouterr().out
    predicted = np.load(tmp_path / 'out' / 'frame.depth.npy')
    assert np.max(np.abs(predicted - expected) / expected) < 1e-4
    # without --backend, an .onnx picks an ONNX backend itself (torch cannot run it)
    assert main(['predict', '--weights', str(output), str(image), '--output-dir',
                 str(tmp_path / 'auto')]) == 0
    assert 'backend torch' not in capsys.readouterr().out
    assert np.allclose(np.load(tmp_path / 'auto' / 'frame.depth.npy'), predicted, rtol=1e-4)
    assert main(['predict', '--weights', str(output), '--backend', 'tensorrt', str(image),
                 '--output-dir', str(tmp_path / 'out')]) == 1
    assert 'python3 -m pip install onnx tensorrt' in capsys.readouterr().err


def test_int8_calibration_takes_only_the_colour_frames_of_a_layout(
        baseline_weights, tmp_path, capsys):
    """The NYU sample holds 3 RGB and 3 sync_depth PNGs: 3 calibration frames, said, recorded."""
    nyu = needs(DATA / 'nyu-v2-samples')
    output = tmp_path / 'int8.onnx'
    assert main(['export', '--weights', str(baseline_weights), '--input-size', '64x64',
                 '--int8', '--calibration', str(nyu), '--output', str(output)]) == 0
    assert '[export] INT8 calibration on 3 of 3 colour frames (nyu-test layout' in \
        capsys.readouterr().out
    metadata = {p.key: p.value for p in onnx.load(str(output)).metadata_props}
    assert metadata['calibration_frames'] == '3'
