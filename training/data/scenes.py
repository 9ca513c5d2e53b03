"""
Video scenes from the supported folder layouts, all behind one `Scene` type.

Layouts (see docs in `training/README.md`):

* ``sc_depth``: SC-Depth's NYUv2 release, ``ROOT/training/{train,val}.txt`` (or
  ``ROOT/{train,val}.txt``) listing scene folders of ``*.jpg`` + ``cam.txt``; optional
  ``depth/*.png`` (metres = value / 5000), ``frame_index.txt`` (frames to use), ``poses.txt``
  (N x 12 camera-to-world), ``samples.txt`` (``tgt ref ref`` numbers of the frames in use per
  line, e.g. written by `training.scripts.select_frames`).
* ``pairs``: SC-SfMLearner's rectified pair layout, consecutive images form (tgt, ref) pairs,
  with one ``cam.txt`` or one intrinsics ``*.txt`` per pair.
* ``video``: one folder of frames + ``cam.txt`` (a robot's own video), or a folder of such.
* ``tum``: a TUM RGB-D sequence (``rgb.txt``/``depth.txt`` or timestamp-named ``rgb/`` +
  ``depth/``, ``groundtruth.txt``).
* ``7scenes``: Microsoft 7-Scenes (``frame-*.color.png``, ``.depth.png``, ``.pose.txt``).
* ``synthetic``: procedural rooms from `training.data.synthetic`, generated in memory.

TUM and 7-Scenes are read by `treeaspp_depth_ros.bag.datasets` (the readers of ``make-bag``),
wrapped by `Scene.from_dataset`.
"""

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

import numpy as np

from treeaspp_depth_ros.bag import datasets as rgbd

from . import selection
from .readers import (DataError, IMAGE_EXTENSIONS, list_images, PathLike, read_depth_png,
                      read_intrinsics, read_list_file, read_rgb, read_rgbd)
from .synthetic import generate_sequence


@dataclass
class Scene:
    """One video: frames (files or an in-memory N x H x W x 3 array) and what is known about it."""

    name: str
    frames: Union[List[Path], np.ndarray]
    intrinsics: np.ndarray
    poses: Optional[np.ndarray] = None
    depths: Optional[Union[List[Path], np.ndarray]] = None
    #: PNG depth units per metre (NYU / TUM 5000, 7-Scenes 1000)
    depth_png_scale: float = 5000.0
    #: explicit (target, references) frame numbers; None = chosen by `selection`
    samples: Optional[List[selection.SampleIndex]] = None
    #: per-sample intrinsics (pair layout), aligned with `samples`
    sample_intrinsics: Optional[List[np.ndarray]] = field(default=None, repr=False)
    #: ground-truth depth by frame number, in place of `depths` (see `from_dataset`)
    depth_loader: Optional[Callable[[int], np.ndarray]] = field(default=None, repr=False)

    @classmethod
    def from_dataset(cls, dataset: rgbd.Dataset, name: Optional[str] = None) -> 'Scene':
        """
        Wrap a sequence read by `treeaspp_depth_ros.bag.datasets` (TUM, 7-Scenes, NYU test).

        Frames are the RGB files, depth comes from `Dataset.depth` (metres, NaN = unknown) with
        its errors as `DataError`, and poses are stacked when every frame has one.
        """
        frames = dataset.images if dataset.images is not None else \
            [frame.rgb_path for frame in dataset.frames]
        poses = np.stack([frame.pose for frame in dataset.frames]) if dataset.has_pose else None
        loader = partial(read_rgbd, dataset.depth) if dataset.has_depth else None
        return cls(dataset.root.name if name is None else name, frames,
                   np.array(dataset.K, dtype=np.float64), poses=poses, depth_loader=loader)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def has_depth(self) -> bool:
        return self.depths is not None or self.depth_loader is not None

    def frame(self, index: int) -> np.ndarray:
        if isinstance(self.frames, np.ndarray):
            return self.frames[index]
        return read_rgb(self.frames[index])

    def depth(self, index: int) -> np.ndarray:
        """Ground-truth depth in metres (0 or NaN = unknown)."""
        if self.depth_loader is not None:
            return self.depth_loader(index)
        if self.depths is None:
            raise DataError(f'scene {self.name} has no ground-truth depth')
        if isinstance(self.depths, np.ndarray):
            return self.depths[index]
        depth = read_depth_png(self.depths[index], self.depth_png_scale)
        depth[depth >= 65535 / self.depth_png_scale] = 0.0  # 65535: a hole or out of range
        return depth

    def frame_path(self, index: int) -> str:
        return str(self.frames[index]) if isinstance(self.frames, list) else \
            f'{self.name}[{index}]'


# --- SC-Depth / SC-SfMLearner layouts ---------------------------------------------------------

def find_split_file(root: PathLike, split: str) -> Path:
    """SC-Depth keeps the lists in ``ROOT/training/``; accept ``ROOT/`` too."""
    root = Path(root)
    for candidate in (root / 'training' / f'{split}.txt', root / f'{split}.txt'):
        if candidate.is_file():
            return candidate
    raise DataError(f'no {split}.txt in {root}/training or {root}: expected SC-Depth layout '
                    f'(ROOT/training/{split}.txt listing scene folders)')


def load_sc_depth(root: PathLike, split: str = 'train') -> List[Scene]:
    """Scenes listed in ``train.txt`` / ``val.txt``."""
    list_file = find_split_file(root, split)
    return [load_scene_folder(list_file.parent / name) for name in read_list_file(list_file)]


def load_scene_folder(folder: PathLike, require_depth: bool = False) -> Scene:
    """One scene folder: frames + cam.txt and the optional files of the SC-Depth layout."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f'scene folder not found: {folder}')
    frames = list_images(folder)
    if not frames:
        raise DataError(f'scene folder {folder} has no images ({", ".join(IMAGE_EXTENSIONS)})')
    K = read_intrinsics(folder / 'cam.txt')
    depths = _matching_depths(folder, frames, require_depth)
    poses = _read_poses(folder / 'poses.txt', len(frames)) if (folder / 'poses.txt').is_file() \
        else None
    index_file = folder / 'frame_index.txt'
    if index_file.is_file():
        keep = _read_indices(index_file, len(frames))
        frames = [frames[i] for i in keep]
        depths = [depths[i] for i in keep] if depths is not None else None
        poses = poses[keep] if poses is not None else None
    # samples.txt numbers the frames in use (after frame_index.txt)
    samples = _read_samples(folder / 'samples.txt', len(frames)) \
        if (folder / 'samples.txt').is_file() else None
    return Scene(folder.name, frames, K, poses=poses, depths=depths, samples=samples)


def _matching_depths(folder: Path, frames: List[Path], required: bool) -> Optional[List[Path]]:
    depth_dir = folder / 'depth'
    if not depth_dir.is_dir():
        if required:
            raise DataError(f'scene {folder} has no depth/ folder of ground-truth PNGs')
        return None
    depths = list_images(depth_dir, ('.png',))
    if len(depths) != len(frames):
        raise DataError(f'{depth_dir} has {len(depths)} depth maps for {len(frames)} frames')
    return depths


def _read_poses(path: Path, count: int) -> np.ndarray:
    try:
        values = np.loadtxt(path, ndmin=2)
    except ValueError as error:
        raise DataError(f'{path}: cannot parse poses: {error}') from None
    if values.shape != (count, 12) and values.shape != (count, 16):
        raise DataError(f'{path}: expected {count} rows of 12 (3x4) or 16 (4x4) numbers, got '
                        f'shape {values.shape}')
    poses = np.tile(np.eye(4), (count, 1, 1))
    poses[:, :3, :] = values[:, :12].reshape(count, 3, 4)
    return poses


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


def _read_samples(path: Path, count: int) -> List[selection.SampleIndex]:
    samples = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith('#'):
            continue
        try:
            values = [int(v) for v in line.split()]
        except ValueError:
            raise DataError(f'{path}:{number}: expected frame numbers "tgt ref [ref ...]"') \
                from None
        if len(values) < 2 or not all(0 <= v < count for v in values):
            raise DataError(f'{path}:{number}: need a target and references in 0..{count - 1}')
        samples.append((values[0], values[1:]))
    if not samples:
        raise DataError(f'{path} lists no samples')
    return samples


def load_pairs(root: PathLike, split: str = 'train') -> List[Scene]:
    """SC-SfMLearner's rectified pair layout: images 2i and 2i+1 form one (tgt, ref) pair."""
    list_file = find_split_file(root, split)
    scenes = []
    for name in read_list_file(list_file):
        folder = list_file.parent / name
        frames = list_images(folder)
        if len(frames) < 2:
            raise DataError(f'pair scene {folder} needs at least two images, found {len(frames)}')
        count = len(frames) // 2
        txts = sorted(p for p in folder.glob('*.txt'))
        if len(txts) == count:
            per_pair = [read_intrinsics(p) for p in txts]
        elif (folder / 'cam.txt').is_file():
            per_pair = [read_intrinsics(folder / 'cam.txt')] * count
        else:
            raise DataError(f'pair scene {folder}: need cam.txt or one intrinsics .txt per pair '
                            f'({count} pairs, found {len(txts)} .txt files)')
        samples = [(2 * i, [2 * i + 1]) for i in range(count)]
        scenes.append(Scene(folder.name, frames, per_pair[0], samples=samples,
                            sample_intrinsics=per_pair))
    return scenes


def load_video(folder: PathLike) -> List[Scene]:
    """Load a folder of frames + cam.txt, or a folder whose sub-folders are such videos."""
    folder = Path(folder)
    if (folder / 'cam.txt').is_file() or list_images(folder):
        return [load_scene_folder(folder)]
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and (p / 'cam.txt').is_file())
    if not subfolders:
        raise DataError(f'{folder}: no frames + cam.txt here or in its sub-folders')
    return [load_scene_folder(p) for p in subfolders]


# --- RGB-D benchmark layouts --------------------------------------------------------------------

def load_seven_scenes(folder: PathLike) -> List[Scene]:
    """
    Load one 7-Scenes sequence folder (depth in millimetres, 65535 = hole).

    ``camera-intrinsics.txt`` or ``cam.txt`` replace the published intrinsics.
    """
    folder = Path(folder)
    cam = next((p for p in (folder / 'camera-intrinsics.txt', folder / 'cam.txt')
                if p.is_file()), None)
    dataset = read_rgbd(rgbd.load_seven_scenes, folder,
                        intrinsics=None if cam is None else str(cam))
    return [Scene.from_dataset(dataset)]


def load_tum(folder: PathLike) -> List[Scene]:
    """
    Load a TUM RGB-D sequence: rgb.txt/depth.txt (or timestamp-named rgb/, depth/), groundtruth.

    ``cam.txt`` replaces the factory intrinsics, which need freiburg1/2/3 in the path.
    """
    folder = Path(folder)
    cam = folder / 'cam.txt'
    dataset = read_rgbd(rgbd.load_tum, folder, intrinsics=str(cam) if cam.is_file() else None)
    if not cam.is_file() and dataset.info.get('tum_camera') == 'default':
        raise DataError(f'{folder}: add cam.txt (no freiburg1/2/3 or fr1/2/3 in the path to '
                        f'pick TUM factory intrinsics)')
    return [Scene.from_dataset(dataset)]


# --- synthetic --------------------------------------------------------------------------------

def synthetic_scenes(count: int, num_frames: int, width: int, height: int,
                     trajectory: str = 'forward', seed: int = 0, supersample: int = 1
                     ) -> List[Scene]:
    """Procedural rooms rendered in memory; seeds `seed .. seed + count - 1`."""
    scenes = []
    for s in range(seed, seed + count):
        seq = generate_sequence(s, num_frames, width, height, trajectory,
                                supersample=supersample)
        scenes.append(Scene(f'synthetic-{trajectory}-{s}', seq.images, seq.intrinsics,
                            poses=seq.poses, depths=seq.depths))
    return scenes


LOADERS: Dict[str, Callable[..., List[Scene]]] = {
    'sc_depth': load_sc_depth,
    'pairs': load_pairs,
    'video': lambda root, split='train': load_video(root),
    'tum': lambda root, split='train': load_tum(root),
    '7scenes': lambda root, split='train': load_seven_scenes(root),
}


def load_scenes(layout: str, root: PathLike, split: str = 'train') -> List[Scene]:
    """Scenes of a folder layout (all but ``synthetic``, which `synthetic_scenes` makes)."""
    if layout not in LOADERS:
        raise DataError(f'unknown data format {layout!r}; choose one of '
                        f'{sorted(LOADERS) + ["synthetic"]}')
    if root is None or not Path(root).exists():
        raise DataError(f'data root not found: {root}')
    scenes = LOADERS[layout](root, split=split)
    if not scenes:
        raise DataError(f'{root}: no scenes found for format {layout!r}')
    return scenes
