"""
Depth test sets: the SC-Depth NYU test layout, validation scenes and synthetic frames.

The NYU test layout is ``DIR/color/*.png|jpg`` with ``DIR/depth/*.png`` (uint16,
metres = value / 5000) or one ``DIR/depth.npy`` (N x H x W metres). `training.scripts.convert_nyu`
writes it from the official labeled ``.mat`` file (all 1449 frames or the 654-image Eigen test
split) together with ``info.json`` saying which.
"""

import json
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from .datasets import DepthTestSet
from .readers import DataError, list_images, PathLike
from .scenes import load_scenes, Scene, synthetic_scenes

NYU_DEPTH_PNG_SCALE = 5000.0
#: seeds of the synthetic held-out rooms: far from the training seeds (0, 1, 2, ...)
SYNTHETIC_TEST_SEED = 10_000


def load_test_layout(root: PathLike, depth_png_scale: float = NYU_DEPTH_PNG_SCALE
                     ) -> DepthTestSet:
    """``color/`` + ``depth/*.png`` or ``depth.npy``, checked for matching counts and sizes."""
    root = Path(root)
    frames = list_images(root / 'color')
    if not frames:
        raise DataError(f'{root / "color"} has no images')
    K = np.eye(3)  # intrinsics are not needed to evaluate depth
    npy = root / 'depth.npy'
    if (root / 'depth').is_dir():
        depths = list_images(root / 'depth', ('.png',))
        if len(depths) != len(frames):
            raise DataError(f'{root / "depth"} has {len(depths)} depth PNGs for {len(frames)} '
                            f'images in {root / "color"}')
        for frame, depth in zip(frames, depths):
            if frame.stem != depth.stem:
                raise DataError(f'test set file names do not pair up: {frame} vs {depth}')
        scene = Scene(root.name, frames, K, depths=depths, depth_png_scale=depth_png_scale)
    elif npy.is_file():
        try:
            array = np.load(npy, mmap_mode='r')
        except (ValueError, OSError) as error:
            raise DataError(f'cannot read {npy}: {error}') from None
        if array.ndim != 3 or array.shape[0] != len(frames):
            raise DataError(f'{npy} must be N x H x W with N = {len(frames)} images, got shape '
                            f'{array.shape}')
        scene = Scene(root.name, frames, K, depths=array)
        first = scene.frame(0)
        if first.shape[:2] != array.shape[1:]:
            raise DataError(f'{npy}: depth maps are {array.shape[1:]} but {frames[0]} is '
                            f'{first.shape[:2]}')
    else:
        raise DataError(f'{root}: no depth/ folder or depth.npy next to color/')
    return DepthTestSet.from_scenes([scene], name=root.name)


def synthetic_test_set(count: int = 4, num_frames: int = 8, width: int = 320, height: int = 256,
                       trajectory: str = 'forward', seed: int = SYNTHETIC_TEST_SEED
                       ) -> DepthTestSet:
    """Held-out procedural rooms (seeds never used for training)."""
    scenes = synthetic_scenes(count, num_frames, width, height, trajectory, seed)
    return DepthTestSet.from_scenes(scenes, name='synthetic')


def detect_layout(root: PathLike) -> str:
    """Guess a test folder's layout from the files in it."""
    root = Path(root)
    if (root / 'color').is_dir():
        return 'test'
    if any(root.glob('frame-*.color.png')):
        return '7scenes'
    if (root / 'rgb').is_dir():
        return 'tum'
    if (root / 'training' / 'val.txt').is_file() or (root / 'val.txt').is_file():
        return 'sc_depth'
    if (root / 'cam.txt').is_file() and (root / 'depth').is_dir():
        return 'video'
    raise DataError(f'{root}: not a known test layout (color/ + depth/, SC-Depth val.txt, '
                    f'7-Scenes, TUM, or frames + cam.txt + depth/)')


def load_test_set(root: PathLike, layout: str = 'auto', stride: int = 1,
                  limit: Optional[int] = None) -> DepthTestSet:
    """Any supported folder with ground truth; ``synthetic`` makes held-out rooms."""
    if str(root) == 'synthetic':
        return synthetic_test_set()
    if not Path(root).exists():
        raise DataError(f'test data not found: {root}')
    layout = detect_layout(root) if layout == 'auto' else layout
    if layout == 'test':
        test_set = load_test_layout(root)
        if limit:
            test_set.items = test_set.items[:limit]
        return test_set
    scenes = load_scenes(layout, root, split='val')
    return DepthTestSet.from_scenes(scenes, stride=stride, name=Path(root).name, limit=limit)


def test_set_info(root: PathLike) -> Dict[str, Any]:
    """What the converter recorded about a test folder (split, source), if anything."""
    info = Path(root) / 'info.json'
    if info.is_file():
        try:
            return json.loads(info.read_text())
        except json.JSONDecodeError:
            return {}
    return {}
