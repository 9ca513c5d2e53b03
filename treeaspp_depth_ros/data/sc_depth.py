"""
SC-Depth's scene layout (its NYUv2 release) and a robot's own video in the same form.

``ROOT/training/{train,val}.txt`` (or ``ROOT/{train,val}.txt``) list scene folders; a scene
folder holds frames (natural order), ``cam.txt`` (3x3 K) and optionally ``depth/*.png`` (metres =
value / 5000, 65535 = hole), ``poses.txt`` (N x 12 camera-to-world) and ``frame_index.txt``
(the frame numbers to use). A video folder is one such scene, or a folder of them.
"""

from pathlib import Path
from typing import List, Optional

from .errors import DataError
from .files import IMAGE_SUFFIXES, list_images, natural_key, PathLike, require_dir
from .images import image_size
from .intrinsics import read_intrinsics
from .poses import read_pose_rows
from .records import Dataset, DEFAULT_START_NS, Frame, frame_stamps

#: PNG depth scale of the SC-Depth / NYU / TUM layouts: metres = value / DEPTH_PNG_SCALE
DEPTH_PNG_SCALE = 5000.0
DEPTH_HOLE = 65535


def find_split_file(root: PathLike, split: str) -> Path:
    """SC-Depth keeps the lists in ``ROOT/training/``; accept ``ROOT/`` too."""
    root = Path(root)
    for candidate in (root / 'training' / f'{split}.txt', root / f'{split}.txt'):
        if candidate.is_file():
            return candidate
    raise DataError(f'no {split}.txt in {root}/training or {root}: expected SC-Depth layout '
                    f'(ROOT/training/{split}.txt listing scene folders)')


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


def split_folders(root: PathLike, split: str) -> List[Path]:
    """List the scene folders of a split file."""
    list_file = find_split_file(root, split)
    return [list_file.parent / name for name in read_list_file(list_file)]


def load_scene_folder(folder: PathLike, require_depth: bool = False, fps: float = 30.0,
                      start_ns: int = DEFAULT_START_NS) -> Dataset:
    """One scene folder; stamps follow the frame numbers (gaps from frame_index.txt stay)."""
    folder = require_dir(folder, 'scene folder')
    images = list_images(folder)
    if not images:
        raise DataError(f'scene folder {folder} has no images ({", ".join(IMAGE_SUFFIXES)})')
    K = read_intrinsics(folder / 'cam.txt')
    depths = _matching_depths(folder, images, require_depth)
    poses = read_pose_rows(folder / 'poses.txt', len(images)) \
        if (folder / 'poses.txt').is_file() else None
    index_file = folder / 'frame_index.txt'
    numbers = _read_indices(index_file, len(images)) if index_file.is_file() else \
        list(range(len(images)))
    width, height = image_size(images[numbers[0]])
    frames = []
    for n, stamp in zip(numbers, frame_stamps(numbers, fps, start_ns)):
        frames.append(Frame(stamp_ns=stamp, rgb_path=images[n],
                            depth_path=None if depths is None else depths[n],
                            depth_stamp_ns=None if depths is None else stamp,
                            pose=None if poses is None else poses[n]))
    return Dataset(name='sc_depth', root=folder, K=K, width=width, height=height, frames=frames,
                   depth_unit=1.0 / DEPTH_PNG_SCALE, depth_invalid=(0, DEPTH_HOLE))


def load_split(root: PathLike, split: str = 'train') -> List[Dataset]:
    """Scenes listed in ``train.txt`` / ``val.txt``."""
    return [load_scene_folder(folder) for folder in split_folders(root, split)]


def load_video(folder: PathLike) -> List[Dataset]:
    """Load a folder of frames + cam.txt, or a folder whose sub-folders are such videos."""
    folder = require_dir(folder, 'video folder')
    if (folder / 'cam.txt').is_file() or list_images(folder):
        return [load_scene_folder(folder)]
    subfolders = sorted((p for p in folder.iterdir() if p.is_dir() and (p / 'cam.txt').is_file()),
                        key=natural_key)
    if not subfolders:
        raise DataError(f'{folder}: no frames + cam.txt here or in its sub-folders')
    return [load_scene_folder(p) for p in subfolders]


def _matching_depths(folder: Path, images: List[Path], required: bool) -> Optional[List[Path]]:
    depth_dir = folder / 'depth'
    if not depth_dir.is_dir():
        if required:
            raise DataError(f'scene {folder} has no depth/ folder of ground-truth PNGs')
        return None
    depths = list_images(depth_dir, ('.png',))
    if len(depths) != len(images):
        raise DataError(f'{depth_dir} has {len(depths)} depth maps for {len(images)} frames')
    return depths


def _read_indices(path: Path, count: int) -> List[int]:
    try:
        indices = [int(v) for v in path.read_text().split()]
    except ValueError:
        raise DataError(f'{path}: frame numbers must be integers') from None
    bad = [i for i in indices if not 0 <= i < count]
    if bad or not indices:
        raise DataError(f'{path}: frame numbers must be in 0..{count - 1}, got '
                        f'{bad[:5] or "none"}')
    return indices
