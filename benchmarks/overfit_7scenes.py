"""
Overfit the real 7-Scenes redkitchen video (50 frames, ground-truth depth) without labels.

A few hundred self-supervised steps on one real indoor video must lower the photometric loss
and bring the predicted depth closer to the Kinect ground truth (median-scaled AbsRel on the
same frames: this measures fitting real video, not generalisation). Frames are paired by their
ground-truth poses ("no rotation + moderate translation"). Records loss and AbsRel before and
after, with the untrained network as the baseline of the same run. Needs ``../shared/data``.

Usage: python -m benchmarks.overfit_7scenes [--steps 300] [--width 160 --height 128]
"""

import argparse
from pathlib import Path
import sys
import tempfile
import time

from benchmarks.common import add_output_option, machine_info, resolve_output, write_json
import torch
from treeaspp_depth_training.config import load_config
from treeaspp_depth_training.trainer import Trainer


DATA = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / '7scenes-redkitchen'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', type=Path, default=DATA)
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--width', type=int, default=160)
    parser.add_argument('--height', type=int, default=128)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--variant', default='tree_aspp')
    parser.add_argument('--lr', type=float, default=2e-4)
    add_output_option(parser, 'overfit_7scenes.json')
    args = parser.parse_args()
    args.output = resolve_output(args.output, 'overfit_7scenes.json')
    if not args.data.is_dir():
        print(f'{args.data} not present: nothing to benchmark', file=sys.stderr)
        return 1
    out = Path(tempfile.mkdtemp(prefix='overfit_7scenes_'))
    config = load_config('synthetic_tiny', {
        'name': f'overfit_7scenes_{args.variant}', 'model.variant': args.variant,
        'data.format': '7scenes', 'data.root': str(args.data), 'data.width': args.width,
        'data.height': args.height, 'data.sampling': 'pose', 'data.min_translation': 0.02,
        'data.max_translation': 0.2, 'data.max_rotation_deg': 10.0,
        'val.format': '7scenes', 'val.root': str(args.data), 'val.crop': None,
        'val.stride': 2, 'optim.lr': args.lr, 'optim.batch_size': args.batch_size,
        'optim.epochs': 1000, 'train.max_steps': args.steps, 'train.tensorboard': False,
        'train.checkpoint_every': 10 ** 9, 'train.output_dir': str(out)})
    trainer = Trainer(config)
    probe = [trainer.dataset[(i, 0)] for i in range(0, len(trainer.dataset), 4)]
    probe_batches = [torch.utils.data.default_collate(probe[i:i + 4])
                     for i in range(0, len(probe), 4)]
    before = {'photo_loss': trainer.evaluate_loss(probe_batches)['photo'], **_depth(trainer)}
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    after = {'photo_loss': trainer.evaluate_loss(probe_batches)['photo'], **_depth(trainer)}
    write_json({
        'benchmark': 'overfit_7scenes_redkitchen', 'machine': machine_info(),
        'settings': {'steps': args.steps, 'size': [args.width, args.height],
                     'batch_size': args.batch_size, 'variant': args.variant, 'lr': args.lr,
                     'samples': len(trainer.dataset), 'sampling': 'pose (2-20 cm, < 10 deg)'},
        'untrained': before, 'trained': after, 'train_seconds': round(seconds, 1),
        'photo_loss_reduction': round(1 - after['photo_loss'] / before['photo_loss'], 3),
        'abs_rel_reduction': round(1 - after['abs_rel'] / before['abs_rel'], 3),
    }, args.output)
    return 0


def _depth(trainer: Trainer) -> dict:
    result = trainer.validate()['median']
    return {'abs_rel': round(result['abs_rel'], 4), 'rmse': round(result['rmse'], 4),
            'a1': round(result['a1'], 4)}


if __name__ == '__main__':
    sys.exit(main())
