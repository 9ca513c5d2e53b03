r"""
Convert the official NYUv2 labeled file into the SC-Depth test layout.

    python -m treeaspp_depth_training.scripts.convert_nyu nyu_depth_v2_labeled.mat OUT \
        --split eigen --splits splits.mat          # the standard 654-image test set
    python -m treeaspp_depth_training.scripts.convert_nyu nyu_depth_v2_labeled.mat OUT \
        --split all                                # all 1449

writes ``OUT/color/NNNN.png`` and ``OUT/depth/NNNN.png`` (uint16, metres x 5000; NNNN is the
frame's 0-based index in the labeled file) or ``OUT/depth.npy`` (N x 480 x 640 metres), plus
``OUT/info.json`` recording the split, which `treeaspp_depth_training.evaluate` prints next to
its results.
Both files come from the NYU Depth v2 page (labeled dataset and "train / test split").
"""

import argparse
import json
from pathlib import Path
import sys
from typing import List, Optional

import cv2
import numpy as np

from treeaspp_depth_ros.data import DataError
from treeaspp_depth_ros.data.sc_depth import DEPTH_PNG_SCALE
from treeaspp_depth_training.command import run_command
from treeaspp_depth_training.data.nyu_mat import eigen_test_indices, LabeledNYU, NYU_TEST_FRAMES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m treeaspp_depth_training.scripts.convert_nyu',
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('labeled', help='nyu_depth_v2_labeled.mat')
    parser.add_argument('output', help='output folder (test layout)')
    parser.add_argument('--split', choices=['eigen', 'all'], default='eigen',
                        help='eigen: the 654 official test frames (needs --splits); all: 1449')
    parser.add_argument('--splits', help="NYU's splits.mat (testNdxs)")
    parser.add_argument('--depth-format', choices=['png', 'npy'], default='png')
    parser.add_argument('--image-format', choices=['png', 'jpg'], default='png')
    return parser


def convert(labeled: str, output: str, split: str = 'eigen', splits: Optional[str] = None,
            depth_format: str = 'png', image_format: str = 'png') -> Path:
    data = LabeledNYU(labeled)
    try:
        if split == 'eigen':
            if not splits:
                raise DataError('--split eigen needs --splits splits.mat (official NYU split)')
            indices = eigen_test_indices(splits)
            if indices.min() < 0 or indices.max() >= len(data):
                raise DataError(f'{splits}: test indices outside 1..{len(data)}')
        else:
            indices = np.arange(len(data))
        out = Path(output)
        (out / 'color').mkdir(parents=True, exist_ok=True)
        if depth_format == 'png':
            (out / 'depth').mkdir(exist_ok=True)
        depths = []
        for index in indices:
            rgb, depth = data[int(index)]
            name = f'{int(index):04d}'
            cv2.imwrite(str(out / 'color' / f'{name}.{image_format}'),
                        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            if depth_format == 'png':
                png = np.clip(np.round(depth * DEPTH_PNG_SCALE), 0, 65535).astype(np.uint16)
                cv2.imwrite(str(out / 'depth' / f'{name}.png'), png)
            else:
                depths.append(depth)
        if depth_format == 'npy':
            np.save(out / 'depth.npy', np.stack(depths).astype(np.float32))
        label = f'eigen_test_{len(indices)}' if split == 'eigen' else f'all_{len(indices)}'
        if split == 'eigen' and len(indices) != NYU_TEST_FRAMES:
            label += f' (expected {NYU_TEST_FRAMES})'
        info = {'source': Path(labeled).name, 'split': label, 'count': int(len(indices)),
                'indices': [int(i) for i in indices], 'depth_png_scale': DEPTH_PNG_SCALE}
        (out / 'info.json').write_text(json.dumps(info, indent=1))
        return out
    finally:
        data.close()


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command('convert_nyu', lambda: _convert(args), (DataError,))


def _convert(args: argparse.Namespace) -> int:
    out = convert(args.labeled, args.output, args.split, args.splits, args.depth_format,
                  args.image_format)
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
