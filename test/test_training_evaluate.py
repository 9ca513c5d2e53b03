"""`python -m treeaspp_depth_training.evaluate` on the SC-Depth test layout (JSON, Table 1)."""

import json

import cv2
import numpy as np
import pytest
import torch

from treeaspp_depth_ros.checkpoint import save_checkpoint
from treeaspp_depth_ros.data.synthetic import generate_sequence
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.metrics import aggregate_metrics, compute_depth_metrics
from treeaspp_depth_ros.model import DepthNet
from treeaspp_depth_training.evaluate import main
from treeaspp_depth_training.scripts.export_weights import export
from treeaspp_depth_training.train import train_from_config

KEYS = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10', 'a1', 'a2', 'a3', 'params',
        'model_size_mb', 'test_time_s', 'num_images', 'protocol')


@pytest.fixture(scope='module')
def test_dir(tmp_path_factory):
    """Held-out synthetic frames written as the NYU test layout (color/ + depth/*.png)."""
    root = tmp_path_factory.mktemp('testing')
    (root / 'color').mkdir()
    (root / 'depth').mkdir()
    seq = generate_sequence(seed=20_000, num_frames=5, width=160, height=128)
    for i in range(5):
        cv2.imwrite(str(root / 'color' / f'{i:04d}.jpg'), seq.images[i][..., ::-1])
        cv2.imwrite(str(root / 'depth' / f'{i:04d}.png'),
                    np.round(seq.depths[i] * 5000).astype(np.uint16))
    return root


def test_evaluate_two_checkpoints(tmp_path, test_dir, capsys):
    trained = train_from_config('synthetic_tiny', {
        'model.variant': 'baseline', 'data.synthetic.frames': 5, 'optim.batch_size': 2,
        'train.max_steps': 2, 'val.synthetic.frames': 2, 'train.tensorboard': False,
        'train.progress': False, 'train.output_dir': str(tmp_path / 'run')})
    said = capsys.readouterr().err  # progress off still says what runs and when it is done
    assert 'training: 2 steps to do' in said and 'training: 2/2 steps' in said
    assert 'done in' in said
    assert trained.name == 'best.pth'
    untrained = save_checkpoint(tmp_path / 'aspp.pth', DepthNet('aspp'),
                                config={'name': 'aspp_untrained',
                                        'data': {'width': 64, 'height': 64}})
    out = tmp_path / 'eval'
    rc = main(['--data', str(test_dir), '--weights', str(trained), str(untrained),
               '--output', str(out), '--figure-rows', '3', '--workers', '0'])
    assert rc == 0
    report = json.loads((out / 'results.json').read_text())
    entries = report['results']
    assert [e['name'] for e in entries] == ['synthetic_tiny', 'aspp_untrained']
    for entry in entries:
        assert all(key in entry for key in KEYS)
        assert entry['num_images'] == 5 and entry['input_size'] == [64, 64]
        assert entry['protocol'] == {'min_depth': 0.1, 'max_depth': 10.0, 'crop': 'eigen',
                                     'scaling': 'median'}
        assert entry['global_scale']['protocol']['scaling'] == 'global'
    assert entries[0]['train_time_s'] > 0 and entries[1]['train_time_s'] is None
    assert entries[1]['params'] == sum(p.numel() for p in DepthNet('aspp').parameters())
    assert report['test_set']['layout'] == 'test' and report['test_set']['crop'] == 'eigen'
    # the numbers are the metrics of the deployed inference path, image by image
    estimator = DepthEstimator(str(trained), device='cpu', input_size=(64, 64))
    rows = []
    for i in range(5):
        rgb = cv2.imread(str(test_dir / 'color' / f'{i:04d}.jpg'))[..., ::-1].copy()
        gt = cv2.imread(str(test_dir / 'depth' / f'{i:04d}.png'), -1) / 5000.0
        rows.append(compute_depth_metrics(estimator.predict(rgb), gt, crop='eigen'))
    assert entries[0]['abs_rel'] == pytest.approx(aggregate_metrics(rows)['abs_rel'], rel=1e-6)
    table = (out / 'results.md').read_text()
    assert 'AbsRel' in table and 'aspp_untrained' in table and 'Params' in table
    figure = cv2.imread(str(out / 'figure3.png'))
    assert figure.shape == (3 * 256, 4 * 320, 3)  # 3 rows: RGB | 2 checkpoints | GT
    said = capsys.readouterr()
    assert 'synthetic_tiny: AbsRel' in said.out
    assert "input 64x64 (the checkpoint's training size)" in said.out
    assert '[evaluate] best.pth: 1 batches to do' in said.err
    # deployment export: depth network only, fp16 storage, same predictions
    lean = export(trained, tmp_path / 'lean.pth', fp16=True)
    assert lean.stat().st_size < 0.6 * trained.stat().st_size
    exported = DepthEstimator(str(lean), device='cpu', input_size=(64, 64))
    assert exported.checkpoint['config']['name'] == 'synthetic_tiny'
    rgb = cv2.imread(str(test_dir / 'color' / '0000.jpg'))[..., ::-1].copy()
    assert np.allclose(exported.predict(rgb), estimator.predict(rgb), rtol=2e-2)


def test_evaluate_reports_bad_inputs(tmp_path, test_dir, capsys):
    assert main(['--data', str(test_dir), '--weights', str(tmp_path / 'missing.pth'),
                 '--output', str(tmp_path / 'x')]) == 1
    assert 'missing.pth' in capsys.readouterr().err
    (tmp_path / 'bad' / 'color').mkdir(parents=True)
    assert main(['--data', str(tmp_path / 'bad'), '--weights', 'x.pth',
                 '--output', str(tmp_path / 'x')]) == 1
    assert 'has no images' in capsys.readouterr().err


def test_two_checkpoints_of_one_config_get_a_column_each(tmp_path, test_dir, capsys):
    """Both called `demo` by their config: the columns and the figure name them by file."""
    paths = []
    for run, seed in (('a', 0), ('b', 1)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = DepthNet('baseline')
        paths.append(save_checkpoint(tmp_path / run / 'best.pth', net, config={
            'name': 'demo', 'data': {'width': 64, 'height': 64}}))
    out = tmp_path / 'eval'
    assert main(['--data', str(test_dir), '--weights', *map(str, paths), '--output', str(out),
                 '--figure-rows', '2', '--workers', '0', '--no-global']) == 0
    names = [e['name'] for e in json.loads((out / 'results.json').read_text())['results']]
    assert names == ['demo (a/best.pth)', 'demo (b/best.pth)']
    assert '| | demo (a/best.pth) | demo (b/best.pth) |' in (out / 'results.md').read_text()
    assert cv2.imread(str(out / 'figure3.png')).shape == (2 * 256, 4 * 320, 3)  # both kept
    capsys.readouterr()
    assert main(['--data', str(test_dir), '--weights', str(paths[0]), str(paths[0]),
                 '--output', str(out)]) == 1
    assert 'more than once' in capsys.readouterr().err
    assert main(['--data', str(test_dir), '--weights', *map(str, paths), '--names', 'x', 'x',
                 '--output', str(out)]) == 1
    assert '--names must differ' in capsys.readouterr().err
