"""
Adapting to a robot's room on real video: weights that never saw the kitchen, fine-tuned on it.

    python -m benchmarks.finetune_real_video [--init treeaspp_depth_ros/demo/default_weights.pt]
        [--sampling pose|flow] [--steps 300] [--output benchmarks/results/finetune_real_video.json]

A robot's recording is played by a rosbag2 of 7-Scenes redkitchen frames 0-799 (``make-bag
--format 7scenes``: image, camera_info, and the Kinect's poses as the robot's odometry). The
run fine-tunes on it without labels (``--data.format bag``, no validation: a robot has no depth
to choose with, so the last step is kept), selecting frame pairs by the recorded poses
(``pose``) or from the images alone (``flow``). Held-out frames 900-999 (every 5th) are scored
before and after, median-scaled against a constant depth, with the wall time of the run.
"""

import argparse
import json
from pathlib import Path
import sys
import time
from typing import List, Optional

from treeaspp_depth_ros.cli import main as cli
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.sizes import parse_input_size
from treeaspp_depth_ros.weights import DEMO_WEIGHTS
from treeaspp_depth_training.train import train_from_config

from .common import add_output_option, machine_info, resolve_output, write_json
from .real_rooms import constant, KITCHEN, kitchen_heldout, score

TRAIN_FRAMES = 800


def make_recording(bag: Path) -> Path:
    """Write the robot's recording, kitchen frames 0-799, as a bag (once)."""
    if not (bag / 'metadata.yaml').is_file():
        status = cli(['make-bag', str(KITCHEN), '--format', '7scenes', '--output', str(bag),
                      '--max-frames', str(TRAIN_FRAMES)])
        if status != 0:
            raise SystemExit(f'make-bag failed ({status})')
    return bag


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--init', type=Path, default=DEMO_WEIGHTS,
                        help='weights to start from (default: the demo weights, synthetic only)')
    parser.add_argument('--sampling', choices=('pose', 'flow'), default='pose')
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--size', type=parse_input_size, default=(96, 64))
    parser.add_argument('--work', type=Path, default=Path('runs/finetune_real_video'))
    add_output_option(parser, 'finetune_real_video.json')
    args = parser.parse_args(argv)
    args.output = resolve_output(args.output, 'finetune_real_video.json')
    if not KITCHEN.is_dir():
        print(f'finetune_real_video: {KITCHEN} not found (needs ../shared/data)', file=sys.stderr)
        return 2
    bag = make_recording(args.work / 'kitchen_0_799')
    frames = kitchen_heldout()
    start = DepthEstimator(str(args.init), device='cpu', input_size=args.size)
    before = score(start.predict, frames, None)
    overrides = {
        'model.variant': start.variant,
        'model.init': str(args.init), 'data.format': 'bag', 'data.root': str(bag),
        'data.frames': None, 'data.add_synthetic': False, 'data.sampling': args.sampling,
        'data.pose_topic': 'auto' if args.sampling == 'pose' else None,
        'data.width': args.size[0], 'data.height': args.size[1], 'val.format': 'none',
        'train.max_steps': args.steps, 'train.tensorboard': False, 'train.progress': False,
        'train.output_dir': str(args.work / f'{args.init.stem}-{args.sampling}'),
        'name': f'finetune-{args.sampling}'}
    resumed = Path(overrides['train.output_dir']) / 'last.pth'
    if resumed.is_file():  # an interrupted run continues (its schedule follows --steps)
        overrides['train.resume'] = str(resumed)
    started = time.perf_counter()
    weights = train_from_config('real_video', overrides)
    wall_s = time.perf_counter() - started
    summary = json.loads((Path(overrides['train.output_dir']) / 'summary.json').read_text())
    after = score(DepthEstimator(str(weights), device='cpu', input_size=args.size).predict,
                  frames, None)
    base = score(constant, frames, None)
    result = {'benchmark': 'finetune_real_video', 'machine': machine_info(),
              'init': str(args.init), 'recording': f'7-Scenes redkitchen frames 0-'
              f'{TRAIN_FRAMES - 1} as a bag', 'sampling': args.sampling, 'steps': args.steps,
              'input_size': '{}x{}'.format(*args.size), 'wall_s': round(wall_s, 1),
              'train_time_s': round(summary['train_time_s'], 1),
              'resumed': 'train.resume' in overrides,
              'heldout': 'frames 900-999, every 5th, median-scaled',
              'before': {'abs_rel': before['abs_rel'], 'a1': before['a1']},
              'after': {'abs_rel': after['abs_rel'], 'a1': after['a1']},
              'constant': {'abs_rel': base['abs_rel'], 'a1': base['a1']}}
    path = args.output.with_name(f'{args.output.stem}_{args.sampling}{args.output.suffix}')
    write_json(result, path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
