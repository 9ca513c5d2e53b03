"""
Training scenes: every supported layout behind one `Scene` type.

Layouts (see this package's ``README.md``); the files are read by `treeaspp_depth_ros.data`,
wrapped here by `Scene.from_dataset`:

* ``sc_depth``: SC-Depth's NYUv2 release (`treeaspp_depth_ros.data.sc_depth`), plus
  ``samples.txt`` per scene (``tgt ref ref`` numbers of the frames in use per line, e.g. written
  by `treeaspp_depth_training.scripts.select_frames`).
* ``pairs``: SC-SfMLearner's rectified pair layout, consecutive images form (tgt, ref) pairs,
  with one ``cam.txt`` or one intrinsics ``*.txt`` per pair.
* ``video``: one folder of frames + ``cam.txt`` (a robot's own video), or a folder of such.
* ``tum``: a TUM RGB-D sequence; ``7scenes``: Microsoft 7-Scenes.
* ``bag``: a rosbag2 recording (`treeaspp_depth_ros.data.bag_dataset`): image and camera_info
  topics, poses from an odometry or pose topic, depth from a depth topic (validation).
* ``synthetic``: procedural rooms from `treeaspp_depth_ros.data.synthetic`, made in memory.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from treeaspp_depth_ros.data import DataError, sc_depth, seven_scenes, tum
from treeaspp_depth_ros.data.bag_dataset import load_bag
from treeaspp_depth_ros.data.files import list_images, natural_key, PathLike
from treeaspp_depth_ros.data.images import read_rgb
from treeaspp_depth_ros.data.intrinsics import read_intrinsics
from treeaspp_depth_ros.data.records import Dataset, from_arrays
from treeaspp_depth_ros.data.synthetic import generate_sequence

from . import selection


@dataclass
class Scene:
    """
    One video and what is known about it.

    Frames are files, an in-memory N x H x W x 3 array, or a sequence that decodes on access
    (a bag's recorded messages).
    """

    name: str
    frames: Union[List[Path], np.ndarray, Sequence[np.ndarray]]
    intrinsics: np.ndarray
    poses: Optional[np.ndarray] = None
    #: explicit (target, references) frame numbers; None = chosen by `selection`
    samples: Optional[List[selection.SampleIndex]] = None
    #: per-sample intrinsics (pair layout), aligned with `samples`
    sample_intrinsics: Optional[List[np.ndarray]] = field(default=None, repr=False)
    #: ground-truth depth in metres by frame number (NaN = unknown), None without ground truth
    depth_loader: Optional[Callable[[int], np.ndarray]] = field(default=None, repr=False)

    @classmethod
    def from_dataset(cls, dataset: Dataset, name: Optional[str] = None) -> 'Scene':
        """Wrap a sequence read by `treeaspp_depth_ros.data`; poses only if every frame has one."""
        if dataset.images is not None:
            frames = dataset.images
        elif all(frame.rgb_path is not None for frame in dataset.frames):
            frames = [frame.rgb_path for frame in dataset.frames]
        else:
            frames = _DecodedFrames(dataset)
        poses = np.stack([frame.pose for frame in dataset.frames]) if dataset.has_pose else None
        return cls(dataset.root.name if name is None else name, frames,
                   np.array(dataset.K, dtype=np.float64), poses=poses,
                   depth_loader=dataset.depth if dataset.has_depth else None)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def has_depth(self) -> bool:
        return self.depth_loader is not None

    def frame(self, index: int) -> np.ndarray:
        if isinstance(self.frames, list):
            return read_rgb(self.frames[index])
        return self.frames[index]

    def depth(self, index: int) -> np.ndarray:
        """Ground-truth depth in metres (NaN = unknown)."""
        if self.depth_loader is None:
            raise DataError(f'scene {self.name} has no ground-truth depth')
        return self.depth_loader(index)

    def frame_path(self, index: int) -> str:
        return str(self.frames[index]) if isinstance(self.frames, list) else \
            f'{self.name}[{index}]'

    def window(self, start: int, stop: int) -> 'Scene':
        """
        Frames ``start <= i < stop`` of this scene (a time split of one video).

        Explicit samples keep those wholly inside the window, renumbered.
        """
        start, stop = max(0, start), min(len(self), stop)
        if stop <= start:
            raise DataError(f'scene {self.name}: frames {start}..{stop} select nothing of its '
                            f'{len(self)} frames')
        frames = (self.frames[start:stop] if isinstance(self.frames, (list, np.ndarray))
                  else _Window(self.frames, start, stop))
        samples, sample_intrinsics = None, None
        if self.samples is not None:
            kept = [k for k, (tgt, refs) in enumerate(self.samples)
                    if all(start <= i < stop for i in [tgt, *refs])]
            samples = [(self.samples[k][0] - start, [i - start for i in self.samples[k][1]])
                       for k in kept]
            if self.sample_intrinsics is not None:
                sample_intrinsics = [self.sample_intrinsics[k] for k in kept]
        loader = self.depth_loader
        return Scene(self.name, frames, self.intrinsics,
                     poses=None if self.poses is None else self.poses[start:stop],
                     samples=samples, sample_intrinsics=sample_intrinsics,
                     depth_loader=None if loader is None else lambda i: loader(i + start))


class _DecodedFrames:
    """A dataset's frames as a sequence of RGB arrays, decoded when indexed."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.dataset.rgb(index)


class _Window:
    """Frames ``start .. stop - 1`` of a decoded-on-access sequence."""

    def __init__(self, frames: Sequence[np.ndarray], start: int, stop: int) -> None:
        self.frames, self.start, self.stop = frames, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.frames[self.start + index]


def frame_window(scenes: Sequence[Scene], frames: Optional[Sequence[int]]) -> List[Scene]:
    """Apply a config's ``frames: [start, stop]`` to every scene (None: all frames)."""
    if frames is None:
        return list(scenes)
    return [scene.window(int(frames[0]), int(frames[1])) for scene in scenes]


# --- SC-Depth / SC-SfMLearner layouts ---------------------------------------------------------

def load_sc_depth(root: PathLike, split: str = 'train') -> List[Scene]:
    """Scenes listed in ``train.txt`` / ``val.txt``."""
    return [load_scene_folder(folder) for folder in sc_depth.split_folders(root, split)]


def load_scene_folder(folder: PathLike, require_depth: bool = False) -> Scene:
    """One scene folder of the SC-Depth layout, with the samples its ``samples.txt`` lists."""
    return _with_samples(sc_depth.load_scene_folder(folder, require_depth))


def load_video(folder: PathLike) -> List[Scene]:
    """Load a folder of frames + cam.txt, or a folder whose sub-folders are such videos."""
    return [_with_samples(dataset) for dataset in sc_depth.load_video(folder)]


#: `select_frames --output DIR` writes DIR/SCENE.samples.txt; `data.samples: DIR` reads them
SAMPLES_SUFFIX = '.samples.txt'


def apply_sample_files(scenes: List[Scene], folder: PathLike) -> int:
    """
    Give each scene the samples of ``folder/SCENE.samples.txt`` (`data.samples`), if there.

    A selection kept outside the data folder (read-only data, several selections to compare)
    is found by scene name; a folder that matches no scene is an error, not a silent no-op.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f'data.samples {folder} is not a directory (select_frames --output)')
    names = [scene.name for scene in scenes]
    applied = 0
    for scene in scenes:
        path = folder / f'{scene.name}{SAMPLES_SUFFIX}'
        if path.is_file():
            if names.count(scene.name) > 1:
                raise DataError(f'{path}: {names.count(scene.name)} scenes are named '
                                f'{scene.name}; give each its own folder name')
            scene.samples = _read_samples(path, len(scene))
            applied += 1
    if not applied:
        raise DataError(f'data.samples {folder} has no {SAMPLES_SUFFIX} for any scene (expected '
                        f'e.g. {names[0] if names else "SCENE"}{SAMPLES_SUFFIX})')
    return applied


def _with_samples(dataset: Dataset) -> Scene:
    scene = Scene.from_dataset(dataset)
    # samples.txt numbers the frames in use (after frame_index.txt)
    samples_file = dataset.root / 'samples.txt'
    if samples_file.is_file():
        scene.samples = _read_samples(samples_file, len(scene))
    return scene


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
    scenes = []
    for folder in sc_depth.split_folders(root, split):
        frames = list_images(folder)
        if len(frames) < 2:
            raise DataError(f'pair scene {folder} needs at least two images, found {len(frames)}')
        count = len(frames) // 2
        txts = sorted(folder.glob('*.txt'), key=natural_key)
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


# --- RGB-D benchmark layouts --------------------------------------------------------------------

def load_seven_scenes(folder: PathLike) -> List[Scene]:
    """One 7-Scenes sequence (``camera-intrinsics.txt`` or ``cam.txt`` replace the published K)."""
    return [Scene.from_dataset(seven_scenes.load_seven_scenes(Path(folder)))]


def load_tum(folder: PathLike) -> List[Scene]:
    """
    Load a TUM RGB-D sequence: rgb.txt/depth.txt (or timestamp-named rgb/, depth/), groundtruth.

    ``cam.txt`` replaces the factory intrinsics, which need freiburg1/2/3 in the path.
    """
    folder = Path(folder)
    dataset = tum.load_tum(folder)
    own = any((folder / name).is_file() for name in tum.INTRINSICS_FILES)
    if not own and dataset.info.get('tum_camera') == 'default':
        raise DataError(f'{folder}: add cam.txt (no freiburg1/2/3 or fr1/2/3 in the path to '
                        f'pick TUM factory intrinsics)')
    return [Scene.from_dataset(dataset)]


# --- rosbag2 recordings ----------------------------------------------------------------------

def load_bags(root: Union[PathLike, Sequence[PathLike]], split: str = 'train',
              **options: Any) -> List[Scene]:
    """One scene per bag; `options` are `treeaspp_depth_ros.data.bag_dataset.load_bag`'s."""
    roots = [root] if isinstance(root, (str, Path)) else list(root)
    scenes = []
    for path in roots:
        dataset = load_bag(Path(path), **options)
        scenes.append(Scene.from_dataset(dataset, name=str(path)))
        if dataset.info.get('undecodable', '0') != '0':
            print(f'bag {path}: skipped {dataset.info["undecodable"]} undecodable of '
                  f'{dataset.info["images"]} images on {dataset.info["image_topic"]}')
        if dataset.info.get('outside_trajectory', '0') != '0':
            print(f'bag {path}: skipped {dataset.info["outside_trajectory"]} images outside the '
                  f'trajectory on {dataset.info["pose_topic"]}')
    return scenes


# --- synthetic --------------------------------------------------------------------------------

def synthetic_scenes(count: int, num_frames: int, width: int, height: int,
                     trajectory: str = 'forward', seed: int = 0, supersample: int = 1
                     ) -> List[Scene]:
    """Procedural rooms rendered in memory; seeds `seed .. seed + count - 1`."""
    scenes = []
    for s in range(seed, seed + count):
        seq = generate_sequence(s, num_frames, width, height, trajectory,
                                supersample=supersample)
        dataset = from_arrays(seq.images, seq.intrinsics, depths=seq.depths, poses=seq.poses)
        scenes.append(Scene.from_dataset(dataset, name=f'synthetic-{trajectory}-{s}'))
    return scenes


LOADERS: Dict[str, Callable[..., List[Scene]]] = {
    'sc_depth': load_sc_depth,
    'pairs': load_pairs,
    'video': lambda root, split='train': load_video(root),
    'tum': lambda root, split='train': load_tum(root),
    '7scenes': lambda root, split='train': load_seven_scenes(root),
    'bag': load_bags,
}

#: every ``data.format``: the layouts `LOADERS` reads and the procedural rooms
FORMATS = (*LOADERS, 'synthetic')


def load_scenes(layout: str, root: Union[PathLike, Sequence[PathLike]], split: str = 'train',
                **options: Any) -> List[Scene]:
    """
    Scenes of a layout (all but ``synthetic``, which `synthetic_scenes` makes).

    Several roots (a list) give the scenes of each in turn; `options` go to the bag reader.
    """
    if layout not in LOADERS:
        raise DataError(f'unknown data format {layout!r}; choose one of {", ".join(FORMATS)}')
    roots = [root] if root is None or isinstance(root, (str, Path)) else list(root)
    if not roots:
        raise DataError('data root is empty')
    for path in roots:
        if path is None or not Path(path).exists():
            raise DataError(f'data root not found: {path}')
    scenes = []
    for path in roots:
        if layout == 'bag':
            scenes.extend(load_bags(path, split=split, **options))
        else:
            scenes.extend(LOADERS[layout](path, split=split))
    if not scenes:
        raise DataError(f'{root}: no scenes found for format {layout!r}')
    return scenes
