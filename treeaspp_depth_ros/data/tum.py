"""
TUM RGB-D sequences.

``rgb.txt``/``depth.txt`` (or timestamp-named ``rgb/`` + ``depth/``), depth / 5000, optional
``groundtruth.txt``.
"""

from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from .association import associate
from .errors import DataError
from .files import list_images, require_dir
from .images import image_size
from .intrinsics import find_intrinsics_file, parse_intrinsics, scaled_intrinsics
from .poses import quaternion_to_matrix
from .records import Dataset, Frame
from .sc_depth import DEPTH_PNG_SCALE

#: factory intrinsics (fx, fy, cx, cy) at 640x480 per Freiburg camera
TUM_INTRINSICS = {
    'freiburg1': ((517.3, 516.5, 318.6, 255.3), (640, 480)),
    'freiburg2': ((520.9, 521.0, 325.1, 249.7), (640, 480)),
    'freiburg3': ((535.4, 539.2, 320.1, 247.6), (640, 480)),
    'default': ((525.0, 525.0, 319.5, 239.5), (640, 480)),
}
#: a calibration of your own next to the lists replaces the factory intrinsics
INTRINSICS_FILES = ('cam.txt',)

TumList = List[Tuple[float, List[str]]]


def read_tum_list(path: Path) -> TumList:
    """TUM `rgb.txt`/`depth.txt`/`groundtruth.txt`: `timestamp value...` lines, `#` comments."""
    if not path.is_file():
        raise DataError(f'TUM list {path} not found')
    entries = []
    for number, line in enumerate(path.read_text(errors='replace').splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        parts = line.replace(',', ' ').split()
        try:
            entries.append((float(parts[0]), parts[1:]))
        except (ValueError, IndexError):
            raise DataError(f'{path}:{number}: expected "timestamp value", got {line!r}') \
                from None
    return entries


def _tum_list(src: Path, kind: str) -> TumList:
    """
    Read `kind.txt` (`rgb`, `depth`) of a TUM sequence, else list `kind/` by file name.

    Official sequences ship `rgb.txt`/`depth.txt`; without them, the images in `rgb/` and
    `depth/` must be named by their timestamps (`1341847980.722988.png`), as TUM names them.
    """
    listing = src / f'{kind}.txt'
    folder = src / kind
    if listing.is_file() or not folder.is_dir():
        return read_tum_list(listing)
    entries = []
    for path in list_images(folder):
        try:
            entries.append((float(path.stem), [f'{kind}/{path.name}']))
        except ValueError:
            raise DataError(f'{path}: without {listing.name}, TUM image names must be '
                            'timestamps') from None
    if not entries:
        raise DataError(f'{folder} has no images and {src} has no {listing.name}')
    return sorted(entries)


def tum_camera(src: Path) -> str:
    """Which Freiburg camera recorded a sequence, from its path (`default` when unknown)."""
    name = str(src.resolve()).lower()
    return next((k for k in ('freiburg1', 'freiburg2', 'freiburg3')
                 if k in name or k.replace('freiburg', 'fr') + '_' in name
                 or k.replace('freiburg', 'fr') + '/' in name), 'default')


def load_tum(src: Path, intrinsics: Optional[str] = None, max_difference: float = 0.02,
             depth_unit: Optional[float] = None) -> Dataset:
    """
    Associate RGB and depth like `associate.py`.

    Each frame keeps its own camera stamps (RGB and depth differ by a few ms, as recorded);
    `groundtruth.txt`, when present, gives the pose nearest in time (within `max_difference`).
    Intrinsics: `intrinsics`, else ``cam.txt`` in the sequence, else the factory values of the
    camera named in the path (``info['tum_camera']``).
    """
    src = require_dir(src, 'TUM sequence')
    rgb = _tum_list(src, 'rgb')
    depth = _tum_list(src, 'depth')
    if not rgb:
        raise DataError(f'{src / "rgb.txt"} lists no images')
    if not depth:
        raise DataError(f'{src / "depth.txt"} lists no depth maps')
    pairs = associate(np.array([t for t, _ in rgb]), np.array([t for t, _ in depth]),
                      max_difference)
    if not pairs:
        raise DataError(
            f'no rgb.txt entry of {src} has a depth.txt entry within {max_difference} s')
    key = tum_camera(src)
    width, height = image_size(src / rgb[pairs[0][0]][1][0])
    if intrinsics is None:
        found = find_intrinsics_file(src, INTRINSICS_FILES)
        intrinsics = None if found is None else str(found)
    K = parse_intrinsics(intrinsics) if intrinsics else scaled_intrinsics(
        TUM_INTRINSICS[key], width, height)
    frames = []
    for i, j in pairs:
        t_rgb, (rgb_file, *_) = rgb[i]
        t_depth, (depth_file, *_) = depth[j]
        frames.append(Frame(stamp_ns=int(round(t_rgb * 1e9)), rgb_path=src / rgb_file,
                            depth_path=src / depth_file,
                            depth_stamp_ns=int(round(t_depth * 1e9))))
    if (src / 'groundtruth.txt').is_file():
        _attach_poses(frames, read_tum_list(src / 'groundtruth.txt'), max_difference)
    return Dataset(name='tum', root=src, K=K, width=width, height=height, frames=frames,
                   depth_unit=1.0 / DEPTH_PNG_SCALE if depth_unit is None else depth_unit,
                   info={'tum_camera': key})


def _attach_poses(frames: List[Frame], poses: TumList, max_difference: float) -> None:
    """Give each frame the ground-truth pose nearest in time, if within `max_difference`."""
    if not poses:
        return
    times = np.array([t for t, _ in poses])
    for frame in frames:
        t = frame.stamp_ns * 1e-9
        k = int(np.argmin(np.abs(times - t)))
        if abs(times[k] - t) < max_difference and len(poses[k][1]) >= 7:
            values = [float(v) for v in poses[k][1][:7]]
            frame.pose = quaternion_to_matrix(values[:3], values[3:7])
