"""
Make the package's default weights: depth learnt without labels from a real handheld video.

    python -m treeaspp_depth_training.scripts.make_default_weights \
        [--video ../shared/data/7scenes-redkitchen-1000] [--variant tree_aspp] \
        [--work runs/default_weights] [--output treeaspp_depth_ros/default_weights.pt]

Trains in stages, each from the previous stage's best checkpoint: ``configs/demo.yaml`` on
procedural rooms (64x64), then ``configs/real_video.yaml`` on the video's frames 0-799 with the
rooms at 96x64 and at 128x96 (a resolution schedule), these choosing their checkpoint on the
video's validation frames 800-899 only. Interrupted, it resumes every stage from its ``last.pth``;
``<work>/<variant>/trajectory.json`` records each stage's validations as it goes. The result
keeps the depth and pose networks in half precision with a metric ``depth_scale`` calibrated
on the training split's own depth (frames 0-799, every 10th), and says what it was trained on
and under which licence. Frames 900-999 are never read here: the held-out figures come from
``python -m benchmarks.real_rooms``.
"""

import argparse
import json
from pathlib import Path
import sys
from typing import Any, Dict, Iterator, List, Optional, Tuple

from treeaspp_depth_ros.checkpoint import CheckpointError, load_checkpoint
from treeaspp_depth_ros.data import DataError
from treeaspp_depth_ros.data.seven_scenes import load_seven_scenes
from treeaspp_depth_ros.files import atomic_write_bytes
from treeaspp_depth_ros.model import VARIANTS
from treeaspp_depth_ros.weights import DEFAULT_WEIGHTS, SEVEN_SCENES_LICENCE

from .make_demo_weights import calibration_frames, slim_and_calibrate
from ..command import run_command
from ..config import load_config
from ..train import train_from_config
from ..trainer import TrainingError

REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_VIDEO = REPOSITORY.parent / 'shared' / 'data' / '7scenes-redkitchen-1000'
#: (config, width, height, steps) of each stage; a stage starts from the previous one's best.
#: From random weights, depth stays flat on the real video (the pose network explains the
#: frames first); the procedural rooms of demo.yaml teach both networks depth and motion in a
#: few hundred steps, and the video then takes over at rising resolution.
STAGES: Tuple[Tuple[str, int, int, int], ...] = (
    ('demo', 64, 64, 300), ('real_video', 96, 64, 400), ('real_video', 128, 96, 500))
TRAIN_FRAMES = (0, 800)
CALIBRATION_STRIDE = 10


def stage_overrides(args: argparse.Namespace, index: int, init: Optional[Path]
                    ) -> Dict[str, Any]:
    """Return the config overrides of one stage."""
    config, width, height, steps = STAGES[index]
    out = _stage_dir(args, index)
    overrides = {'data.width': width, 'data.height': height,
                 'model.variant': args.variant, 'train.max_steps': steps,
                 'train.output_dir': str(out), 'train.seed': args.seed,
                 'train.threads': args.threads, 'train.progress': False,
                 'name': f'{config}-{args.variant}-stage{index + 1}'}
    if config == 'real_video':
        overrides['data.root'] = str(args.video)
    if init is not None:
        overrides['model.init'] = str(init)
    if (out / 'last.pth').is_file():
        overrides['train.resume'] = str(out / 'last.pth')
    return overrides


def _stage_dir(args: argparse.Namespace, index: int) -> Path:
    return args.work / args.variant / f'stage{index + 1}'


def _stage_done(out: Path, steps: int) -> bool:
    summary = out / 'summary.json'
    return summary.is_file() and json.loads(summary.read_text()).get('step', 0) >= steps


def run_stages(args: argparse.Namespace) -> Path:
    """Train (or resume) every stage; return the last stage's best checkpoint."""
    trajectory_path = args.work / args.variant / 'trajectory.json'
    init = None
    stages: List[Dict[str, Any]] = []
    for index, (config, width, height, steps) in enumerate(STAGES):
        out = _stage_dir(args, index)
        if not _stage_done(out, steps):
            train_from_config(config, stage_overrides(args, index, init))
        best = out / 'best.pth' if (out / 'best.pth').is_file() else out / 'last.pth'
        summary = json.loads((out / 'summary.json').read_text())
        stages.append({'stage': index + 1, 'config': config, 'input_size': [width, height],
                       'steps': steps,
                       'init': None if init is None else str(init), 'best': str(best),
                       'best_val_abs_rel': summary['best_abs_rel'],
                       'train_time_s': summary['train_time_s'],
                       'val_history': summary.get('val_history', [])})
        atomic_write_bytes(json.dumps(
            {'variant': args.variant, 'video': str(args.video), 'threads': args.threads,
             'validation': 'demo: held-out procedural rooms; real_video: frames 800-899, '
                           'every 5th', 'stages': stages}, indent=2).encode(),
            trajectory_path)
        init = best
    return init


def training_split_frames(video: Path) -> Iterator:
    """Every 10th frame of the training split, with its depth, for the metric scale."""
    dataset = load_seven_scenes(video)
    indices = range(TRAIN_FRAMES[0], min(TRAIN_FRAMES[1], len(dataset)), CALIBRATION_STRIDE)
    return calibration_frames(dataset, indices)


def _make(args: argparse.Namespace) -> int:
    if not args.video.is_dir():
        raise DataError(f'training video not found: {args.video} (a 7-Scenes sequence of at '
                        f'least 900 frames; pass --video)')
    config = load_config('real_video', {'data.root': str(args.video),
                                        'model.variant': args.variant})
    rooms = (load_config(STAGES[0][0])['data']['synthetic']['sequences'],
             config['data']['synthetic']['sequences'])
    best = args.source or run_stages(args)
    source = (f'7-Scenes redkitchen frames {TRAIN_FRAMES[0]}-{TRAIN_FRAMES[1] - 1}, every '
              f"{CALIBRATION_STRIDE}th (the training split's Kinect depth)")
    trained_on = ('7-Scenes redkitchen, frames 0-799 of one handheld Kinect v1 sequence (no '
                  f'labels: images only; recorded poses select frame pairs), after {rooms[0]} '
                  f'procedural rooms of this package and beside {rooms[1]} others; checkpoints '
                  f'chosen on frames 800-899')
    info = slim_and_calibrate(best, args.output, training_split_frames(args.video), source,
                              trained_on=trained_on, licence=SEVEN_SCENES_LICENCE)
    print(f'wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB) from {best}: '
          f'depth_scale {info["depth_scale"]:.4g} ({source})')
    load_checkpoint(args.output)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m treeaspp_depth_training.scripts.make_default_weights',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--video', type=Path, default=DEFAULT_VIDEO,
                        help=f'7-Scenes sequence to learn from (default: {DEFAULT_VIDEO})')
    parser.add_argument('--variant', default='tree_aspp',
                        choices=VARIANTS,
                        help="depth network (default: tree_aspp, the paper's)")
    parser.add_argument('--work', type=Path, default=Path('runs/default_weights'),
                        help='stage runs and trajectory.json (default: runs/default_weights)')
    parser.add_argument('--threads', type=int, default=0,
                        help='torch CPU threads (default 0: one per core)')
    parser.add_argument('--seed', type=int, default=0, help='training seed (default 0)')
    parser.add_argument('--from', dest='source', type=Path, metavar='CKPT',
                        help='slim and calibrate this checkpoint instead of training')
    parser.add_argument('--output', type=Path, default=DEFAULT_WEIGHTS,
                        help=f'where to write them (default: {DEFAULT_WEIGHTS})')
    args = parser.parse_args(argv)
    return run_command('make_default_weights', lambda: _make(args),
                       (CheckpointError, DataError, TrainingError))


if __name__ == '__main__':
    sys.exit(main())
