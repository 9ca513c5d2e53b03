"""
Does a checkpoint's pose network measure motion? The odometry scale per frame gap.

``calibrate-scale --method odometry`` divides odometry translation by the pose network's, so it
is only right when the network's translation grows in proportion to the true one. On synthetic
rooms (true poses as the odometry, true depth for the true scale) this runs
:func:`calibrate_odometry` once per frame gap, with the translation window around that gap, and
reports the odometry scale's error against the true scale (median of gt / predicted depth)::

    python -m benchmarks.odometry_scale --weights A.pth B.pth [--rooms 12]

A network whose translation is a constant (it learnt the one motion of its training pairs)
shows errors running from far below zero at gap 1 to far above at gap 6.
"""

import argparse
from pathlib import Path
import time
from typing import Dict, List

import numpy as np
import torch

from treeaspp_depth_ros.bag.metric_scale import calibrate_odometry
from treeaspp_depth_ros.checkpoint import load_checkpoint, load_pose_net
from treeaspp_depth_ros.data.records import from_arrays
from treeaspp_depth_ros.data.synthetic import generate_sequence
from treeaspp_depth_ros.inference import DepthEstimator

from .common import add_output_option, machine_info, resolve_output, write_json

GAPS = range(1, 7)
FRAMES = 13


def sweep(weights: Path, seeds: List[int]) -> Dict[str, object]:
    """Odometry scale error per gap, over the rooms' pairs together."""
    estimator = DepthEstimator(weights, device='cpu', depth_scale=1.0)
    pose_net = load_pose_net(load_checkpoint(weights))
    truth, per_gap = [], {gap: [] for gap in GAPS}
    network: Dict[int, List[float]] = {gap: [] for gap in GAPS}
    for seed in seeds:
        seq = generate_sequence(seed, FRAMES, 160, 120)
        truth += [float(np.median(depth / estimator.predict(rgb)))
                  for rgb, depth in zip(seq.images, seq.depths)]
        dataset = from_arrays(seq.images, seq.intrinsics, poses=seq.poses)
        step = float(np.median(np.linalg.norm(np.diff(seq.poses[:, :3, 3], axis=0), axis=1)))
        for gap in GAPS:
            result = calibrate_odometry(estimator, pose_net, dataset, step * (gap - 0.5),
                                        step * (gap + 0.5), max_gap=gap)
            per_gap[gap] += result['ratios']
            network[gap].append(result['network_translation_median'])
    true_scale = float(np.median(truth))
    rows = [{'gap': gap, 'pairs': len(per_gap[gap]),
             'network_translation_median': float(np.median(network[gap])),
             'odometry_scale_error': float(np.median(per_gap[gap])) / true_scale - 1}
            for gap in GAPS]
    every = [r for gap in GAPS for r in per_gap[gap]]
    return {'weights': str(weights), 'input_size': list(estimator.input_size),
            'true_scale': true_scale, 'per_gap': rows,
            'all_gaps_error': float(np.median(every)) / true_scale - 1,
            'translation_growth_gap6_over_gap1': rows[-1]['network_translation_median']
            / rows[0]['network_translation_median']}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--weights', type=Path, nargs='+', required=True)
    parser.add_argument('--labels', nargs='+', help='a name per checkpoint for the JSON')
    parser.add_argument('--first-room', type=int, default=97001)
    parser.add_argument('--rooms', type=int, default=12)
    add_output_option(parser, 'odometry_scale.json')
    args = parser.parse_args()
    args.output = resolve_output(args.output, 'odometry_scale.json')
    torch.set_num_threads(1)
    labels = args.labels or [str(w) for w in args.weights]
    if len(labels) != len(args.weights):
        parser.error('give one --labels entry per --weights entry')
    started = time.perf_counter()
    seeds = list(range(args.first_room, args.first_room + args.rooms))
    results = {}
    for label, weights in zip(labels, args.weights):
        results[label] = sweep(weights, seeds)
        errors = ' '.join(f'{r["odometry_scale_error"]:+.0%}' for r in results[label]['per_gap'])
        print(f'{label}: odometry scale error at gaps 1..6: {errors}; network translation '
              f'x{results[label]["translation_growth_gap6_over_gap1"]:.2f} for x6 the motion',
              flush=True)
    write_json({'benchmark': 'odometry_scale', 'machine': machine_info(),
                'rooms': [seeds[0], seeds[-1]], 'frames': FRAMES, 'checkpoints': results,
                'seconds': time.perf_counter() - started}, args.output, echo=False)


if __name__ == '__main__':
    main()
