"""
The package's default weights: what they hold, how they are made, and that they see a real room.

The recipe itself (`make_default_weights`, about 90 minutes on a 2-core CPU) is a benchmark;
here it runs with a handful of steps per stage to prove the stages chain, resume and write
their trajectory, and the shipped file is checked against the recipe and on held-out frames of
the real video it learnt from.
"""

import json
from pathlib import Path

from conftest import DATA, needs
import numpy as np
import torch
from treeaspp_depth_ros.checkpoint import load_checkpoint, load_pose_net
from treeaspp_depth_ros.data.seven_scenes import load_seven_scenes
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.metrics import aggregate_metrics, compute_depth_metrics
from treeaspp_depth_ros.weights import DEFAULT_WEIGHTS
from treeaspp_depth_training.config import load_config
from treeaspp_depth_training.scripts import make_default_weights as recipe

VIDEO = DATA / '7scenes-redkitchen-1000'


def test_default_weights_are_the_recipe_in_half_precision_and_say_what_they_saw():
    ckpt = load_checkpoint(DEFAULT_WEIGHTS)
    assert ckpt['variant'] == 'tree_aspp'
    assert ckpt['depth_net']['encoder.encoder.conv1.weight'].dtype == torch.float16
    assert ckpt['pose_net']['encoder.encoder.conv1.weight'].dtype == torch.float16
    load_pose_net(ckpt)  # fine-tuning and odometry calibration start from it
    assert '7-Scenes' in ckpt['trained_on'] and 'non-commercial' in ckpt['licence']
    assert ckpt['depth_scale'] > 0
    assert 'frames 0-799' in ckpt['depth_scale_calibration']['source']
    # the last stage of the recipe, at a real camera's 4:3 size
    config, width, height, _ = recipe.STAGES[-1]
    wanted = load_config(config, {'data.width': width, 'data.height': height})
    stored = ckpt['config']
    assert (stored['data']['width'], stored['data']['height']) == (width, height) == (128, 96)
    for section in ('loss', 'optim'):
        assert stored[section] == wanted[section], section
    for key in ('format', 'frames', 'sampling', 'sequence_length', 'add_synthetic'):
        assert stored['data'][key] == wanted['data'][key], key
    assert stored['val']['frames'] == [800, 900]  # chosen on 800-899, never on 900-999


def _abs_rel(predict, frames):
    rows = [compute_depth_metrics(predict(rgb), gt, crop=None) for rgb, gt in frames]
    return aggregate_metrics(rows)['abs_rel']


def test_default_weights_see_held_out_frames_of_the_real_video():
    """Kitchen frames 900-999 (every 10th), never trained or chosen on, against a constant."""
    dataset = load_seven_scenes(needs(VIDEO))
    frames = [(dataset.rgb(i), dataset.depth(i)) for i in range(900, 1000, 10)]
    estimator = DepthEstimator(DEFAULT_WEIGHTS, device='cpu')
    assert estimator.input_size == (128, 96)
    ours = _abs_rel(estimator.predict, frames)
    constant = _abs_rel(lambda rgb: np.ones(rgb.shape[:2]), frames)
    # the bar of issue 20 (0.45 x the constant); measured 0.124 against 0.416 (0.30 x) with 1 and
    # 2 threads, so other CPU kernels have room
    assert ours <= 0.45 * constant, (ours, constant)


def test_recipe_stages_chain_resume_and_write_their_trajectory(tmp_path, monkeypatch):
    needs(VIDEO)
    monkeypatch.setattr(recipe, 'STAGES', (('demo', 64, 64, 2), ('real_video', 64, 64, 2)))
    monkeypatch.setattr(recipe, 'CALIBRATION_STRIDE', 100)  # 8 frames make the scale here
    work, output = tmp_path / 'work', tmp_path / 'weights.pt'
    argv = ['--video', str(VIDEO), '--variant', 'baseline', '--work', str(work), '--output',
            str(output)]
    assert recipe.main(argv) == 0
    trajectory = json.loads((work / 'baseline' / 'trajectory.json').read_text())
    first, second = trajectory['stages']
    assert (first['config'], second['config']) == ('demo', 'real_video')
    assert second['init'] == first['best'] and second['val_history']
    assert second['val_history'][-1]['num_images'] == 20  # frames 800-899, every 5th
    ckpt = load_checkpoint(output)
    assert ckpt['variant'] == 'baseline' and '7-Scenes' in ckpt['trained_on']
    # the scale calibrated here, on the training split's Kinect depth: not the stage's inherited
    assert ckpt['depth_scale_origin'].startswith('calibrated on 7-Scenes redkitchen frames')
    assert ckpt['depth_scale_synthetic'] is False and 'depth_scale_inherited' not in ckpt
    assert ckpt['depth_net']['encoder.encoder.conv1.weight'].dtype == torch.float16
    # a second run finds both stages done and trains nothing
    stamps = {p: p.stat().st_mtime_ns for p in work.rglob('last.pth')}
    assert recipe.main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in work.rglob('last.pth')} == stamps


def test_recipe_refuses_a_missing_video(tmp_path, capsys):
    assert recipe.main(['--video', str(tmp_path / 'nope'), '--work', str(tmp_path)]) != 0
    assert 'training video not found' in capsys.readouterr().err


def test_info_names_the_default_weights_and_their_licence():
    from treeaspp_depth_ros.tools.info import shipped_weights_cards
    cards = {card['role']: card for card in shipped_weights_cards()}
    assert cards['default']['variant'] == 'tree_aspp'
    assert 'non-commercial' in cards['default']['licence']
    assert cards['demo']['variant'] == 'baseline' and Path(cards['demo']['path']).is_file()
