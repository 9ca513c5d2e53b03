"""
Depth on real rooms, against a constant depth on the same frames.

    python -m benchmarks.real_rooms [--weights A.pt B.pt ...] [--input-size 128x96]
        [--output benchmarks/results/real_rooms.json]

Frame sets (fixed before any training; nothing here is used to choose a checkpoint):

* ``kitchen_heldout``: 7-Scenes redkitchen frames 900-999, every 5th (20 frames), of the
  1000-frame video whose frames 0-799 train the default weights and 800-899 choose their
  checkpoints;
* ``nyu``: the three NYUv2 samples, Eigen crop;
* ``tum``: the TUM fr3 long-office frame.

Each weights file runs at its training size unless ``--input-size`` says otherwise. Metrics are
median-scaled (the paper's protocol), 0.1-10 m; ``constant`` is a constant depth median-scaled
on the same frames, so ``ratio`` = weights / constant (below 1: better than knowing nothing).
"""

import argparse
from pathlib import Path
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np
from treeaspp_depth_ros.cli_options import add_input_size_option
from treeaspp_depth_ros.data.nyu import load_nyu_test
from treeaspp_depth_ros.data.seven_scenes import load_seven_scenes
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.metrics import aggregate_metrics, compute_depth_metrics
from treeaspp_depth_ros.weights import DEFAULT_WEIGHTS, DEMO_WEIGHTS

from .common import add_output_option, machine_info, resolve_output, write_json

DATA = Path(__file__).resolve().parents[2] / 'shared' / 'data'
KITCHEN = DATA / '7scenes-redkitchen-1000'
HELD_OUT = range(900, 1000, 5)
Frames = List[Tuple[np.ndarray, np.ndarray]]


def kitchen_heldout() -> Frames:
    """7-Scenes redkitchen frames 900-999, every 5th: never trained on, never chosen on."""
    dataset = load_seven_scenes(KITCHEN)
    return [(dataset.rgb(i), dataset.depth(i)) for i in HELD_OUT]


def nyu_samples() -> Frames:
    dataset = load_nyu_test(DATA / 'nyu-v2-samples')
    return [(dataset.rgb(i), dataset.depth(i)) for i in range(len(dataset))]


def tum_frame() -> Frames:
    folder = DATA / 'tum-fr3-long-office'
    rgb = cv2.cvtColor(cv2.imread(str(folder / 'color.png')), cv2.COLOR_BGR2RGB)
    depth = cv2.imread(str(folder / 'depth.png'), cv2.IMREAD_UNCHANGED).astype(np.float32)
    return [(rgb, np.where(depth > 0, depth / 5000.0, np.nan).astype(np.float32))]


#: name -> (frames, evaluation crop)
SETS: Dict[str, Tuple[Callable[[], Frames], Optional[str]]] = {
    'kitchen_heldout': (kitchen_heldout, None),
    'nyu': (nyu_samples, 'eigen'),
    'tum': (tum_frame, None),
}


def score(predict: Callable[[np.ndarray], np.ndarray], frames: Frames, crop: Optional[str]
          ) -> Dict[str, float]:
    """Median-scaled metrics of `predict` (RGB -> depth) over `frames`."""
    rows = [compute_depth_metrics(predict(rgb), gt, crop=crop, min_depth=0.1, max_depth=10.0)
            for rgb, gt in frames]
    return aggregate_metrics(rows)


def constant(rgb: np.ndarray) -> np.ndarray:
    return np.ones(rgb.shape[:2], np.float32)


def evaluate(weights: List[Path], input_size: Optional[Tuple[int, int]]
             ) -> Iterator[Dict[str, Any]]:
    sets = {name: (load(), crop) for name, (load, crop) in SETS.items()}
    baselines = {name: score(constant, frames, crop) for name, (frames, crop) in sets.items()}
    for path in weights:
        estimator = DepthEstimator(str(path), device='cpu', input_size=input_size)
        row: Dict[str, Any] = {'weights': str(path), 'variant': estimator.variant,
                               'input_size': estimator.input_size_text,
                               'trained_on': estimator.checkpoint.get('trained_on', '')}
        for name, (frames, crop) in sets.items():
            got, base = score(estimator.predict, frames, crop), baselines[name]
            row[name] = {'frames': len(frames), 'abs_rel': got['abs_rel'], 'a1': got['a1'],
                         'constant_abs_rel': base['abs_rel'], 'constant_a1': base['a1'],
                         'ratio': got['abs_rel'] / base['abs_rel']}
        yield row


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--weights', type=Path, nargs='+',
                        default=[DEFAULT_WEIGHTS, DEMO_WEIGHTS])
    add_input_size_option(parser)
    add_output_option(parser, 'real_rooms.json')
    args = parser.parse_args(argv)
    args.output = resolve_output(args.output, 'real_rooms.json')
    if not KITCHEN.is_dir():
        print(f'real_rooms: {KITCHEN} not found (needs ../shared/data)', file=sys.stderr)
        return 2
    rows = []
    for row in evaluate(args.weights, args.input_size):
        rows.append(row)
        write_json({'benchmark': 'real_rooms', 'machine': machine_info(),
                    'frames': {'kitchen_heldout': '7-Scenes redkitchen 900-999 every 5th',
                               'nyu': 'nyu-v2-samples (3), Eigen crop',
                               'tum': 'tum-fr3-long-office (1)'},
                    'protocol': 'median-scaled, 0.1-10 m; ratio = weights / constant depth',
                    'rows': rows}, args.output, echo=False)
        print(' '.join([Path(row['weights']).name, row['input_size']] + [
            f'{name} {row[name]["abs_rel"]:.3f}/{row[name]["constant_abs_rel"]:.3f}'
            f'={row[name]["ratio"]:.2f}' for name in SETS]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
