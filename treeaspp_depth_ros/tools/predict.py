"""
Depth for image files: per image ``STEM.depth.npy`` and ``STEM.depth.png`` in ``--output-dir``.

The ``.npy`` is float32 depth at the image's resolution (metres with a calibrated scale, else
network units); the PNG is that depth colour-mapped with a colour bar, one range for the whole
run (the 2nd-98th percentiles of every image's depth, or ``--depth-range``), so equal colours
mean equal depth across the images. What scale was used, and from where, is printed first.
"""

import argparse
from pathlib import Path
from typing import List, Optional, Tuple

import cv2
import numpy as np

from ..checkpoint import CheckpointError, read_scale_sidecar, scale_sidecar_path
from ..cli import CommandError
from ..cli_options import (add_backend_option, add_input_size_option, add_weights_option,
                           backend_for)
from ..conversions.colormap import depth_with_colorbar
from ..files import atomic_write, atomic_write_bytes
from ..inference import DepthEstimator

#: percentiles of all the run's valid depth that bound the colour bar
RANGE_PERCENTILES = (2.0, 98.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_weights_option(parser, 'checkpoint (.pth) or .onnx from treeaspp-depth export')
    parser.add_argument('images', nargs='+', type=Path, help='image files (any OpenCV format)')
    parser.add_argument('--output-dir', required=True, type=Path,
                        help='output folder: STEM.depth.npy (float32 depth) and STEM.depth.png '
                             '(colour map with a colour bar) per image')
    parser.add_argument('--depth-range', type=float, nargs=2, metavar=('NEAR', 'FAR'),
                        help='colour bar range (default: 2nd-98th percentile of all the '
                             "run's depth, one range for every image)")
    add_input_size_option(parser)
    parser.add_argument('--device', default='auto', help='auto, cpu or cuda[:N]')
    add_backend_option(parser, from_weights=True)


def run(args: argparse.Namespace) -> int:
    if args.depth_range is not None and not 0 < args.depth_range[0] < args.depth_range[1]:
        raise CommandError(f'--depth-range needs 0 < NEAR < FAR, got {args.depth_range}')
    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:
        raise CommandError(f'image(s) not found: {", ".join(missing)}')
    try:
        estimator = DepthEstimator(args.weights, device=args.device, input_size=args.input_size,
                                   backend=backend_for(args.weights, args.backend))
    except (CheckpointError, ValueError, RuntimeError, ImportError) as error:
        raise CommandError(str(error)) from None
    print(f'[predict] {estimator.describe()}')
    print(f'[predict] {scale_text(estimator, args.weights)}')
    args.output_dir.mkdir(parents=True, exist_ok=True)
    written, samples, failures = [], [], 0
    for path in args.images:  # depth first, so one colour range can cover every image
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            print(f'skipping {path}: not a readable image')
            failures += 1
            continue
        depth = estimator.predict(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).astype(np.float32)
        npy = args.output_dir / f'{path.stem}.depth.npy'
        atomic_write(npy, lambda handle, d=depth: np.save(handle, d))
        sub = depth[::8, ::8]
        samples.append(sub[np.isfinite(sub) & (sub > 0)])
        written.append((path, npy))
    if written:
        near, far = colour_range(samples, args.depth_range)
        unit = 'm' if estimator.scale_is_metric else ''
        for path, npy in written:
            png = args.output_dir / f'{path.stem}.depth.png'
            image = depth_with_colorbar(np.load(npy), near, far, unit=unit)
            ok, encoded = cv2.imencode('.png', cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            if not ok:
                raise CommandError(f'cannot encode {png.name} as PNG')
            atomic_write_bytes(encoded.tobytes(), png)
            print(f'{path} -> {npy}, {png.name}')
        print(f'[predict] colour bar {near:.3g}-{far:.3g} {unit or "(up to scale)"} for all '
              f'{len(written)} images')
    return 1 if failures else 0


def scale_text(estimator: DepthEstimator, weights: Path) -> str:
    """Say which scale multiplies the depth and where it came from (a sidecar changes it)."""
    sidecar = scale_sidecar_path(weights)
    if not estimator.has_depth_scale:
        return ('depth up to scale: the weights have no calibrated scale (see '
                '`treeaspp-depth calibrate-scale`)')
    if estimator.scale_synthetic:
        return (f'depth scale {estimator.depth_scale:.6g} {estimator.scale_origin}: not metric '
                'for a real camera (run `treeaspp-depth calibrate-scale` on its recording)')
    if read_scale_sidecar(weights) is not None:
        return (f'depth scale {estimator.depth_scale:.6g} from the sidecar {sidecar} (it '
                "overrides the weights' own; delete it to use theirs)")
    return f'depth scale {estimator.depth_scale:.6g} from the weights file'


def colour_range(samples: List[np.ndarray], requested: Optional[List[float]]
                 ) -> Tuple[float, float]:
    """One (near, far) in depth units for the run: `requested`, else percentiles of all."""
    if requested is not None:
        return float(requested[0]), float(requested[1])
    values = np.concatenate(samples) if samples else np.empty(0, np.float32)
    if not values.size:
        return 0.1, 10.0  # nothing valid anywhere: any range shows it as invalid
    near, far = (float(v) for v in np.percentile(values, RANGE_PERCENTILES))
    return near, max(far, near * 1.001)
