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


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Return the unit (x, y, z, w) quaternion of a rotation (Shepperd's stable branches)."""
    R = np.asarray(R, dtype=np.float64)[:3, :3]
    trace = np.trace(R)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = np.array([(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s,
                      (R[1, 0] - R[0, 1]) / s, 0.25 * s])
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(max(1.0 + R[i, i] - R[j, j] - R[k, k], 1e-12))
        q = np.zeros(4)
        q[i] = 0.25 * s
        q[j] = (R[j, i] + R[i, j]) / s
        q[k] = (R[k, i] + R[i, k]) / s
        q[3] = (R[k, j] - R[j, k]) / s
    return q / np.linalg.norm(q)


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
