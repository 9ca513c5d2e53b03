"""`treeaspp-depth export`: a checkpoint's depth network as an ONNX file (fp32 or INT8)."""

import argparse
from pathlib import Path
import tempfile
from typing import List

import numpy as np

from ..backends import BackendUnavailable
from ..checkpoint import CheckpointError
from ..cli import CommandError
from ..cli_options import add_input_size_option, add_weights_option
from ..data.layouts import AUTO, color_frames, FORMATS
from ..onnx_export import (calibration_inputs, export_onnx, is_onnx_path, OPSET, quantize_int8,
                           read_onnx_info)
from ..weights import in_package


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_weights_option(parser, 'checkpoint (.pth); with --int8 also an fp32 .onnx export')
    parser.add_argument('--format', default='onnx', choices=['onnx'], help='export format')
    add_input_size_option(parser, '; the graph has this static shape')
    parser.add_argument('--output', type=Path, default=None,
                        help='output file (default: CKPT_STEM[_int8].onnx in the current '
                             'directory; never beside the checkpoint, which may be the '
                             'installed package)')
    parser.add_argument('--opset', type=int, default=OPSET, help=f'ONNX opset (>= 17, default '
                        f'{OPSET})')
    parser.add_argument('--int8', action='store_true',
                        help='static INT8 quantisation (QDQ) for CPU backends; needs '
                             '--calibration')
    parser.add_argument('--calibration', type=Path, default=None,
                        help='dataset folder of frames from the target camera for --int8; '
                             'its colour frames are found by its layout (depth maps never '
                             'count)')
    parser.add_argument('--calibration-format', default=AUTO, choices=(AUTO,) + FORMATS,
                        help='layout of --calibration (default: detected from its files)')
    parser.add_argument('--calibration-frames', type=int, default=64,
                        help='at most this many calibration frames (default 64)')


def run(args: argparse.Namespace) -> int:
    if args.int8 and args.calibration is None:
        raise CommandError('--int8 needs --calibration DIR (frames from the target camera)')
    if is_onnx_path(args.weights) and not args.int8:
        raise CommandError(f'{args.weights} is already an ONNX file (quantise it with --int8)')
    suffix = '_int8.onnx' if args.int8 else '.onnx'
    # the current directory is the user's choice; the checkpoint's folder may be the package
    output = args.output or Path.cwd() / (args.weights.stem + suffix)
    if args.output is None and in_package(output):
        raise CommandError(f'the default output {output} is inside the installed package; '
                           'pass --output FILE')
    if output.resolve() == args.weights.resolve():
        raise CommandError(f'--output {output} would overwrite the input')
    frames: List[Path] = []
    if args.int8:  # the frames are checked before the export starts
        if args.calibration_frames < 1:
            raise CommandError('--calibration-frames must be at least 1')
        frames, used = color_frames(args.calibration, args.calibration_format,
                                    limit=args.calibration_frames)
        print(f'[export] INT8 calibration on {used}')
    try:
        if not args.int8:
            export_onnx(args.weights, output, args.input_size, opset=args.opset)
        else:
            _export_int8(args, output, frames)
        info = read_onnx_info(output)
    except (BackendUnavailable, CheckpointError, ValueError, ImportError) as error:
        raise CommandError(str(error)) from None
    scale = 'metric depth_scale %.6g' % info.depth_scale if info.depth_scale else 'up to scale'
    print(f'[export] {output}: {info.variant}, input {info.input_size[0]}x{info.input_size[1]}, '
          f'{info.precision}, {scale}, opset {args.opset}')
    return 0


def _export_int8(args: argparse.Namespace, output: Path, frames: List[Path]) -> None:
    from ..inference import DepthEstimator
    with tempfile.TemporaryDirectory() as folder:
        if is_onnx_path(args.weights):  # quantise an existing fp32 export
            fp32 = args.weights
        else:
            fp32 = export_onnx(args.weights, Path(folder) / 'fp32.onnx', args.input_size,
                               opset=args.opset)
        info = read_onnx_info(fp32)
        if info.precision != 'fp32':
            raise CommandError(f'{fp32} is {info.precision}, not an fp32 export')
        estimator = DepthEstimator(fp32, device='cpu', backend='onnxruntime')

        def preprocess(rgb: np.ndarray) -> np.ndarray:
            return estimator.preprocess([rgb]).numpy()
        quantize_int8(fp32, output, calibration_inputs(frames, preprocess))
