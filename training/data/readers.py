"""Reading frames, depth maps and intrinsics, with errors that name the offending file."""

from pathlib import Path
import re
from typing import Any, Callable, List, Sequence, TypeVar, Union

import cv2
import numpy as np

from treeaspp_depth_ros.cli import CommandError

PathLike = Union[str, Path]
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
T = TypeVar('T')


class DataError(ValueError):
    """Unusable training or test data; the message names the file and the problem."""


def read_rgbd(reader: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """
    Call a reader of `treeaspp_depth_ros.bag.datasets` (or a `Dataset` method).

    Its `CommandError` becomes a `DataError` with the same message.
    """
    try:
        return reader(*args, **kwargs)
    except CommandError as error:
        raise DataError(str(error)) from None


def read_rgb(path: PathLike) -> np.ndarray:
    """HxWx3 uint8 RGB (grey and RGBA files are converted)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        reason = 'file not found' if not Path(path).is_file() else 'not a readable image'
        raise DataError(f'cannot read image {path}: {reason}')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_depth_png(path: PathLike, scale: float) -> np.ndarray:
    """Depth in metres from a 16-bit PNG (metres = value / scale, 0 = no measurement)."""
    depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth is None:
        reason = 'file not found' if not Path(path).is_file() else 'not a readable image'
        raise DataError(f'cannot read depth map {path}: {reason}')
    if depth.ndim != 2 or depth.dtype != np.uint16:
        raise DataError(f'depth map {path} must be a single-channel 16-bit PNG, got '
                        f'{depth.dtype} with shape {depth.shape}')
    return depth.astype(np.float32) / np.float32(scale)


def read_intrinsics(path: PathLike) -> np.ndarray:
    """Read a 3x3 camera matrix from 9 numbers (spaces, commas or newlines)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f'camera intrinsics file missing: {path} (expected 3x3 K, e.g. cam.txt)')
    tokens = [t for t in re.split(r'[\s,;]+', path.read_text()) if t]
    try:
        values = np.array([float(t) for t in tokens], dtype=np.float64)
    except ValueError:
        raise DataError(f'{path}: intrinsics must be 9 numbers, found non-numeric text') from None
    if values.size != 9:
        raise DataError(f'{path}: intrinsics must be 9 numbers (3x3 K), found {values.size}')
    K = values.reshape(3, 3)
    if K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], [0, 0, 1]):
        raise DataError(f'{path}: not a pinhole camera matrix (need fx, fy > 0 and last row '
                        f'0 0 1): {K.tolist()}')
    return K


def list_images(folder: PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> List[Path]:
    """Image files of a folder in name order (the frame order of a video)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f'folder not found: {folder}')
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in extensions and p.is_file())


def read_list_file(path: PathLike) -> List[str]:
    """Non-empty, non-comment lines of a text list (train.txt, val.txt)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f'list file missing: {path}')
    lines = [line.strip() for line in path.read_text().splitlines()]
    entries = [line for line in lines if line and not line.startswith('#')]
    if not entries:
        raise DataError(f'{path} is empty: it must list at least one scene folder')
    return entries
