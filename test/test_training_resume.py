"""Real training steps: exact resume, checkpoint contents, NaN handling, bad data."""

import math

import pytest
import torch

from treeaspp_depth_ros.checkpoint import load_checkpoint, load_depth_net
from treeaspp_depth_ros.data import DataError
from treeaspp_depth_training.config import load_config
from treeaspp_depth_training.trainer import Trainer, TrainingError

# 2 rooms x 5 frames = 6 triplets = 3 steps of 2 per epoch
TINY = {'model.variant': 'baseline', 'data.width': 64, 'data.height': 64,
        'data.synthetic.sequences': 2, 'data.synthetic.frames': 5, 'optim.batch_size': 2,
        'optim.epochs': 2, 'val.synthetic.frames': 2, 'train.tensorboard': False,
        'train.checkpoint_every': 1000, 'train.resumable': True}


def _trainer(tmp_path, name, **overrides) -> Trainer:
    return Trainer(load_config('synthetic_tiny', dict(TINY, **{
        'train.output_dir': str(tmp_path / name), **overrides})))


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    # stop mid-epoch, resume across the epoch boundary
    straight = _trainer(tmp_path, 'straight', **{'train.max_steps': 5})
    straight.fit()
    losses = [row['loss'] for row in straight.history]
    assert len(losses) == 5 and all(math.isfinite(v) for v in losses)

    first = _trainer(tmp_path, 'split', **{'train.max_steps': 2})
    first.fit()
    last = tmp_path / 'split' / 'last.pth'
    ckpt = load_checkpoint(last)
    assert ckpt['step'] == 2 and ckpt['epoch'] == 0 and ckpt['step_in_epoch'] == 2
    assert ckpt['variant'] == 'baseline' and ckpt['config']['data']['width'] == 64
    assert 'optimizer' in ckpt and 'pose_net' in ckpt and 'abs_rel' in ckpt['metrics']
    assert (tmp_path / 'split' / 'best.pth').is_file()

    resumed = _trainer(tmp_path, 'split', **{'train.max_steps': 5, 'train.resume': str(last)})
    assert resumed.global_step == 2
    resumed.fit()
    resumed_losses = [row['loss'] for row in resumed.history]
    print('uninterrupted', losses, 'resumed', resumed_losses)
    assert resumed_losses == pytest.approx(losses[2:], rel=1e-5, abs=1e-6)
    net, _ = load_depth_net(tmp_path / 'split' / 'last.pth')
    assert net.variant == 'baseline'
    ckpt = load_checkpoint(tmp_path / 'split' / 'last.pth')
    assert (ckpt['epoch'], ckpt['step_in_epoch'], ckpt['step']) == (1, 2, 5)
    assert 'optimizer' not in load_checkpoint(tmp_path / 'split' / 'best.pth')


def test_nonfinite_loss_is_skipped_and_counted_then_stops(tmp_path):
    trainer = _trainer(tmp_path, 'nan', **{'train.max_nonfinite': 2})
    batch = next(iter(trainer.loader))
    weights = trainer.net.depth_net.encoder.encoder.conv1.weight
    before = weights.detach().clone()
    broken = dict(batch, K=torch.full_like(batch['K'], float('nan')))  # corrupt intrinsics
    assert trainer.train_step(broken)['skipped'] == 1.0
    assert trainer.nonfinite_total == 1 and torch.equal(weights.detach(), before)
    logs = trainer.train_step(batch)
    assert math.isfinite(logs['loss']) and trainer.nonfinite_streak == 0
    assert not torch.equal(weights.detach(), before)
    with torch.no_grad():
        weights.fill_(float('nan'))  # diverged weights: every loss is NaN from now on
    trainer.train_step(batch)
    trainer.train_step(batch)
    with pytest.raises(TrainingError, match='NaN/inf for 3 consecutive steps'):
        trainer.train_step(batch)
    assert trainer.nonfinite_total == 4


def test_resume_rejects_a_checkpoint_of_another_variant(tmp_path):
    first = _trainer(tmp_path, 'base', **{'train.max_steps': 1})
    first.fit()
    with pytest.raises(TrainingError, match="holds a 'baseline' network"):
        _trainer(tmp_path, 'other', **{'model.variant': 'aspp',
                                       'train.resume': str(tmp_path / 'base' / 'last.pth')})


def test_a_run_that_is_not_resumable_writes_weights_only(tmp_path):
    lean = _trainer(tmp_path, 'lean', **{'train.max_steps': 1, 'train.resumable': False,
                                         'val.format': 'none'})
    lean.fit()
    last = load_checkpoint(tmp_path / 'lean' / 'last.pth')
    assert 'optimizer' not in last and 'pose_net' in last and last['step'] == 1
    with pytest.raises(TrainingError, match='not a training checkpoint'):
        _trainer(tmp_path, 'again', **{'train.resume': str(tmp_path / 'lean' / 'last.pth')})


def test_bad_sc_depth_data_fails_before_training(tmp_path):
    root = tmp_path / 'nyu' / 'training'
    (root / 'scene').mkdir(parents=True)
    (root / 'train.txt').write_text('scene\n')
    for i in range(3):
        (root / 'scene' / f'{i:07d}.jpg').write_bytes(b'garbage')
    (root / 'scene' / 'cam.txt').write_text('500 0 160 0 500 128 0 0 1')
    with pytest.raises(DataError, match=r'scene/0000000\.jpg'):
        Trainer(load_config('baseline', {'model.pretrained': None, 'data.root': str(root.parent),
                                         'data.sequence_length': 2,
                                         'train.output_dir': str(tmp_path / 'run')}))
