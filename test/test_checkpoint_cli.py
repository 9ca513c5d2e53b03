"""Checkpoint import, loading errors and the foundation's CLI commands, with a user's arguments."""

from contextlib import redirect_stderr, redirect_stdout
import io
import json
from pathlib import Path
import shutil
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from treeaspp_depth_ros.checkpoint import (CheckpointError, load_checkpoint, load_depth_net,
                                           save_checkpoint)
from treeaspp_depth_ros.cli import main
from treeaspp_depth_ros.conversions.colormap import colorbar_width, colorize_depth
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.model import DepthNet, PoseNet
from treeaspp_depth_ros.model.cost import interleaved_times_ms


def cli(*args, check=True) -> SimpleNamespace:
    """
    Run ``treeaspp-depth ARGS`` through the console script's own entry point, in this process.

    In process rather than a subprocess: each new Python spends seconds importing torch and
    torchvision, and the demo tests already run the command as a separate process.
    """
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as usage:  # argparse: usage errors exit 2
            code = usage.code
    result = SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())
    if check and result.returncode != 0:
        raise AssertionError(f'exit {result.returncode}: {result.stderr}')
    return result


@pytest.fixture(scope='module')
def converted(reference_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp('ckpt') / 'sc_sfmlearner_baseline.pth'
    cli('convert-checkpoint', '--from', 'sc-sfmlearner',
        reference_dir / 'dispnet_checkpoint.pth.tar', out)
    return out


def _reference_rgb(reference_dir: Path) -> np.ndarray:
    bgr = cv2.imread(str(reference_dir / 'input_nyu_rgb_00000_320x256.png'))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize('upsample', ['nearest', 'bilinear'])
def test_converted_sc_sfmlearner_checkpoint_reproduces_reference_depth(
        converted, reference_dir, tmp_path, upsample):
    ckpt = load_checkpoint(converted)
    assert ckpt['variant'] == 'baseline'
    if upsample == 'bilinear':
        ckpt['model_config']['upsample_mode'] = 'bilinear'
        path = tmp_path / 'bilinear.pth'
        torch.save(ckpt, path)
    else:
        path = converted
    depth = DepthEstimator(path, device='cpu').predict(_reference_rgb(reference_dir))
    expected = np.load(reference_dir / f'expected_depth_{upsample}.npy')
    assert depth.shape == expected.shape == (256, 320)
    assert np.max(np.abs(depth - expected) / expected) < 1e-4


def test_sc_depth_pl_lightning_checkpoint_imports_with_bilinear_decoder(reference_dir, tmp_path):
    import argparse
    state = torch.load(reference_dir / 'dispnet_checkpoint.pth.tar', weights_only=True)
    pose = PoseNet().state_dict()
    lightning = {'epoch': 3, 'global_step': 10, 'pytorch-lightning_version': '1.9.5',
                 'hyper_parameters': {'hparams': argparse.Namespace(dataset_name='nyu')},
                 'state_dict': {**{'depth_net.' + k: v for k, v in state['state_dict'].items()},
                                **{'pose_net.' + k: v for k, v in pose.items()}}}
    src = tmp_path / 'sc_depth.ckpt'
    torch.save(lightning, src)
    out = tmp_path / 'converted.pth'
    cli('convert-checkpoint', '--from', 'sc-depth-pl', src, out)
    ckpt = load_checkpoint(out)
    assert ckpt['model_config']['upsample_mode'] == 'bilinear'
    assert 'pose_net' in ckpt
    depth = DepthEstimator(out, device='cpu').predict(_reference_rgb(reference_dir))
    expected = np.load(reference_dir / 'expected_depth_bilinear.npy')
    assert np.max(np.abs(depth - expected) / expected) < 1e-4


def test_convert_rejects_wrong_family_with_a_message(reference_dir, tmp_path):
    result = cli('convert-checkpoint', '--from', 'sc-depth-pl',
                 reference_dir / 'dispnet_checkpoint.pth.tar', tmp_path / 'x.pth', check=False)
    assert result.returncode == 1
    assert "no keys with prefix 'depth_net.'" in result.stderr
    assert not (tmp_path / 'x.pth').exists()


def test_checkpoint_errors_name_the_problem(tmp_path):
    good = save_checkpoint(tmp_path / 'tree.pth', DepthNet('tree_aspp'))
    with pytest.raises(CheckpointError, match="wrong variant.*'tree_aspp'.*'baseline'"):
        load_depth_net(good, variant='baseline')
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:100000])
    with pytest.raises(CheckpointError, match='truncated, corrupt'):
        load_depth_net(truncated)
    with pytest.raises(CheckpointError, match='not found'):
        load_depth_net(tmp_path / 'missing.pth')
    ckpt = torch.load(good, weights_only=True)
    ckpt['variant'] = 'baseline'
    ckpt['model_config']['variant'] = 'baseline'
    mislabelled = tmp_path / 'mislabelled.pth'
    torch.save(ckpt, mislabelled)
    with pytest.raises(CheckpointError, match='unexpected keys context'):
        load_depth_net(mislabelled)


def test_save_is_atomic_and_loads_with_weights_only(tmp_path):
    path = save_checkpoint(tmp_path / 'a.pth', DepthNet('aspp'), PoseNet(), epoch=3,
                           metrics={'abs_rel': 0.2}, depth_scale=2.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.pth']  # no temporary left
    net, ckpt = load_depth_net(path)
    assert net.variant == 'aspp' and not net.training
    assert ckpt['epoch'] == 3 and ckpt['metrics'] == {'abs_rel': 0.2}
    estimator = DepthEstimator(path, device='cpu', input_size=(64, 64))
    assert estimator.scale_is_metric and estimator.depth_scale == 2.5
    (tmp_path / 'a.pth.scale.yaml').write_text('depth_scale: 4.0\nframes: 50\n')
    assert DepthEstimator(path, device='cpu', input_size=(64, 64)).depth_scale == 4.0
    assert DepthEstimator(path, device='cpu', input_size=(64, 64),
                          depth_scale=3.0).depth_scale == 3.0
    (tmp_path / 'a.pth.scale.yaml').write_text('frames: 50\n')
    with pytest.raises(ValueError, match='numeric depth_scale'):
        DepthEstimator(path, device='cpu', input_size=(64, 64))


def test_predict_writes_depth_at_image_resolution(converted, shared_dir, tmp_path):
    nyu = shared_dir / 'data' / 'nyu-v2-samples' / 'rgb_00000.jpg'
    tum = shared_dir / 'data' / 'tum-fr3-long-office' / 'color.png'
    shutil.copy(nyu, tmp_path / 'nyu.jpg')
    shutil.copy(tum, tmp_path / 'tum.png')
    out = tmp_path / 'out'
    result = cli('predict', '--weights', converted, '--input-size', '320x256',
                 tmp_path / 'nyu.jpg', tmp_path / 'tum.png', '--output-dir', out)
    assert 'up to scale' in result.stdout
    for stem in ('nyu', 'tum'):
        depth = np.load(out / f'{stem}.depth.npy')
        assert depth.shape == (480, 640) and depth.dtype == np.float32
        assert np.isfinite(depth).all() and depth.min() > 0
        # the colour map and its colour bar
        png = cv2.imread(str(out / f'{stem}.depth.png'))
        assert png.shape == (480, 640 + colorbar_width(480), 3)
    bad = cli('predict', '--weights', converted, '--input-size', '300x256', tmp_path / 'nyu.jpg',
              '--output-dir', out, check=False)
    assert bad.returncode == 2 and 'multiples of 32' in bad.stderr  # argparse usage error


def test_predict_colours_every_image_on_one_range_in_metres_and_names_the_sidecar(
        tmp_path, shared_dir):
    """Two images, one colour bar; a .scale.yaml beside the weights is said to set the scale."""
    from treeaspp_depth_ros.weights import DEMO_WEIGHTS
    weights = tmp_path / 'demo.pt'
    shutil.copy(DEMO_WEIGHTS, weights)
    (tmp_path / 'demo.pt.scale.yaml').write_text('depth_scale: 2.5\n')
    images = [shared_dir / 'data' / 'nyu-v2-samples' / 'rgb_00000.jpg',
              shared_dir / 'data' / 'tum-fr3-long-office' / 'color.png']
    out = tmp_path / 'out'
    result = cli('predict', '--weights', weights, *images, '--output-dir', out)
    assert f'depth scale 2.5 from the sidecar {weights}.scale.yaml' in result.stdout
    depths = [np.load(out / f'{image.stem}.depth.npy') for image in images]
    sample = np.concatenate([d[::8, ::8].ravel() for d in depths])
    near, far = np.percentile(sample, [2.0, 98.0])
    assert f'colour bar {near:.3g}-{far:.3g} m for all 2 images' in result.stdout
    for image, depth in zip(images, depths):
        png = cv2.cvtColor(cv2.imread(str(out / f'{image.stem}.depth.png')), cv2.COLOR_BGR2RGB)
        assert np.array_equal(png[:, :640], colorize_depth(depth, near, far))
        assert png.shape[1] == 640 + colorbar_width(480)


def test_predict_runs_a_checkpoint_at_its_training_size(tmp_path, shared_dir):
    """The demo weights were trained at 64x64: without --input-size that size is used, and said."""
    from treeaspp_depth_ros.weights import DEMO_WEIGHTS
    image = shared_dir / 'data' / 'tum-fr3-long-office' / 'color.png'
    result = cli('predict', '--weights', DEMO_WEIGHTS, image, '--output-dir', tmp_path)
    assert "input 64x64 (the checkpoint's training size)" in result.stdout
    requested = cli('predict', '--weights', DEMO_WEIGHTS, '--input-size', '128x96', image,
                    '--output-dir', tmp_path)
    assert 'input 128x96 (requested)' in requested.stdout


def test_info_json_reports_every_variant_next_to_the_paper():
    result = cli('info', '--json', '--latency-runs', '1')
    info = json.loads(result.stdout)
    # seconds of work on a small CPU: progress lines on stderr (not a terminal here)
    assert '[info] building and counting the networks: 3 variants to do' in result.stderr
    assert '1 interleaved rounds after a warm-up' in result.stderr
    assert 'done in' in result.stderr
    cards = {c['variant']: c for c in info['variants']}
    assert set(cards) == {'baseline', 'aspp', 'tree_aspp'}
    assert cards['aspp']['depth_net_params'] == cards['tree_aspp']['depth_net_params']
    assert cards['baseline']['depth_net_params'] == 14329236  # SC-SfMLearner DispResNet, no fc
    assert cards['tree_aspp']['paper']['params_m'] == 31.66
    assert cards['tree_aspp']['gflops_320x256'] > cards['baseline']['gflops_320x256'] > 1
    assert all(c['cpu_latency_ms_320x256'] > 0 for c in cards.values())


def test_info_times_nothing_unless_asked_and_interleaves_when_it_does():
    """No latency by default (it is bench_model's); asked, one forward of each per round."""
    plain = cli('info')
    assert 'latency not timed (--latency-runs N)' in plain.stdout
    assert 'timing' not in plain.stderr
    calls = []
    times = interleaved_times_ms({name: (lambda n=name: calls.append(n)) for name in 'abc'},
                                 rounds=3, warmup=1)
    assert calls == list('abc') + list('abc') * 3  # warm-up, then a, b, c in every round
    assert {name: len(t) for name, t in times.items()} == {'a': 3, 'b': 3, 'c': 3}
