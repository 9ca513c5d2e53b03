"""
Pinhole camera maths on numpy arrays: camera matrices, rays, optical-frame points, resizing.

Kept free of torch (and of ROS) because message conversion, the node's point clouds and the
dataset readers need it without loading a deep-learning framework; the torch warps used in
training live in :mod:`.view_synthesis`. Conventions are the network's: pixel ``(u, v)`` at integer
coordinates, depth is z (REP 118), the optical frame has x right, y down, z forward.
"""

import math
from typing import Optional, TypeVar

import numpy as np

Matrix = TypeVar('Matrix')  # a numpy array or a torch tensor


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """3x3 pinhole camera matrix (float64)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def intrinsics_from_fov(width: int, height: int, horizontal_fov_deg: float) -> np.ndarray:
    """
    Square pixels and the principal point at the image centre, for a known field of view.

    The centre of pixels at integer coordinates 0..width-1 is (width - 1) / 2. A field of view
    outside (0, 180) degrees is a ValueError.
    """
    if not 0.0 < horizontal_fov_deg < 180.0:
        raise ValueError(f'horizontal field of view must be in (0, 180) degrees, got '
                         f'{horizontal_fov_deg}')
    f = 0.5 * width / math.tan(math.radians(horizontal_fov_deg) / 2.0)
    return intrinsics_matrix(f, f, (width - 1) / 2.0, (height - 1) / 2.0)


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
