"""
The record every reader returns: a :class:`Dataset` of :class:`Frame` s.

A dataset holds one camera matrix valid for every frame's image size and loads RGB (HxWx3 uint8)
and depth (HxW float32 metres, NaN = no measurement) lazily, so that sequences of thousands of
frames never sit in memory at once; in-memory sequences (`from_arrays`) share the interface.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from .errors import DataError
from .images import read_depth, read_rgb

#: Default stamp of the first frame for datasets without timestamps (2023-11-14T22:13:20Z);
#: non-zero because many tools read a zero stamp as "unset".
DEFAULT_START_NS = 1_700_000_000 * 10**9


@dataclass
class Frame:
    """One RGB frame, its optional ground-truth depth and camera-to-world pose."""

    stamp_ns: int
    rgb_path: Optional[Path] = None
    depth_path: Optional[Path] = None
    depth_index: Optional[int] = None
    depth_stamp_ns: Optional[int] = None
    pose: Optional[np.ndarray] = None


@dataclass
class Dataset:
    """A sequence of frames with one camera matrix valid for every frame's image size."""

    name: str
    root: Path
    K: np.ndarray
    width: int
    height: int
    frames: List[Frame]
    depth_unit: float = 0.001
    depth_invalid: Tuple[int, ...] = (0,)
    depth_stack: Optional[np.ndarray] = None
    images: Optional[np.ndarray] = None
    depths: Optional[np.ndarray] = None
    info: Dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def has_depth(self) -> bool:
        return bool(self.frames) and all(
            f.depth_path is not None or f.depth_index is not None for f in self.frames)

    @property
    def has_pose(self) -> bool:
        return bool(self.frames) and all(f.pose is not None for f in self.frames)

    def rgb(self, index: int) -> np.ndarray:
        """RGB image of frame `index` (HxWx3 uint8), checked against the dataset's size."""
        if self.images is not None:
            return np.ascontiguousarray(self.images[index])
        path = self.frames[index].rgb_path
        image = read_rgb(path)
        if image.shape[:2] != (self.height, self.width):
            raise DataError(
                f'image {path} is {image.shape[1]}x{image.shape[0]}, but the sequence '
                f'is {self.width}x{self.height}; all frames must share one camera')
        return image

    def depth(self, index: int) -> Optional[np.ndarray]:
        """Ground-truth depth of frame `index` in metres (float32, NaN = no measurement)."""
        frame = self.frames[index]
        if self.depths is not None:
            depth = np.asarray(self.depths[index], dtype=np.float32).copy()
            depth[~(depth > 0)] = np.nan
            return depth
        if frame.depth_index is not None and self.depth_stack is not None:
            depth = np.asarray(self.depth_stack[frame.depth_index], dtype=np.float32).copy()
            depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
            return depth
        if frame.depth_path is None:
            return None
        return read_depth(frame.depth_path, self.depth_unit, self.depth_invalid)


def frame_stamps(numbers: Iterable[int], fps: float, start_ns: int = DEFAULT_START_NS
                 ) -> List[int]:
    """Stamps of numbered frames of a video without timestamps (gaps in the numbers stay)."""
    if fps <= 0:
        raise DataError(f'fps must be positive, got {fps}')
    return [start_ns + int(round(n * 1e9 / fps)) for n in numbers]


def from_arrays(images: np.ndarray, K: np.ndarray, depths: Optional[np.ndarray] = None,
                poses: Optional[np.ndarray] = None, fps: float = 30.0,
                start_ns: int = DEFAULT_START_NS, name: str = 'arrays') -> Dataset:
    """In-memory sequence (e.g. `treeaspp_depth_ros.data.synthetic.generate_sequence`)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise DataError(f'images must be N x H x W x 3 uint8, got {images.dtype} '
                        f'{images.shape}')
    if depths is not None and len(depths) != len(images):
        raise DataError(f'mismatched counts: {len(images)} images, {len(depths)} depths')
    stamps = frame_stamps(range(len(images)), fps, start_ns)
    frames = [Frame(stamp_ns=s, depth_index=i if depths is not None else None,
                    depth_stamp_ns=s if depths is not None else None,
                    pose=None if poses is None else np.asarray(poses[i], dtype=np.float64))
              for i, s in enumerate(stamps)]
    return Dataset(name=name, root=Path('.'), K=np.asarray(K, dtype=np.float64),
                   width=images.shape[2], height=images.shape[1], frames=frames,
                   images=images, depths=depths)
