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
* ``tum``: a TUM RGB-D sequence (``rgb/``, ``depth/``, ``groundtruth.txt``).
* ``7scenes``: Microsoft 7-Scenes (``frame-*.color.png``, ``.depth.png``, ``.pose.txt``).
* ``synthetic``: procedural rooms from `training.data.synthetic`, generated in memory.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

import numpy as np

from . import selection
from .readers import (DataError, IMAGE_EXTENSIONS, list_images, PathLike, read_depth_png,
                      read_intrinsics, read_list_file, read_rgb)
from .synthetic import generate_sequence

#: TUM RGB-D factory intrinsics (640x480) per camera, used when a sequence has no cam.txt
TUM_INTRINSICS = {
    'freiburg1': (517.3, 516.5, 318.6, 255.3),
    'freiburg2': (520.9, 521.0, 325.1, 249.7),
    'freiburg3': (535.4, 539.2, 320.1, 247.6),
}
SEVEN_SCENES_INTRINSICS = (585.0, 585.0, 320.0, 240.0)


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

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, index: int) -> np.ndarray:
        if isinstance(self.frames, np.ndarray):
            return self.frames[index]
        return read_rgb(self.frames[index])

    def depth(self, index: int) -> np.ndarray:
        """Ground-truth depth in metres (0 or NaN = unknown)."""
        if self.depths is None:
            raise DataError(f'scene {self.name} has no ground-truth depth')
        if isinstance(self.depths, np.ndarray):
            return self.depths[index]
        depth = read_depth_png(self.depths[index], self.depth_png_scale)
        depth[depth >= 65535 / self.depth_png_scale] = 0.0  # 7-Scenes marks holes with 65535
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

def _K(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def load_seven_scenes(folder: PathLike) -> List[Scene]:
    """One 7-Scenes sequence folder (depth in millimetres, 65535 = hole)."""
    folder = Path(folder)
    frames = sorted(folder.glob('frame-*.color.png'))
    if not frames:
        raise DataError(f'{folder}: no frame-*.color.png files (7-Scenes layout)')
    depths = [p.with_name(p.name.replace('.color.png', '.depth.png')) for p in frames]
    pose_files = [p.with_name(p.name.replace('.color.png', '.pose.txt')) for p in frames]
    K = _K(*SEVEN_SCENES_INTRINSICS)
    if (folder / 'camera-intrinsics.txt').is_file():
        K = read_intrinsics(folder / 'camera-intrinsics.txt')
    elif (folder / 'cam.txt').is_file():
        K = read_intrinsics(folder / 'cam.txt')
    poses = None
    if all(p.is_file() for p in pose_files):
        poses = np.stack([_read_matrix(p) for p in pose_files])
    return [Scene(folder.name, frames, K, poses=poses,
                  depths=depths if all(p.is_file() for p in depths) else None,
                  depth_png_scale=1000.0)]


def _read_matrix(path: Path) -> np.ndarray:
    try:
        matrix = np.loadtxt(path)
    except ValueError as error:
        raise DataError(f'{path}: cannot parse 4x4 pose: {error}') from None
    if matrix.shape != (4, 4):
        raise DataError(f'{path}: expected a 4x4 matrix, got shape {matrix.shape}')
    return matrix


def load_tum(folder: PathLike) -> List[Scene]:
    """Load a TUM RGB-D sequence: rgb/*.png named by timestamp, depth/, groundtruth.txt."""
    folder = Path(folder)
    frames = list_images(folder / 'rgb')
    if not frames:
        raise DataError(f'{folder}/rgb has no images (TUM RGB-D layout)')
    if (folder / 'cam.txt').is_file():
        K = read_intrinsics(folder / 'cam.txt')
    else:
        camera = next((c for c in TUM_INTRINSICS if c in folder.name), None)
        if camera is None:
            raise DataError(f'{folder}: add cam.txt (no freiburg1/2/3 in the folder name to '
                            f'pick TUM factory intrinsics)')
        K = _K(*TUM_INTRINSICS[camera])
    stamps = np.array([_timestamp(p) for p in frames])
    depths = None
    if (folder / 'depth').is_dir():
        depth_files = list_images(folder / 'depth', ('.png',))
        depth_stamps = np.array([_timestamp(p) for p in depth_files])
        nearest = _associate(stamps, depth_stamps, 0.02, folder / 'depth')
        depths = [depth_files[i] for i in nearest]
    poses = None
    if (folder / 'groundtruth.txt').is_file():
        poses = _tum_poses(folder / 'groundtruth.txt', stamps)
    return [Scene(folder.name, frames, K, poses=poses, depths=depths, depth_png_scale=5000.0)]


def _timestamp(path: Path) -> float:
    try:
        return float(path.stem)
    except ValueError:
        raise DataError(f'{path}: TUM file names must be timestamps') from None


def _associate(stamps: np.ndarray, other: np.ndarray, tolerance: float, what: Path) -> np.ndarray:
    order = np.argsort(other)
    other = other[order]
    right = np.clip(np.searchsorted(other, stamps), 1, len(other) - 1)
    left = right - 1
    nearest = np.where(np.abs(other[left] - stamps) <= np.abs(other[right] - stamps), left, right)
    if np.any(np.abs(other[nearest] - stamps) > tolerance):
        raise DataError(f'{what}: some frames have no entry within {tolerance}s')
    return order[nearest]


def _tum_poses(path: Path, stamps: np.ndarray) -> np.ndarray:
    rows = np.loadtxt(path, comments='#', ndmin=2)
    if rows.shape[1] != 8:
        raise DataError(f'{path}: expected "timestamp tx ty tz qx qy qz qw" rows')
    nearest = _associate(stamps, rows[:, 0], 0.05, path)
    poses = np.tile(np.eye(4), (len(stamps), 1, 1))
    for i, row in enumerate(rows[nearest]):
        poses[i, :3, :3] = _quaternion_to_matrix(row[4:8])
        poses[i, :3, 3] = row[1:4]
    return poses


def _quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


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
