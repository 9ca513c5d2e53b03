"""
Depth test sets: the SC-Depth NYU test layout, validation scenes and synthetic frames.

The NYU test layout is ``DIR/color/*.png|jpg`` with ``DIR/depth/*.png`` (uint16,
metres = value / 5000) or one ``DIR/depth.npy`` (N x H x W metres).
`treeaspp_depth_training.scripts.convert_nyu` writes it from the official labeled ``.mat``
file (all 1449 frames or the 654-image Eigen test split) together with ``info.json`` saying
which. The flat ``rgb_*.jpg`` + ``sync_depth_*.png`` (millimetres) layout of BTS works too;
`treeaspp_depth_ros.data.nyu.load_nyu_test` reads them all.
"""

import json
from pathlib import Path
from typing import Any, Dict, Optional

from treeaspp_depth_ros.data import DataError
from treeaspp_depth_ros.data.files import PathLike
from treeaspp_depth_ros.data.nyu import load_nyu_test
from treeaspp_depth_ros.data.seven_scenes import is_seven_scenes

from .datasets import DepthTestSet
from .scenes import load_scenes, Scene, synthetic_scenes

#: seeds of the synthetic held-out rooms: far from the training seeds (0, 1, 2, ...)
SYNTHETIC_TEST_SEED = 10_000


def load_test_layout(root: PathLike, depth_png_scale: Optional[float] = None
                     ) -> DepthTestSet:
    """
    Load an NYU test layout, checked for matching counts, file names and sizes.

    ``depth_png_scale`` overrides the layout's PNG units (5000 per metre in ``depth/``,
    1000 for ``sync_depth_*.png``).
    """
    root = Path(root)
    unit = None if depth_png_scale is None else 1.0 / depth_png_scale
    dataset = load_nyu_test(root, depth_unit=unit)
    if not dataset.has_depth:
        raise DataError(f'{root}: no ground truth (depth/ or depth.npy next to color/, or '
                        f'sync_depth_*.png)')
    if (root / 'color').is_dir():
        for frame in dataset.frames:
            if frame.depth_path is not None and frame.depth_path.stem != frame.rgb_path.stem:
                raise DataError(f'test set file names do not pair up: {frame.rgb_path} vs '
                                f'{frame.depth_path}')
    return DepthTestSet.from_scenes([Scene.from_dataset(dataset)], name=root.name)


def synthetic_test_set(count: int = 4, num_frames: int = 8, width: int = 320, height: int = 256,
                       trajectory: str = 'forward', seed: int = SYNTHETIC_TEST_SEED
                       ) -> DepthTestSet:
    """Held-out procedural rooms (seeds never used for training)."""
    scenes = synthetic_scenes(count, num_frames, width, height, trajectory, seed)
    return DepthTestSet.from_scenes(scenes, name='synthetic')


def detect_layout(root: PathLike) -> str:
    """Guess a test folder's layout from the files in it."""
    root = Path(root)
    if (root / 'color').is_dir() or any(root.glob('sync_depth_*.png')):
        return 'test'
    if is_seven_scenes(root):
        return '7scenes'
    if (root / 'rgb').is_dir():
        return 'tum'
    if (root / 'training' / 'val.txt').is_file() or (root / 'val.txt').is_file():
        return 'sc_depth'
    if (root / 'cam.txt').is_file() and (root / 'depth').is_dir():
        return 'video'
    raise DataError(f'{root}: not a known test layout (color/ + depth/, rgb_* + sync_depth_*, '
                    f'SC-Depth val.txt, 7-Scenes, TUM, or frames + cam.txt + depth/)')


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
