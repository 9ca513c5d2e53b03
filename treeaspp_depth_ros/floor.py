"""
Metric scale from the floor: fit the floor plane to predicted depth, compare with camera height.

A camera-only robot knows one metric length for sure: the height of its camera above the floor
(from its URDF). Monocular depth is correct up to a scale, so the floor plane fitted to the
predicted point cloud sits at distance ``h`` (network units) from the camera centre, and
``camera_height / h`` is the metric scale. One home for ``calibrate-scale --method
camera-height`` and the node's ``scale_source: camera_height``.

The fit is RANSAC over the lower part of the image (where the floor is when the camera looks
roughly horizontally), keeping only planes whose normal is within a tolerance of the camera's
down direction and that lie below the camera, then a least-squares refinement on the inliers.
All hypotheses are sampled and scored at once (numpy, no per-point Python). Numpy only.
"""

from collections import deque
from dataclasses import dataclass
from typing import Deque, Optional, Sequence

import numpy as np

from .pinhole import depth_to_points, pixel_rays

#: the camera's down direction in the optical frame (x right, y down, z forward)
OPTICAL_DOWN = (0.0, 1.0, 0.0)


def down_direction(pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """
    World down in the optical frame of a camera looking ``pitch_deg`` down, rolled ``roll_deg``.

    Pitch > 0 looks down at the floor (the z axis tilts towards it); roll > 0 turns the image
    clockwise as seen from behind the camera. Both come from the robot's URDF (or an IMU).
    """
    pitch, roll = np.radians(pitch_deg), np.radians(roll_deg)
    level = np.array([0.0, np.cos(pitch), np.sin(pitch)])
    c, s = np.cos(roll), np.sin(roll)
    return np.array([c * level[0] + s * level[1], -s * level[0] + c * level[1], level[2]])


@dataclass(frozen=True)
class FloorOptions:
    """How the floor is searched for; the defaults suit a forward-looking robot camera."""

    #: fraction of the image, from the bottom, where floor points are taken
    lower_fraction: float = 0.5
    #: largest angle (degrees) between the plane normal and the camera's down direction: a
    #: "floor" tilted more than this against the known down direction is furniture, a wall
    #: bottom or a badly predicted floor (15 kept the demo weights' scale closest to the truth
    #: on synthetic rooms; 30 let more wrong planes in)
    max_tilt_deg: float = 15.0
    #: inlier band: |distance to plane| < inlier_tolerance x the point's depth (scale-free)
    inlier_tolerance: float = 0.03
    #: a floor needs at least this fraction of the sampled points as inliers ...
    min_inlier_fraction: float = 0.15
    #: ... and at least this many inliers
    min_inliers: int = 50
    #: points sampled from the lower image (a regular grid), and RANSAC hypotheses
    max_points: int = 3000
    hypotheses: int = 256
    seed: int = 0


@dataclass(frozen=True)
class FloorFit:
    """A floor plane ``normal . x = distance`` in the optical frame (normal points down)."""

    normal: np.ndarray
    distance: float
    height: float
    inliers: int
    points: int
    tilt_deg: float

    def scale(self, camera_height: float) -> float:
        """Metres per depth unit that put this floor ``camera_height`` below the camera."""
        return float(camera_height) / self.height


def floor_scale(scales: Sequence[float], inliers: Sequence[int]) -> float:
    """
    Combine per-frame floor scales: their median, each frame counted by its inlier count.

    A frame whose "floor" few points support is often a table top or a blurred patch, both
    above the true floor, so its scale errs high; weighting by support keeps those from
    pulling the estimate up while a plain median counts them like a clear floor.
    """
    values = np.asarray(scales, dtype=np.float64)
    weights = np.asarray(inliers, dtype=np.float64)
    if not len(values) or len(values) != len(weights) or not (weights > 0).all():
        raise ValueError(f'need one positive inlier count per scale, got {len(values)} '
                         f'scales and inliers {list(weights)}')
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    middle = int(np.searchsorted(cumulative, cumulative[-1] / 2.0))
    return float(values[order][middle])


def floor_points(depth: np.ndarray, K: np.ndarray, options: FloorOptions = FloorOptions(),
                 rays: Optional[np.ndarray] = None) -> np.ndarray:
    """
    Return valid optical-frame points `[N, 3]` on a regular grid over the image's lower part.

    ``rays``: ``pinhole.pixel_rays(K, H, W)`` for the full image, cached by callers that see
    the same camera every frame.
    """
    depth = np.asarray(depth)
    height, width = depth.shape
    top = int(round(height * (1.0 - options.lower_fraction)))
    rows, cols = height - top, width
    stride = max(1, int(np.ceil(np.sqrt(rows * cols / max(options.max_points, 1)))))
    if rays is None:
        rays = pixel_rays(K, height, width)
    sub_rays = rays[top::stride, ::stride]
    points = depth_to_points(depth[top::stride, ::stride], K, sub_rays).reshape(-1, 3)
    valid = np.isfinite(points).all(axis=1) & (points[:, 2] > 0)
    return points[valid].astype(np.float64)


def fit_floor(depth: np.ndarray, K: np.ndarray, options: FloorOptions = FloorOptions(),
              down: Sequence[float] = OPTICAL_DOWN,
              rays: Optional[np.ndarray] = None) -> Optional[FloorFit]:
    """
    Fit the floor to a depth map (any consistent unit); None when no usable floor is seen.

    ``down``: the camera's down direction in the optical frame (a tilted mount: rotate it).
    """
    points = floor_points(depth, K, options, rays)
    return fit_floor_points(points, options, down)


def fit_floor_points(points: np.ndarray, options: FloorOptions = FloorOptions(),
                     down: Sequence[float] = OPTICAL_DOWN) -> Optional[FloorFit]:
    """RANSAC + least squares on optical-frame points `[N, 3]`; see :func:`fit_floor`."""
    count = len(points)
    needed = max(options.min_inliers, int(np.ceil(options.min_inlier_fraction * count)))
    if count < max(needed, 3):
        return None
    down = np.asarray(down, dtype=np.float64)
    down = down / np.linalg.norm(down)
    cos_max = np.cos(np.radians(options.max_tilt_deg))
    rng = np.random.default_rng(options.seed)
    sample = points[rng.integers(0, count, (options.hypotheses, 3))]     # [K, 3, 3]
    normals = np.cross(sample[:, 1] - sample[:, 0], sample[:, 2] - sample[:, 0])
    length = np.linalg.norm(normals, axis=1)
    ok = length > 1e-12
    normals = normals[ok] / length[ok, None]
    normals *= np.sign(normals @ down)[:, None]          # point down, towards the floor
    distances = np.einsum('kd,kd->k', normals, sample[ok, 0])
    ok = (normals @ down >= cos_max) & (distances > 0)   # near-horizontal, below the camera
    normals, distances = normals[ok], distances[ok]
    if not len(normals):
        return None
    band = options.inlier_tolerance * points[:, 2]
    residual = np.abs(points @ normals.T - distances[None, :])           # [N, K]
    scores = (residual < band[:, None]).sum(axis=0)
    best = int(scores.argmax())
    normal, distance = normals[best], distances[best]
    for _ in range(2):   # least-squares refinement on the inliers, then re-select them
        inliers = np.abs(points @ normal - distance) < band
        if inliers.sum() < 3:
            return None
        chosen = points[inliers]
        centre = chosen.mean(axis=0)
        normal = np.linalg.svd(chosen - centre, full_matrices=False)[2][-1]
        normal = normal * (1.0 if normal @ down >= 0 else -1.0)
        distance = float(normal @ centre)
    inliers = np.abs(points @ normal - distance) < band
    tilt = float(np.degrees(np.arccos(np.clip(normal @ down, -1.0, 1.0))))
    if inliers.sum() < needed or distance <= 0 or tilt > options.max_tilt_deg:
        return None
    height = float(np.median(points[inliers] @ down))
    if height <= 0:
        return None
    return FloorFit(normal=normal, distance=distance, height=height,
                    inliers=int(inliers.sum()), points=count, tilt_deg=tilt)


class RunningFloorScale:
    """
    Metric scale kept between frames: :func:`floor_scale` of the last ``window`` floor frames.

    Updated only when a floor is seen, so frames looking at a wall or a table keep the
    previous estimate; the weighted median ignores a few frames whose "floor" was a table top. The
    worker thread updates it; readers (diagnostics) only read plain attributes.
    """

    def __init__(self, camera_height: float, window: int = 30,
                 down: Sequence[float] = OPTICAL_DOWN,
                 options: FloorOptions = FloorOptions()) -> None:
        if not camera_height > 0:
            raise ValueError(f'camera_height must be > 0 metres, got {camera_height}')
        self.camera_height = float(camera_height)
        self.down = np.asarray(down, dtype=np.float64)
        self.options = options
        self._recent: Deque[float] = deque(maxlen=max(1, int(window)))
        self._support: Deque[int] = deque(maxlen=max(1, int(window)))
        self._rays_key: Optional[tuple] = None
        self._rays: Optional[np.ndarray] = None
        #: current estimate (metres per network unit), None until a floor has been seen
        self.scale: Optional[float] = None
        #: coefficient of variation over the window (how steady the floor estimates are)
        self.spread: Optional[float] = None
        self.frames_with_floor = 0
        self.frames_without_floor = 0

    def update(self, raw_depth: np.ndarray, K: np.ndarray) -> Optional[float]:
        """Fit the floor to unscaled network depth; return this frame's scale or None."""
        key = (raw_depth.shape, tuple(np.asarray(K, dtype=np.float64).ravel()))
        if key != self._rays_key:
            self._rays_key, self._rays = key, pixel_rays(K, *raw_depth.shape)
        fit = fit_floor(raw_depth, K, self.options, self.down, rays=self._rays)
        if fit is None:
            self.frames_without_floor += 1
            return None
        value = fit.scale(self.camera_height)
        self._recent.append(value)
        self._support.append(fit.inliers)
        values = np.asarray(self._recent)
        self.spread = float(values.std() / values.mean()) if len(values) > 1 else None
        self.scale = floor_scale(values, self._support)
        self.frames_with_floor += 1
        return value
