"""
Camera-height scale of the demo weights over many synthetic rooms, against the true scale.

Each room (a seed of the procedural generator, which knows the camera height and its down
direction) gives two frames; the true scale is the median over all frames of
median(gt / predicted depth), the camera-height scale is :func:`floor.floor_scale` over the
frames with a floor (and, for comparison, the plain median). A bootstrap over rooms gives the
5-95% range of the error, which says how far a figure on a handful of rooms (the test's 16) can
be trusted::

    python -m benchmarks.floor_scale --first-room 96001 --rooms 500

Rooms 95001-95500 were used to choose the weighting; 96001+ were measured once it was chosen.
"""

import argparse
import time
from typing import Dict, List

import numpy as np
import torch

from treeaspp_depth_ros.data.synthetic import generate_sequence
from treeaspp_depth_ros.floor import fit_floor, floor_scale
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.weights import DEMO_WEIGHTS

from .common import add_output_option, machine_info, resolve_output, write_json

#: the demo weights run at their training size
DEMO_INPUT = (64, 64)
FRAMES = (0, 2)


def measure_rooms(estimator: DepthEstimator, seeds: List[int]) -> List[Dict[str, object]]:
    """Per frame: true scale, floor scale and inlier count (None without a floor)."""
    rows = []
    for seed in seeds:
        seq = generate_sequence(seed, max(FRAMES) + 1, 160, 120)
        for i in FRAMES:
            pred = estimator.predict(seq.images[i])
            fit = fit_floor(pred, seq.intrinsics, down=seq.camera_down[i])
            rows.append({'room': seed, 'frame': i,
                         'true_scale': float(np.median(seq.depths[i] / pred)),
                         'floor_scale': fit.scale(float(seq.camera_heights[i])) if fit else None,
                         'inliers': fit.inliers if fit else None})
    return rows


def errors(rows: List[Dict[str, object]]) -> Dict[str, float]:
    """Weighted and plain camera-height scale against the true scale, as relative errors."""
    floor = [r for r in rows if r['floor_scale'] is not None]
    truth = float(np.median([r['true_scale'] for r in rows]))
    scales = [r['floor_scale'] for r in floor]
    return {'true_scale': truth,
            'weighted': floor_scale(scales, [r['inliers'] for r in floor]) / truth - 1,
            'unweighted': float(np.median(scales)) / truth - 1,
            'frames_with_floor': len(floor), 'frames': len(rows)}


def bootstrap(rows: List[Dict[str, object]], draws: int, seed: int = 0) -> Dict[str, List]:
    """5th and 95th percentile of each error over resampled rooms."""
    rooms: Dict[int, list] = {}
    for row in rows:
        rooms.setdefault(row['room'], []).append(row)
    keys = list(rooms)
    rng = np.random.default_rng(seed)
    out: Dict[str, list] = {'weighted': [], 'unweighted': []}
    for _ in range(draws):
        sample = [r for k in rng.choice(keys, len(keys)) for r in rooms[k]]
        if not any(r['floor_scale'] is not None for r in sample):
            continue
        result = errors(sample)
        for name in out:
            out[name].append(result[name])
    return {name: [float(np.percentile(v, 5)), float(np.percentile(v, 95))]
            for name, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--first-room', type=int, default=96001)
    parser.add_argument('--rooms', type=int, default=500)
    parser.add_argument('--bootstrap', type=int, default=1000)
    add_output_option(parser, 'floor_scale.json')
    args = parser.parse_args()
    args.output = resolve_output(args.output, 'floor_scale.json')
    torch.set_num_threads(1)
    estimator = DepthEstimator(DEMO_WEIGHTS, device='cpu', input_size=DEMO_INPUT,
                               depth_scale=1.0)
    started = time.perf_counter()
    rows = measure_rooms(estimator, list(range(args.first_room, args.first_room + args.rooms)))
    result = {'benchmark': 'floor_scale', 'machine': machine_info(),
              'weights': DEMO_WEIGHTS.name, 'input_size': list(DEMO_INPUT),
              'rooms': [args.first_room, args.first_room + args.rooms - 1],
              'frames_per_room': list(FRAMES), **errors(rows),
              'bootstrap_5_95': bootstrap(rows, args.bootstrap),
              'seconds': time.perf_counter() - started, 'per_frame': rows}
    write_json(result, args.output, echo=False)
    low, high = result['bootstrap_5_95']['weighted']
    print(f'rooms {result["rooms"]}: camera-height scale {result["weighted"]:+.1%} '
          f'(5-95%: {low:+.1%}..{high:+.1%}), unweighted median {result["unweighted"]:+.1%}; '
          f'{result["frames_with_floor"]} of {result["frames"]} frames with a floor; '
          f'wrote {args.output}')


if __name__ == '__main__':
    main()
