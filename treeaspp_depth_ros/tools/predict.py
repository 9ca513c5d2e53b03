"""Depth for image files: `<stem>.depth.npy` (float32, image resolution) and a colour PNG."""

import argparse
from pathlib import Path

import cv2
import numpy as np

from ..checkpoint import CheckpointError
from ..cli import CommandError
from ..cli_options import add_backend_option, add_input_size_option, add_weights_option
from ..conversions.colormap import colorize_depth
from ..inference import DepthEstimator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_weights_option(parser, 'checkpoint (.pth) or .onnx from treeaspp-depth export')
    parser.add_argument('images', nargs='+', type=Path, help='image files (any OpenCV format)')
    parser.add_argument('--output-dir', required=True, type=Path, help='output folder')
    add_input_size_option(parser)
    parser.add_argument('--device', default='auto', help='auto, cpu or cuda[:N]')
    add_backend_option(parser)


def run(args: argparse.Namespace) -> int:
    try:
        estimator = DepthEstimator(args.weights, device=args.device,
                                   input_size=args.input_size, backend=args.backend)
    except (CheckpointError, ValueError, RuntimeError, ImportError) as error:
        raise CommandError(str(error)) from None
    print(f'[predict] {estimator.describe()}')
    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:
        raise CommandError(f'image(s) not found: {", ".join(missing)}')
    args.output_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in args.images:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            print(f'skipping {path}: not a readable image')
            failures += 1
            continue
        depth = estimator.predict(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        np.save(args.output_dir / f'{path.stem}.depth.npy', depth.astype(np.float32))
        colour = colorize_depth(depth)
        cv2.imwrite(str(args.output_dir / f'{path.stem}.depth.png'),
                    cv2.cvtColor(colour, cv2.COLOR_RGB2BGR))
        print(f'{path} -> {args.output_dir / path.stem}.depth.npy')
    if not estimator.scale_is_metric:
        print('note: the checkpoint has no calibrated scale; depth is up to scale '
              '(see `treeaspp-depth calibrate-scale`)')
    return 1 if failures else 0
