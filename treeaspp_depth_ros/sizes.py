"""
Network input sizes: validation, ``WIDTHxHEIGHT`` parsing and the command-line option.

Kept free of torch so that commands can reject a bad ``--input-size`` before loading it.
"""

import argparse
from typing import Sequence, Tuple

#: used only when neither the caller nor the checkpoint names a size (e.g. converted weights)
DEFAULT_INPUT_SIZE = (320, 256)


def check_input_size(size: Sequence[int]) -> Tuple[int, int]:
    """Validate a (width, height) network input size: positive multiples of 32."""
    width, height = (int(v) for v in size)
    if width < 32 or height < 32 or width % 32 or height % 32:
        raise ValueError(f'network input size must be multiples of 32 (>= 32), got '
                         f'{width}x{height}')
    return width, height


def parse_input_size(text: str) -> Tuple[int, int]:
    """``WIDTHxHEIGHT`` (e.g. ``320x256``) as a checked (width, height); ValueError says why."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise ValueError(f'network input size must look like 320x256, got {text!r}') from None
    return check_input_size((width, height))


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
        help=f'network input size, multiples of 32 (default: the size the checkpoint was '
             f'trained at, else {DEFAULT_INPUT_SIZE[0]}x{DEFAULT_INPUT_SIZE[1]}){what}')
