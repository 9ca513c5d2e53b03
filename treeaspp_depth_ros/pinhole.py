"""
Pinhole camera maths on numpy arrays: rays, optical-frame points, resized intrinsics.

Kept free of torch (and of ROS) because message conversion, the node's point clouds and the
dataset readers need it without loading a deep-learning framework; the torch warps used in
training live in :mod:`.geometry`. Conventions are the network's: pixel ``(u, v)`` at integer
coordinates, depth is z (REP 118), the optical frame has x right, y down, z forward.
"""

from typing import Optional, TypeVar

import numpy as np

Matrix = TypeVar('Matrix')  # a numpy array or a torch tensor


def scale_intrinsics(K: Matrix, sx: float, sy: float) -> Matrix:
    """
    Intrinsics (rows 0 and 1 of K, or of a 3x4 P) of an image resized by (sx, sy).

    Pixel-corner convention, as SC-SfMLearner and image_proc's resize. A torch tensor gives
    a tensor (batched ``[..., 3, 3]`` too); anything else a new float64 array.
    """
    clone = getattr(K, 'clone', None)  # torch without importing it
    scaled = clone() if callable(clone) else np.array(K, dtype=np.float64)
    scaled[..., 0, :] = scaled[..., 0, :] * sx
    scaled[..., 1, :] = scaled[..., 1, :] * sy
    return scaled


def pixel_rays(K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Unit-depth rays `[H, W, 3]` (float32) for back-projecting depth images; cache per camera."""
    K = np.asarray(K, dtype=np.float64)
    u = (np.arange(width, dtype=np.float64) - K[0, 2]) / K[0, 0]
    v = (np.arange(height, dtype=np.float64) - K[1, 2]) / K[1, 1]
    rays = np.empty((height, width, 3), dtype=np.float32)
    rays[..., 0] = u[None, :]
    rays[..., 1] = v[:, None]
    rays[..., 2] = 1.0
    return rays


def depth_to_points(depth: np.ndarray, K: np.ndarray,
                    rays: Optional[np.ndarray] = None) -> np.ndarray:
    """Optical-frame points `[H, W, 3]` (x right, y down, z forward); NaN depth -> NaN points."""
    h, w = depth.shape
    if rays is None:
        rays = pixel_rays(K, h, w)
    return rays * depth[..., None].astype(np.float32, copy=False)
