"""
Network input sizes: validation and ``WIDTHxHEIGHT`` parsing.

Kept free of torch so that commands can reject a bad ``--input-size`` before loading it; the
``--input-size`` option itself is in :mod:`treeaspp_depth_ros.cli_options`.
"""

from typing import Sequence, Tuple

#: used only when neither the caller nor the checkpoint names a size (e.g. converted weights)
DEFAULT_INPUT_SIZE = (320, 256)

#: the encoder's total stride: each side must be a multiple of it
INPUT_SIZE_MULTIPLE = 32
#: smallest side: at 32 px the 1/32 feature map is one cell, which the decoder's reflection
#: padding cannot pad, so the network fails in training and inference alike
MIN_INPUT_SIDE = 64


def check_input_size(size: Sequence[int]) -> Tuple[int, int]:
    """
    Validate a (width, height) network input size: multiples of 32, each side >= 64.

    The one size rule of the package: inference, export and the training config
    (``data.width`` / ``data.height``) all use it.
    """
    width, height = (int(v) for v in size)
    if (min(width, height) < MIN_INPUT_SIDE or width % INPUT_SIZE_MULTIPLE
            or height % INPUT_SIZE_MULTIPLE):
        raise ValueError(f'network input size must be multiples of {INPUT_SIZE_MULTIPLE} '
                         f'(>= {MIN_INPUT_SIDE}), got {width}x{height}')
    return width, height


def parse_input_size(text: str) -> Tuple[int, int]:
    """``WIDTHxHEIGHT`` (e.g. ``320x256``) as a checked (width, height); ValueError says why."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise ValueError(f'network input size must look like 320x256, got {text!r}') from None
    return check_input_size((width, height))
