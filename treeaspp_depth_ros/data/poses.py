"""Camera-to-world poses: quaternion maths and the pose files of the layouts."""

from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import DataError


def quaternion_to_matrix(t: Sequence[float], q: Sequence[float]) -> np.ndarray:
    """4x4 pose from a translation and an (x, y, z, w) quaternion (normalised here)."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    pose = np.eye(4)
    pose[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    pose[:3, 3] = t
    return pose


def read_pose_matrix(path: Path) -> np.ndarray:
    """One 4x4 pose file (7-Scenes ``frame-NNNNNN.pose.txt``)."""
    try:
        pose = np.array([float(v) for v in Path(path).read_text().split()])
    except ValueError:
        raise DataError(f'pose file {path} must hold 16 numbers') from None
    if pose.size != 16 or not np.all(np.isfinite(pose)):
        raise DataError(f'pose file {path} must hold 16 finite numbers')
    return pose.reshape(4, 4)


def read_pose_rows(path: Path, count: int) -> np.ndarray:
    """`count` poses, one per line as 12 (3x4) or 16 (4x4) numbers (SC-Depth ``poses.txt``)."""
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
