"""
Backends: each CPU backend reproduces torch fp32; bad files, missing packages, engine cache.

ONNX Runtime and OpenVINO run for real on the reference input and on 7-Scenes frames.
TensorRT cannot run without a GPU: its engine cache (the part that decides what is loaded) is
tested here with a stand-in build function; the build itself runs in benchmarks/gpu_check.sh.
"""

import json
import os
import sys

from conftest import K_KITCHEN
import cv2
import numpy as np
import pytest
from treeaspp_depth_ros.backends import BackendUnavailable, resolve_backend
from treeaspp_depth_ros.backends.engine_cache import EngineCache, EngineKey
from treeaspp_depth_ros.backends.factory import cached_export
from treeaspp_depth_ros.data.seven_scenes import load_seven_scenes
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.onnx_export import export_onnx, OnnxModelError
from treeaspp_depth_ros.tools.convert_checkpoint import convert

CPU_BACKENDS = ('onnxruntime', 'openvino')


@pytest.fixture(scope='module')
def kitchen_rgb(kitchen_rgbd) -> np.ndarray:
    return kitchen_rgbd[0]


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Keep exports and compiled models out of the user's ~/.cache."""
    monkeypatch.setenv('TREEASPP_DEPTH_CACHE', str(tmp_path_factory.getbasetemp() / 'cache'))


@pytest.fixture(scope='module')
def reference(reference_dir, tmp_path_factory):
    """SC-SfMLearner's reference network as a checkpoint and as a 320x256 export."""
    folder = tmp_path_factory.mktemp('reference')
    weights = folder / 'reference.pth'
    convert('sc-sfmlearner', reference_dir / 'dispnet_checkpoint.pth.tar', weights)
    onnx_path = export_onnx(weights, folder / 'reference.onnx', (320, 256))
    rgb = cv2.cvtColor(cv2.imread(str(reference_dir / 'input_nyu_rgb_00000_320x256.png')),
                       cv2.COLOR_BGR2RGB)
    expected = np.load(reference_dir / 'expected_depth_nearest.npy')
    return weights, onnx_path, rgb, expected


@pytest.fixture(scope='module')
def tree(random_weights_factory, tmp_path_factory):
    """
    Make a tree_aspp checkpoint and its 96x64 export, in the cache the ONNX backends use.

    So the node started with the checkpoint and an ONNX backend finds it there (one export).
    """
    weights = random_weights_factory('tree_aspp')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('TREEASPP_DEPTH_CACHE', str(tmp_path_factory.getbasetemp() / 'cache'))
        return weights, cached_export(weights, (96, 64)).path


@pytest.mark.parametrize('backend', CPU_BACKENDS)
def test_cpu_backend_reproduces_the_reference_depth(reference, backend):
    _, onnx_path, rgb, expected = reference
    estimator = DepthEstimator(onnx_path, device='cpu', backend=backend)
    depth = estimator.predict(rgb)
    assert estimator.backend == backend and estimator.input_size == (320, 256)
    assert np.max(np.abs(depth - expected) / expected) < 1e-4


@pytest.mark.parametrize('backend', CPU_BACKENDS)
def test_cpu_backend_matches_torch_fp32_on_7scenes_frames(kitchen_dir, tree, backend):
    weights, onnx_path = tree
    dataset = load_seven_scenes(kitchen_dir)
    frames = [dataset.rgb(i) for i in (0, 17, 34, 49)]
    torch_depth = DepthEstimator(weights, device='cpu', input_size=(96, 64),
                                 backend='torch').predict_batch(frames)
    estimator = DepthEstimator(onnx_path, device='cpu', input_size=(96, 64), backend=backend)
    assert estimator.backend == backend
    for depth, expected in zip(estimator.predict_batch(frames), torch_depth):
        assert depth.shape == (480, 640)
        assert np.max(np.abs(depth - expected) / expected) < 1e-4


def test_an_export_for_another_size_or_variant_is_refused(tree):
    from treeaspp_depth_ros.onnx_export import check_onnx_matches, read_onnx_info
    _, onnx_path = tree
    with pytest.raises(OnnxModelError, match=r'exported for input 96x64, not 128x96'):
        DepthEstimator(onnx_path, device='cpu', input_size=(128, 96), backend='onnxruntime')
    with pytest.raises(OnnxModelError, match=r"holds a 'tree_aspp' network but 'baseline'"):
        check_onnx_matches(read_onnx_info(onnx_path), variant='baseline')
    with pytest.raises(ValueError, match='torch backend needs a checkpoint'):
        DepthEstimator(onnx_path, device='cpu', backend='torch')


def test_corrupt_truncated_or_foreign_onnx_is_refused_with_a_reason(tree, tmp_path):
    _, onnx_path = tree
    data = onnx_path.read_bytes()
    truncated = tmp_path / 'truncated.onnx'
    truncated.write_bytes(data[:len(data) // 2])
    garbage = tmp_path / 'garbage.onnx'
    garbage.write_bytes(b'\x00not an onnx file' * 100)
    for path in (truncated, garbage):
        with pytest.raises(OnnxModelError, match='truncated'):
            DepthEstimator(path, device='cpu', backend='onnxruntime')
    with pytest.raises(OnnxModelError, match='ONNX file not found'):
        DepthEstimator(tmp_path / 'missing.onnx', device='cpu', backend='openvino')


def test_a_missing_backend_package_fails_at_start_with_the_install_command(monkeypatch, tree):
    # tensorrt is not installed on this machine; openvino is made unimportable, as Python
    # does for a blocked module (sys.modules entry None: `import openvino` raises ImportError).
    with pytest.raises(BackendUnavailable, match=r'python3 -m pip install onnx tensorrt'):
        DepthEstimator(tree[1], device='cpu', backend='tensorrt')
    monkeypatch.setitem(sys.modules, 'openvino', None)
    with pytest.raises(BackendUnavailable, match=r"'openvino' needs the Python package\(s\) "
                                                 r'openvino.*: python3 -m pip install onnx '
                                                 r'openvino$'):
        DepthEstimator(tree[1], device='cpu', backend='openvino')
    assert resolve_backend('auto', 'cpu') == 'onnxruntime'  # the next installed CPU backend


def _key(**changes) -> EngineKey:
    fields = {'gpu': 'NVIDIA H200 sm_90', 'tensorrt': '10.9.0', 'input_size': (320, 256),
              'onnx_sha256': 'ab' * 32, 'precision': 'fp16'}
    fields.update(changes)
    return EngineKey(**fields)


def test_engine_cache_rebuilds_stale_or_foreign_engines_and_never_half_writes(tmp_path):
    cache = EngineCache(tmp_path / 'engines')
    builds = []

    def build(tag):
        def run():
            builds.append(tag)
            return f'engine-{tag}'.encode()
        return run
    engine, status = cache.get_or_build(_key(), build('a'))
    assert (engine, status) == (b'engine-a', 'built (no cached engine)')
    assert cache.get_or_build(_key(), build('b')) == (b'engine-a', 'cached')
    assert builds == ['a']
    # An engine built by another TensorRT version sitting where this key's engine belongs.
    old = _key(tensorrt='8.6.1')
    path = cache.path_for(_key())
    cache.store(old, b'engine-old')
    cache.path_for(old).replace(path)
    engine, status = cache.get_or_build(_key(), build('c'))
    assert engine == b'engine-c' and 'another tensorrt (tensorrt=8.6.1)' in status
    # Other GPU / input size / ONNX: other files, never the same engine.
    assert len({cache.path_for(k) for k in (_key(), _key(gpu='Orin sm_87'),
                                            _key(input_size=(640, 480)),
                                            _key(onnx_sha256='cd' * 32))}) == 4
    path.write_bytes(b'half an engine')  # a foreign or truncated file
    assert cache.get_or_build(_key(), build('d'))[0] == b'engine-d'
    assert cache.get_or_build(_key(), build('e'), rebuild=True) == \
        (b'engine-e', 'built (rebuild requested)')

    def failing():
        raise RuntimeError('builder ran out of memory')
    with pytest.raises(RuntimeError, match='out of memory'):
        cache.get_or_build(_key(gpu='Orin sm_87'), failing)
    assert sorted(p.name for p in cache.folder.iterdir()) == [path.name]  # nothing half-written
    header = path.read_bytes().split(b'\n')[1]
    assert json.loads(header)['tensorrt'] == '10.9.0'


@pytest.mark.parametrize('backend', CPU_BACKENDS)
def test_node_with_a_cpu_backend_meets_the_output_contract(backend, tree, kitchen_rgb,
                                                           random_weights_factory, tmp_path):
    """
    The node over real DDS with each CPU backend: stamps, encodings, cloud as with torch.

    onnxruntime gets the checkpoint (its export found in the cache at start), openvino the
    .onnx file.
    """
    from test_node import _header, DOMAIN, Started
    from treeaspp_depth_ros.conversions import (depth_image_msg_to_array, make_camera_info,
                                                pointcloud2_to_array, rgb_to_image_msg)
    from treeaspp_depth_ros.conversions.stamps import header_stamp_ns
    from treeaspp_depth_ros.node_launcher import Probe
    weights, onnx_path = tree
    namespace = f'/backend_{backend}_{os.getpid()}'
    expected = DepthEstimator(weights, device='cpu', input_size=(96, 64)).predict(kitchen_rgb)
    with Probe(DOMAIN, f'backend_probe_{backend}') as probe:
        started = Started(probe, tmp_path, weights if backend == 'onnxruntime' else onnx_path,
                          namespace, backend=backend, input_width=96, input_height=64)
        try:
            started.wait_ready(120)
            header = _header()
            image = rgb_to_image_msg(kitchen_rgb, header, 'rgb8')
            info = make_camera_info(K_KITCHEN, 640, 480, header)
            depth_msg = started.send(image, info, timeout=60)
            stamp = header_stamp_ns(image)
            assert header_stamp_ns(depth_msg) == stamp  # send() matched it: the input's stamp
            assert (depth_msg.encoding, depth_msg.height, depth_msg.width) == ('32FC1', 480, 640)
            assert depth_msg.header.frame_id == header.frame_id
            depth = depth_image_msg_to_array(depth_msg)
            valid = ~np.isnan(depth)
            assert valid.any()
            np.testing.assert_allclose(depth[valid], expected[valid], rtol=1e-4)
            depth_info = probe.wait_for(lambda: next(
                (m for m in started.info.messages() if header_stamp_ns(m) == stamp), None), 10)
            assert depth_info is not None and (depth_info.width, depth_info.height) == (640, 480)
            cloud = probe.wait_for(lambda: next(
                (m for m in started.points.messages() if header_stamp_ns(m) == stamp), None), 10)
            assert (cloud.height, cloud.width, cloud.point_step) == (480, 640, 32)
            xyz, _ = pointcloud2_to_array(cloud)
            np.testing.assert_array_equal(np.isnan(xyz[..., 2]), ~valid)
            diag = started.diag_after(lambda d: 'backend' in d, timeout=20)
            assert diag['backend'].startswith(f'{backend} (CPU') and diag['device'] == 'cpu'
        finally:
            started.process.stop()
