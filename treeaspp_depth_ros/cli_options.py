"""
The command-line options several commands share: ``--weights``, ``--input-size``, ``--backend``.

The one home of their argparse wording, for the `treeaspp-depth` sub-commands, training's
evaluate and the benchmarks; the libraries they configure (`weights`, `sizes`, `backends`)
import no argparse. Kept free of torch so that a bad ``--input-size`` is refused before
anything loads it.
"""

import argparse
from pathlib import Path
from typing import Any, Optional, Tuple

from .backends import BACKENDS
from .sizes import (DEFAULT_INPUT_SIZE, INPUT_SIZE_MULTIPLE, MIN_INPUT_SIDE,
                    parse_input_size)
from .weights import DEFAULT_WEIGHTS, DEFAULT_WEIGHTS_HELP


def input_size_argument(text: str) -> Tuple[int, int]:
    """Argparse ``type=`` for ``--input-size``: a bad value exits 2 with the reason."""
    try:
        return parse_input_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_input_size_option(parser: argparse.ArgumentParser, what: str = '') -> None:
    """``--input-size WxH``, defaulting to the size the checkpoint was trained at."""
    parser.add_argument(
        '--input-size', type=input_size_argument, metavar='WxH', default=None,
        help=f'network input size, multiples of {INPUT_SIZE_MULTIPLE}, at least '
             f'{MIN_INPUT_SIDE} (default: the size the checkpoint was trained at, else '
             f'{DEFAULT_INPUT_SIZE[0]}x{DEFAULT_INPUT_SIZE[1]}){what}')


def add_weights_option(parser: argparse.ArgumentParser, what: str, **kwargs: Any) -> None:
    """``--weights``, defaulting to the shipped default weights (`what` starts the help)."""
    default = [DEFAULT_WEIGHTS] if kwargs.get('nargs') in ('+', '*') else DEFAULT_WEIGHTS
    parser.add_argument('--weights', type=Path, default=default,
                        help=f'{what} ({DEFAULT_WEIGHTS_HELP})', **kwargs)


def add_backend_option(parser: argparse.ArgumentParser, default: str = 'torch',
                       from_weights: bool = False) -> None:
    """
    ``--backend`` for the commands that run the network (predict, bag-eval, demo, ...).

    `from_weights`: no fixed default; :func:`backend_for` picks one from the weights file, so
    an .onnx export runs without ``--backend`` wherever a checkpoint does.
    """
    chosen = (f'{default} for a checkpoint, auto (an ONNX backend) for an .onnx'
              if from_weights else default)
    onnx = ('' if from_weights else
            '; an .onnx --weights needs one of the ONNX backends')
    parser.add_argument(
        '--backend', default=None if from_weights else default, choices=BACKENDS,
        help=f'inference backend (default {chosen}): torch, onnxruntime, openvino, tensorrt '
             'or auto (TensorRT on a GPU when installed, else torch on a GPU, else the fastest '
             f'installed CPU backend){onnx}')


def backend_for(weights: Any, requested: Optional[str], default: str = 'torch') -> str:
    """Return the backend asked for, else one the weights can run on: auto for an .onnx."""
    from .onnx_export import is_onnx_path  # at run time: parsing stays free of torch
    if requested is not None:
        return requested
    return 'auto' if is_onnx_path(weights) else default
