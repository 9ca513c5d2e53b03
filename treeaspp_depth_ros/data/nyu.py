"""
NYU Depth v2 test layouts.

- `color/*` with `depth/*.png` (SC-SfMLearner layout, value / 5000 = metres) or `depth.npy`
  (N x H x W metres, e.g. the 654-image Eigen test split),
- flat `rgb_*.jpg` + `sync_depth_*.png` (BTS/Metric3D layout, millimetres).
"""

from pathlib import Path
from typing import List, Optional

import numpy as np

from .errors import DataError
from .files import list_images, natural_key, require_dir
from .images import image_size
from .intrinsics import parse_intrinsics, scaled_intrinsics
from .records import Dataset, DEFAULT_START_NS, Frame, frame_stamps
from .sc_depth import DEPTH_PNG_SCALE

#: published NYUv2 Kinect intrinsics (fx, fy, cx, cy) at 640x480
NYU_INTRINSICS = ((518.8579, 519.46961, 325.58245, 253.73617), (640, 480))


def load_nyu_test(src: Path, intrinsics: Optional[str] = None,
                  depth_unit: Optional[float] = None, fps: float = 30.0,
                  start_ns: int = DEFAULT_START_NS) -> Dataset:
    """Read either NYU test layout; depth pairs with images by file stem, else by order."""
    src = require_dir(src, 'NYU folder')
    depth_stack = None
    if (src / 'color').is_dir():
        images = list_images(src / 'color')
        if not images:
            raise DataError(f'NYU folder {src / "color"} has no images')
        depth_files: List[Optional[Path]] = [None] * len(images)
        unit = 1.0 / DEPTH_PNG_SCALE
        if (src / 'depth.npy').is_file():
            depth_stack = _depth_stack(src / 'depth.npy', len(images), src / 'color')
        elif (src / 'depth').is_dir():
            depth_files = _paired_depths(src / 'depth', images, src / 'color')
    else:
        images = sorted(src.glob('rgb_*.jpg'), key=natural_key) + \
            sorted(src.glob('rgb_*.png'), key=natural_key)
        if not images:
            raise DataError(
                f'{src} is not an NYU test layout: expected color/ (+ depth/ or depth.npy) or '
                'rgb_*.jpg + sync_depth_*.png')
        unit = 0.001
        depth_files = []
        for image in images:
            candidate = src / ('sync_depth_' + image.stem[len('rgb_'):] + '.png')
            depth_files.append(candidate if candidate.is_file() else None)
        missing = [i.name for i, d in zip(images, depth_files) if d is None]
        if missing and len(missing) != len(images):
            raise DataError(f'mismatched NYU counts in {src}: no sync_depth_*.png for '
                            f'{", ".join(missing[:3])}')
    width, height = image_size(images[0])
    if depth_stack is not None and depth_stack.shape[1:] != (height, width):
        raise DataError(
            f'{src / "depth.npy"}: depth maps are {depth_stack.shape[2]}x{depth_stack.shape[1]} '
            f'but {images[0]} is {width}x{height}')
    K = parse_intrinsics(intrinsics) if intrinsics else scaled_intrinsics(
        NYU_INTRINSICS, width, height)
    stamps = frame_stamps(range(len(images)), fps, start_ns)
    frames = []
    for i, (stamp, image) in enumerate(zip(stamps, images)):
        frame = Frame(stamp_ns=stamp, rgb_path=image, depth_path=depth_files[i])
        if depth_stack is not None:
            frame.depth_index = i
        if frame.depth_path is not None or frame.depth_index is not None:
            frame.depth_stamp_ns = stamp
        frames.append(frame)
    return Dataset(name='nyu-test', root=src, K=K, width=width, height=height, frames=frames,
                   depth_unit=unit if depth_unit is None else depth_unit,
                   depth_stack=depth_stack)


def _depth_stack(path: Path, count: int, color: Path) -> np.ndarray:
    try:
        stack = np.load(path, mmap_mode='r')
    except (OSError, ValueError) as error:
        raise DataError(f'cannot read {path}: {error}') from None
    if stack.ndim != 3 or len(stack) != count:
        raise DataError(f'{path} must be N x H x W with N = {count} images in {color}, got '
                        f'shape {stack.shape}')
    return stack


def _paired_depths(depth_dir: Path, images: List[Path], color: Path) -> List[Optional[Path]]:
    depths = list_images(depth_dir, ('.png', '.npy'))
    if len(depths) != len(images):
        raise DataError(f'mismatched NYU counts: {depth_dir} has {len(depths)} depth maps for '
                        f'{len(images)} images in {color}')
    # pair by file stem, or by order when the two folders name their files differently
    by_stem = {p.stem: p for p in depths}
    if all(p.stem in by_stem for p in images):
        return [by_stem[p.stem] for p in images]
    return list(depths)
