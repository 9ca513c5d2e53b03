"""Reading one RGB image or depth map, with errors that name the file."""

from pathlib import Path
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from .errors import DataError
from .files import PathLike


def _unreadable(path: PathLike, what: str) -> DataError:
    reason = 'file not found' if not Path(path).is_file() else 'empty or corrupt'
    return DataError(f'cannot read {what} {path}: {reason}')


def read_rgb(path: PathLike) -> np.ndarray:
    """HxWx3 uint8 RGB; grey and RGBA files are converted, a 16-bit depth map is refused."""
    if is_depth_image(path):
        raise DataError(f'{path} is a single-channel 16-bit image (a depth map), not colour')
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise _unreadable(path, 'image')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


#: PNG colour type 0: greyscale without alpha (the byte after the bit depth in IHDR)
_PNG_GREY = 0
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def is_depth_image(path: PathLike) -> bool:
    """
    Whether an image file is single-channel 16-bit (or float): a depth map, never colour.

    Colour listings use it so that a ``depth.png`` beside ``color.png`` is not read as a second
    frame (OpenCV would happily turn it into grey RGB). A PNG is judged by its header alone,
    so listing a long video stays fast; other formats are decoded.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in ('.jpg', '.jpeg', '.bmp'):
        return False  # 8-bit formats
    if suffix == '.png':
        try:
            with open(path, 'rb') as handle:
                header = handle.read(26)
        except OSError:
            return False  # the reader names the unreadable file
        if len(header) == 26 and header[:8] == _PNG_SIGNATURE and header[12:16] == b'IHDR':
            return header[24] == 16 and header[25] == _PNG_GREY
        return False
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return raw is not None and raw.ndim == 2 and raw.dtype in (np.uint16, np.float32)


def split_color_images(paths: Sequence[Path]) -> Tuple[List[Path], List[Path]]:
    """Split image files into (colour frames, depth maps) by :func:`is_depth_image`."""
    color, depth = [], []
    for path in paths:
        (depth if is_depth_image(path) else color).append(path)
    return color, depth


def image_size(path: PathLike) -> Tuple[int, int]:
    """(width, height) of an image file, which fixes the camera matrix of its sequence."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise _unreadable(path, 'image')
    return image.shape[1], image.shape[0]


def read_depth(path: PathLike, unit: float, invalid: Sequence[int] = (0,)) -> np.ndarray:
    """
    Depth in metres (float32, NaN = no measurement) from a 16-bit PNG or a .npy in metres.

    PNG values are multiplied by `unit`; values in `invalid` (0, and 65535 for 7-Scenes and
    SC-Depth holes) carry no measurement.
    """
    path = Path(path)
    if path.suffix == '.npy':
        try:
            depth = np.load(path).astype(np.float32)
        except (OSError, ValueError) as error:
            raise DataError(f'cannot read depth {path}: {error}') from None
        if depth.ndim != 2:
            raise DataError(f'depth {path} has shape {depth.shape}, expected HxW')
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
        return depth
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise _unreadable(path, 'depth image')
    if raw.ndim != 2 or raw.dtype not in (np.uint16, np.float32):
        raise DataError(
            f'depth image {path} is {raw.dtype} with shape {raw.shape}; expected a single-channel '
            '16-bit PNG')
    depth = raw.astype(np.float32)
    bad = np.isin(raw, np.asarray(invalid, dtype=raw.dtype)) if raw.dtype == np.uint16 else \
        ~np.isfinite(depth)
    depth *= np.float32(unit)  # as ROS decodes 16UC1, so a PNG and its bag give equal metres
    depth[bad | (depth <= 0)] = np.nan
    return depth
