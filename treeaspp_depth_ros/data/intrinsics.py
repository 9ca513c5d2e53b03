"""
Camera matrices of the datasets: from published values, a field of view, or an intrinsics file.

The matrices are built by :mod:`treeaspp_depth_ros.pinhole` (camera maths, shared with the
node). One parser serves every layout: SC-Depth's ``cam.txt`` (3x3), 7-Scenes'
``camera-intrinsics.txt``, ``fx fy cx cy`` files and ROS camera_info YAML.
"""

from pathlib import Path
import re
from typing import Optional, Sequence, Tuple

import numpy as np

from .errors import DataError
from .files import PathLike
from .. import pinhole
from ..pinhole import intrinsics_matrix, scale_intrinsics

#: published (fx, fy, cx, cy) and the image size (width, height) they belong to
PublishedIntrinsics = Tuple[Tuple[float, float, float, float], Tuple[int, int]]

_NUMBER = r'[-+0-9.eE]+'


def scaled_intrinsics(known: PublishedIntrinsics, width: int, height: int) -> np.ndarray:
    """Rescale published intrinsics to the actual image size (e.g. a 320x240 export)."""
    (fx, fy, cx, cy), (w0, h0) = known
    return scale_intrinsics(intrinsics_matrix(fx, fy, cx, cy), width / w0, height / h0)


def intrinsics_from_fov(width: int, height: int, horizontal_fov_deg: float) -> np.ndarray:
    """`pinhole.intrinsics_from_fov`, a bad field of view being a DataError as the readers' are."""
    try:
        return pinhole.intrinsics_from_fov(width, height, horizontal_fov_deg)
    except ValueError as error:
        raise DataError(str(error)) from None


def parse_intrinsics(spec: str) -> np.ndarray:
    """`fx,fy,cx,cy` given inline, or the path of an intrinsics file (`read_intrinsics`)."""
    text = spec.strip()
    if re.fullmatch(_NUMBER + r'(\s*,\s*' + _NUMBER + r'){3}', text):
        return intrinsics_matrix(*(float(v) for v in text.split(',')))
    if not Path(spec).is_file():
        raise DataError(f'intrinsics {spec!r} is neither "fx,fy,cx,cy" nor a readable file')
    return read_intrinsics(spec)


def read_intrinsics(path: PathLike) -> np.ndarray:
    """Read 4 numbers (fx fy cx cy), 9 (3x3 K, e.g. cam.txt) or a camera_info YAML file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f'camera intrinsics file missing: {path} (expected fx fy cx cy, a 3x3 '
                        'K such as cam.txt, or camera_info YAML)')
    content = path.read_text(errors='replace')
    if path.suffix in ('.yaml', '.yml'):
        return _from_yaml(content, path)
    try:
        numbers = [float(t) for t in re.split(r'[\s,;]+', content) if t]
    except ValueError:
        raise DataError(f'intrinsics file {path} must contain only numbers') from None
    if len(numbers) == 4:
        return _checked(intrinsics_matrix(*numbers), path)
    if len(numbers) == 9:
        return _checked(np.array(numbers, dtype=np.float64).reshape(3, 3), path)
    raise DataError(
        f'intrinsics file {path} has {len(numbers)} numbers; expected 4 (fx fy cx cy) or 9 (K)')


def find_intrinsics_file(folder: Path, names: Sequence[str]) -> Optional[Path]:
    """Find the first of `names` in `folder` (the layouts' conventional file names)."""
    return next((folder / name for name in names if (folder / name).is_file()), None)


def _from_yaml(content: str, path: Path) -> np.ndarray:
    import yaml
    try:
        data = yaml.safe_load(content) or {}
    except yaml.YAMLError as error:
        raise DataError(f'intrinsics file {path} is not valid YAML: {error}') from None
    if isinstance(data, dict):
        matrix = data.get('camera_matrix') or data.get('K') or data.get('k')
        if isinstance(matrix, dict):
            matrix = matrix.get('data')
        if isinstance(matrix, list) and len(matrix) == 9:
            return _checked(np.array(matrix, dtype=np.float64).reshape(3, 3), path)
        if all(k in data for k in ('fx', 'fy', 'cx', 'cy')):
            return _checked(intrinsics_matrix(*(float(data[k]) for k in ('fx', 'fy', 'cx', 'cy'))),
                            path)
    raise DataError(f'intrinsics file {path} has no camera_matrix/K (9 values) or fx, fy, cx, cy')


def _checked(K: np.ndarray, source: Path) -> np.ndarray:
    if not (K[0, 0] > 0 and K[1, 1] > 0 and np.allclose(K[2], [0, 0, 1])):
        raise DataError(f'intrinsics in {source} are not a pinhole camera matrix (need fx, fy '
                        f'> 0 and last row 0 0 1): {K.tolist()}')
    return K
