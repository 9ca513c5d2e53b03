"""
Make the demo's shipped default weights with this project's own training.

    python -m treeaspp_depth_training.scripts.make_demo_weights [--seed 0]
        [--from runs/demo/best.pth] [--output treeaspp_depth_ros/demo/default_weights.pt]

Trains ``configs/demo.yaml`` (or takes an existing run's checkpoint with ``--from``), keeps
the depth and pose networks in half precision (the pose network is what fine-tuning on a
robot's recording and ``calibrate-scale --method odometry`` start from), and stores a metric
``depth_scale`` measured on synthetic rooms that neither training nor the demo use (the
generator's depth is in metres), so the node publishes metres for the demo scene. The result
is written atomically.
"""

import argparse
from pathlib import Path
import sys
import tempfile
from typing import Any, Dict, Iterable, Iterator, List, Optional

import numpy as np

from treeaspp_depth_ros.bag import evaluation
from treeaspp_depth_ros.bag.metric_scale import calibrate
from treeaspp_depth_ros.checkpoint import (CheckpointError, depth_net_from_checkpoint,
                                           load_checkpoint, load_pose_net, save_checkpoint,
                                           scale_origin_entries)
from treeaspp_depth_ros.data import DataError
from treeaspp_depth_ros.data.records import Dataset
from treeaspp_depth_ros.demo.sources import synthetic_dataset
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.weights import DEMO_TRAINED_ON, DEMO_WEIGHTS, SYNTHETIC_LICENCE

from ..command import run_command
from ..learning_check import demo_frames_abs_rel
from ..train import train_from_config
from ..trainer import TrainingError

#: synthetic sequences used for the scale: seeds the demo (7) and training never use
CALIBRATION_SEEDS = (90001, 90002)
CALIBRATION_FRAMES = 8


def calibration_frames(dataset: Dataset, indices: Iterable[int]) -> Iterator:
    """``(pair, rgb, depth)`` of the given frames, as `calibrate` takes them."""
    for i in indices:
        pair = evaluation.Pair(index=i, image_ordinal=i, depth_ordinal=i, stamp_ns=i,
                               depth_stamp_ns=i, bag_time_ns=i)
        yield pair, dataset.rgb(i), dataset.depth(i)


def synthetic_calibration_frames() -> Iterator:
    """Frames of synthetic rooms that neither training nor the demo use."""
    for seed in CALIBRATION_SEEDS:
        yield from calibration_frames(synthetic_dataset(CALIBRATION_FRAMES, 320, 240, seed),
                                      range(CALIBRATION_FRAMES))


def slim_and_calibrate(best: Path, target: Path, frames: Iterable, source: str,
                       **metadata: Any) -> Dict[str, object]:
    """
    Keep the depth and pose networks (fp16), the training config and a metric depth scale.

    The scale is measured on `frames` (described by `source`); `metadata` (what the weights
    were trained on, their licence) is stored in the checkpoint as is.
    """
    checkpoint = load_checkpoint(best)
    net = depth_net_from_checkpoint(checkpoint)
    pose_net = load_pose_net(checkpoint)
    config = checkpoint.get('config') or {}
    data = config.get('data') or {}
    size = (int(data.get('width', 320)), int(data.get('height', 256)))
    estimator = DepthEstimator(net, device='cpu', input_size=size, depth_scale=1.0)
    result = calibrate(estimator, frames, 0.1, 10.0)
    scale = float(result['global_scale'])
    if not np.isfinite(scale) or scale <= 0:
        raise CheckpointError(f'calibrating {best} gave an unusable scale {scale}')
    info = {'depth_scale': scale, 'scale_ratio_cv': float(result['scale_ratio_cv']),
            'frames': int(result['frames']), 'source': source, 'method': 'ground-truth'}
    save_checkpoint(target, net.half(), pose_net.half(), depth_scale=scale,
                    depth_scale_calibration=info, **scale_origin_entries(info), config=config,
                    metrics=checkpoint.get('metrics'),
                    train_time_s=checkpoint.get('train_time_s'), **metadata)
    return info


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m treeaspp_depth_training.scripts.make_demo_weights', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seed', type=int, default=0, help='training seed (default 0)')
    parser.add_argument('--from', dest='source', type=Path, metavar='CKPT',
                        help='use this training checkpoint instead of training')
    parser.add_argument('--output', type=Path, default=DEMO_WEIGHTS,
                        help=f'where to write them (default: {DEMO_WEIGHTS})')
    args = parser.parse_args(argv)
    return run_command('make_demo_weights', lambda: _make(args),
                       (CheckpointError, DataError, TrainingError))


def _make(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix='demo_weights_') as scratch:
        best = args.source or train_from_config(
            'demo', {'train.seed': args.seed, 'train.output_dir': scratch})
        seeds = ', '.join(map(str, CALIBRATION_SEEDS))
        info = slim_and_calibrate(best, args.output, synthetic_calibration_frames(),
                                  f'synthetic rooms, seeds {seeds}',
                                  trained_on=DEMO_TRAINED_ON,
                                  licence=SYNTHETIC_LICENCE)
    abs_rel = demo_frames_abs_rel(args.output)
    print(f'wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB): depth_scale '
          f'{info["depth_scale"]:.4g}, median-scaled AbsRel on the demo frames {abs_rel:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
