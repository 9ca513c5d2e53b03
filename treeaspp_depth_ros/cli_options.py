"""
The command-line options several commands share: ``--weights``, ``--input-size``, ``--backend``.

The one home of their argparse wording, for the `treeaspp-depth` sub-commands, training's
evaluate and the benchmarks; the libraries they configure (`weights`, `sizes`, `backends`)
import no argparse. Kept free of torch so that a bad ``--input-size`` is refused before
anything loads it.
"""

import argparse
from pathlib import Path
from typing import Any, Tuple

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


def add_backend_option(parser: argparse.ArgumentParser, default: str = 'torch') -> None:
    """``--backend`` for the commands that run the network (predict, bag-eval, demo, ...)."""
    parser.add_argument(
        '--backend', default=default, choices=BACKENDS,
        help=f'inference backend (default {default}): torch, onnxruntime, openvino, tensorrt '
             'or auto (TensorRT on a GPU when installed, else torch on a GPU, else the fastest '
             'installed CPU backend); an .onnx --weights needs one of the ONNX backends')
