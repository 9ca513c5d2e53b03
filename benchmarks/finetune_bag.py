"""
Fine-tuning the demo weights on a bag of a room they never saw: AbsRel before and after.

The demo weights were trained on procedural rooms 100-131; each run here records another room
(seeds 30000+) with `make-bag`'s writer, fine-tunes on that bag (``data.format bag``,
``model.init`` the demo weights) and scores the room's own frames (``val.format bag``,
median-scaled AbsRel) before and after. Over rooms x training seeds this gives the drop the
test ``test/test_training_bag.py`` may assert, and its spread::

    python -m benchmarks.finetune_bag --rooms 3 --seeds 2

The recipe is `finetune_check.RECIPE`: depth and pose networks loaded from the demo weights,
both trained at ``optim.init_lr_factor`` x ``optim.lr``. ``--init`` fine-tunes another
checkpoint; one without a pose network wants ``--warmup N`` (the fresh pose network learns
alone first).
"""

import argparse
import json
from pathlib import Path
import tempfile

import numpy as np

from treeaspp_depth_ros.weights import DEMO_WEIGHTS
from treeaspp_depth_training.finetune_check import finetune_room, FIRST_ROOM, RECIPE, \
    record_room

from .common import add_output_option, machine_info, resolve_output, write_json


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rooms', type=int, default=3)
    parser.add_argument('--first-room', type=int, default=FIRST_ROOM)
    parser.add_argument('--frames', type=int, default=24, help='frames per room')
    parser.add_argument('--seeds', type=int, default=2)
    parser.add_argument('--first-seed', type=int, default=0)
    parser.add_argument('--steps', type=int, default=RECIPE['steps'])
    parser.add_argument('--warmup', type=int, default=RECIPE['warmup'])
    parser.add_argument('--lr', type=float, default=RECIPE['lr'])
    parser.add_argument('--lr-factor', type=float, default=RECIPE['lr_factor'])
    parser.add_argument('--freeze-bn', action='store_true',
                        help='keep the loaded BatchNorm statistics (optim.init_freeze_bn)')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    parser.add_argument('--init', type=Path, default=DEMO_WEIGHTS,
                        help='checkpoint to fine-tune (default: the shipped demo weights)')
    add_output_option(parser, 'finetune_bag.json')
    args = parser.parse_args()
    args.output = resolve_output(args.output, 'finetune_bag.json')
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for room in range(args.first_room, args.first_room + args.rooms):
            bag = record_room(Path(tmp) / f'room{room}', room, frames=args.frames)
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                result = dict(finetune_room(
                    bag, Path(tmp) / f'run{room}-{seed}', seed, args.threads, steps=args.steps,
                    lr=args.lr, warmup=args.warmup, lr_factor=args.lr_factor,
                    freeze_bn=args.freeze_bn, init=args.init),
                    room=room, seed=seed)
                print(json.dumps(result))
                runs.append(result)
    ratios = np.array([r['ratio'] for r in runs])
    drops = np.array([r['drop'] for r in runs])
    summary = {
        'benchmark': 'finetune_demo_weights_on_unseen_room_bag',
        'machine': machine_info(), 'steps': args.steps, 'lr': args.lr, 'batch_size': 4,
        'warmup': args.warmup, 'lr_factor': args.lr_factor, 'freeze_bn': args.freeze_bn,
        'threads': args.threads, 'init': str(args.init),
        'size': '64x64', 'frames_per_room': args.frames, 'runs': runs,
        'ratio_after_before': {'min': float(ratios.min()), 'max': float(ratios.max()),
                               'mean': float(ratios.mean())},
        'drop': {'min': float(drops.min()), 'max': float(drops.max()),
                 'mean': float(drops.mean())},
    }
    write_json(summary, args.output, echo=False)
    print(json.dumps({k: summary[k] for k in ('ratio_after_before', 'drop')}))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
