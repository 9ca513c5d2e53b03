"""
Frame sources for the demo camera: the synthetic indoor generator, a folder, or a rosbag2.

All of them become a :class:`~treeaspp_depth_ros.data.records.Dataset` (RGB frames, one camera
matrix, optional ground-truth depth in metres), so the camera publisher and the recorder's
evaluation treat every source the same way.
"""

from pathlib import Path
from typing import Optional

import numpy as np

from ..cli import CommandError
from ..data.layouts import detect_format, load_dataset
from ..data.records import Dataset, from_arrays
from ..data.synthetic import generate_sequence

SYNTHETIC = 'synthetic'
#: the demo's default stream: 640x480 like the cameras the README talks about
DEFAULT_SIZE = (640, 480)
DEFAULT_FRAMES = 60
BAG_SUFFIXES = ('.db3', '.mcap')


def synthetic_dataset(frames: int = DEFAULT_FRAMES, width: int = DEFAULT_SIZE[0],
                      height: int = DEFAULT_SIZE[1], seed: int = 7,
                      trajectory: str = 'forward') -> Dataset:
    """Render an indoor sequence with exact depth (the generator training uses too)."""
    sequence = generate_sequence(seed, frames, width, height, trajectory)
    return from_arrays(sequence.images, sequence.intrinsics, depths=sequence.depths,
                       poses=sequence.poses, name=f'synthetic(seed={seed}, {trajectory})')


def _is_bag(path: Path) -> bool:
    return path.suffix in BAG_SUFFIXES or (path.is_dir() and (path / 'metadata.yaml').is_file())


def folder_dataset(path: Path) -> Dataset:
    """
    Read a folder in one of the layouts make-bag reads, detected from its files.

    7-Scenes (``frame-*.color.png|jpg``), TUM RGB-D (``rgb.txt``), NYU, or plain images with
    intrinsics (``intrinsics.txt``, ``camera-intrinsics.txt`` or SC-Depth's ``cam.txt``) and
    optional ground truth in ``depth/`` (same file stems, 16-bit millimetres).
    """
    fmt = detect_format(path)
    if fmt != 'folder':
        return load_dataset(fmt, path)
    depth_dir = path / 'depth'
    return load_dataset('folder', path, depth_dir=depth_dir if depth_dir.is_dir() else None)


def bag_dataset(path: Path, image_topic: str, depth_topic: str,
                max_frames: Optional[int]) -> Dataset:
    """Read up to ``max_frames`` paired image/depth frames of a bag into memory."""
    from ..bag import evaluation
    from ..conversions.camera_info import camera_info_to_K
    inputs = evaluation.open_inputs(path, image_topic, depth_topic, allow_unmatched=True,
                                    max_frames=max_frames)
    try:
        images, depths, K = [], [], None
        for frame in evaluation.iter_frames(inputs):
            images.append(evaluation.decode_rgb(inputs, frame))
            depths.append(evaluation.decode_depth(inputs, frame))
            if K is None and frame.camera_info_msg is not None:
                K = camera_info_to_K(frame.camera_info_msg)
    finally:
        inputs.reader.close()
    if K is None:
        raise CommandError(f'bag {path} has no camera_info next to {image_topic}')
    return from_arrays(np.stack(images), K, depths=np.stack(depths), name=f'bag {path.name}')


def open_source(source: str, frames: int = DEFAULT_FRAMES, width: int = DEFAULT_SIZE[0],
                height: int = DEFAULT_SIZE[1], seed: int = 7,
                image_topic: str = '/camera/image_raw',
                depth_topic: str = '/camera/depth_gt') -> Dataset:
    """``synthetic``, a folder, or a bag (directory with metadata.yaml, .db3 or .mcap)."""
    if source == SYNTHETIC:
        return synthetic_dataset(frames, width, height, seed)
    path = Path(source).expanduser()
    if not path.exists():
        raise CommandError(f'--source {source}: no such folder or bag (use synthetic, a '
                           'folder of images or a rosbag2)')
    if _is_bag(path):
        return bag_dataset(path, image_topic, depth_topic, frames)
    if path.is_dir():
        return folder_dataset(path)
    raise CommandError(f'--source {source}: not a folder or a rosbag2')
