"""
What the second network knows: visual odometry and a geometric confidence, frame to frame.

SC-SfMLearner trains a pose network beside the depth network and makes their depths agree
across frames. Here the node's previous processed frame is kept (its network input and its
depth, so no second depth pass), the pose network measures the motion from it to the
current frame, and warping the previous depth into the current view with that motion (the
training's own inverse warp) says where the two depths agree. ROS-free, like
:class:`..inference.DepthEstimator`; the node and ``bag-eval`` share it.
"""

from collections import Counter
from dataclasses import dataclass
import time
from typing import Optional, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .pinhole import scale_intrinsics
from .view_synthesis import (backproject, depth_inconsistency, inverse_warp, pose_vec2mat,
                             project)

#: why a frame has no pair to measure (``MotionResult.reset``; diagnostics count them)
FIRST_FRAME = 'first_frame'
RESOLUTION_CHANGED = 'resolution_changed'
STAMP_BACKWARDS = 'stamp_backwards'
STAMP_GAP = 'stamp_gap'
IMPLAUSIBLE = 'implausible_motion'


@dataclass
class MotionFrame:
    """One processed frame as the pair needs it (network resolution, network units)."""

    network_input: torch.Tensor  # [1, 3, h, w], the depth network's normalised input
    network_depth: torch.Tensor  # [1, 1, h, w], depth in network units
    stamp_ns: int
    image_size: Tuple[int, int]  # (width, height) of the camera image
    K: np.ndarray  # 3x3 at the image's resolution


@dataclass
class MotionResult:
    """What one frame's pair gave; ``reset`` names why there was no pair ('' if there was)."""

    reset: str = ''
    relative: Optional[np.ndarray] = None  # 4x4: the current camera in the previous one (m)
    dt: float = 0.0
    confidence: Optional[np.ndarray] = None  # [h, w] in [0, 1] at network resolution
    pose_s: float = 0.0  # seconds spent in the pose network and the warp


def depth_confidence(depth: torch.Tensor, previous_depth: torch.Tensor, pose: torch.Tensor,
                     K: torch.Tensor) -> torch.Tensor:
    """
    Per-pixel agreement ``1 - |Dc - Dp| / (Dc + Dp)`` of two depths, 0 where unseen.

    `pose` ([B, 6]) maps current-camera points into the previous camera, as the pose network
    predicts it for (current, previous). The measure is the geometry-consistency loss's, so
    it is scale-free and 1 where both frames agree exactly; pixels that project outside the
    previous image, or onto no valid depth, have no evidence and get 0.
    """
    _, valid, projected, computed = inverse_warp(previous_depth, depth, previous_depth, pose, K)
    valid = valid * (projected > 0).to(valid.dtype)
    return (1.0 - depth_inconsistency(computed, projected)) * valid


def relative_change(depth: np.ndarray, previous_depth: np.ndarray,
                    current_in_previous: np.ndarray, K: np.ndarray) -> Tuple[float, int]:
    """
    Mean symmetric relative change ``2|Dc - Dp| / (Dc + Dp)`` of depth at the same 3D points.

    The flicker of a depth stream: the current depth's points moved into the previous camera
    (4x4 `current_in_previous`, metres) against the previous depth there, sampled bilinearly
    where all four neighbours hold a depth (a sensor's holes are never blended in). Pixels
    without a finite positive depth, or outside the previous view, are left out. Returns the
    mean and the number of pixels it is over.
    """
    current = torch.from_numpy(np.nan_to_num(depth, nan=0.0).astype(np.float32))[None, None]
    previous = torch.from_numpy(np.nan_to_num(previous_depth, nan=0.0).astype(np.float32))
    previous = previous[None, None]
    transform = torch.from_numpy(np.asarray(current_in_previous, np.float32)[None, :3])
    Kt = torch.from_numpy(np.asarray(K, np.float32))[None]
    grid, computed = project(backproject(current, torch.inverse(Kt)), Kt, transform)
    projected = F.grid_sample(previous, grid, align_corners=True)
    covered = F.grid_sample((previous > 0).float(), grid, align_corners=True)
    valid = (grid.abs().amax(dim=-1) <= 1).unsqueeze(1) & (covered > 0.999) & (current > 0)
    change = 2.0 * depth_inconsistency(computed, projected)[valid]
    return (float(change.mean()) if change.numel() else float('nan')), int(change.numel())


def rotation_angle(R: np.ndarray) -> float:
    """Angle (rad) of a rotation matrix."""
    return float(np.arccos(np.clip((np.trace(R[:3, :3]) - 1.0) / 2.0, -1.0, 1.0)))


def twist(relative: np.ndarray, dt: float) -> Tuple[np.ndarray, np.ndarray]:
    """
    Linear (m/s) and angular (rad/s) velocity of the current camera, in its own frame.

    `relative` is the current camera in the previous one: the step it travelled is its
    translation in the previous frame, rotated into the current one; the rotation vector is
    the same in both frames.
    """
    R, t = relative[:3, :3], relative[:3, 3]
    rotvec = cv2.Rodrigues(np.ascontiguousarray(R, dtype=np.float64))[0].ravel()
    return R.T @ t / dt, rotvec / dt


class VisualOdometry:
    """
    Chain the pose network's frame-to-frame motion into a path, and say how the depths agree.

    The odom frame is the first processed camera's optical frame (x right, y down, z
    forward). A reset (first frame, a changed resolution, a stamp that goes back or jumps by
    more than `max_gap_s`, a motion faster than `max_speed`/`max_angular_speed`) measures no
    motion for that frame: the pose holds (the path stays continuous, as REP 105 asks of an
    odom frame) and the frame becomes the next one's reference.
    """

    def __init__(self, pose_net: torch.nn.Module, device: torch.device, max_gap_s: float,
                 max_speed: float, max_angular_speed: float, relative_error: float) -> None:
        self.pose_net = pose_net.eval().to(device)
        self.device = device
        self.max_gap_s, self.max_speed = max_gap_s, max_speed
        self.max_angular_speed, self.relative_error = max_angular_speed, relative_error
        self.pose = np.eye(4)
        #: diagonal variances (x, y, z, roll, pitch, yaw) of the chained pose, summed per step
        self.pose_variance = np.zeros(6)
        self.resets: Counter = Counter()
        self.pairs = 0  # pose network passes
        self.pose_seconds = 0.0  # their total time, for the cost in diagnostics
        self._previous: Optional[MotionFrame] = None

    def to(self, device: torch.device) -> None:
        """Follow the depth network to another device (after a GPU failure)."""
        self.pose_net.to(device)
        self.device = device
        self._previous = None

    def step_variance(self, relative: np.ndarray) -> np.ndarray:
        """
        Variances of one measured step: `relative_error` of its size, per axis.

        An assumed error model, not a calibrated one: the pose network gives no uncertainty,
        and a step's error grows with the step. A floor keeps it from claiming certainty.
        """
        moved = float(np.linalg.norm(relative[:3, 3]))
        turned = rotation_angle(relative)
        linear = (self.relative_error * moved + 1e-3) ** 2
        angular = (self.relative_error * turned + 1e-3) ** 2
        return np.array([linear] * 3 + [angular] * 3)

    def step(self, frame: MotionFrame, scale: float, want_pose: bool,
             want_confidence: bool) -> MotionResult:
        """
        Measure the motion from the previous frame to `frame` and chain it when `want_pose`.

        `scale` is metres per network unit, the depth's. Nothing runs unless one of the two
        is wanted; the frame is kept as the next reference either way.
        """
        previous, self._previous = self._previous, frame
        reason = self._reset_reason(previous, frame)
        if reason:
            self.resets[reason] += 1
            return MotionResult(reset=reason)
        dt = (frame.stamp_ns - previous.stamp_ns) * 1e-9
        if not (want_pose or want_confidence):
            return MotionResult(dt=dt)
        started = time.perf_counter()
        with torch.inference_mode():
            vector = self.pose_net(frame.network_input.to(self.device),
                                   previous.network_input.to(self.device)).float()
            relative = np.eye(4)
            relative[:3] = pose_vec2mat(vector)[0].double().cpu().numpy()
            relative[:3, 3] *= scale
            if self._implausible(relative, dt):
                self.resets[IMPLAUSIBLE] += 1
                return MotionResult(reset=IMPLAUSIBLE, dt=dt)
            confidence = None
            if want_confidence:
                confidence = self._confidence(frame, previous, vector)
        self.pairs += 1
        if want_pose:
            self.pose = self.pose @ relative
            self.pose_variance = self.pose_variance + self.step_variance(relative)
        elapsed = time.perf_counter() - started
        self.pose_seconds += elapsed
        return MotionResult(relative=relative, dt=dt, confidence=confidence, pose_s=elapsed)

    def _reset_reason(self, previous: Optional[MotionFrame], frame: MotionFrame) -> str:
        if previous is None:
            return FIRST_FRAME
        if previous.image_size != frame.image_size or \
                previous.network_depth.shape != frame.network_depth.shape:
            return RESOLUTION_CHANGED
        dt = (frame.stamp_ns - previous.stamp_ns) * 1e-9
        if dt <= 0:
            return STAMP_BACKWARDS
        if dt > self.max_gap_s:
            return STAMP_GAP
        return ''

    def _implausible(self, relative: np.ndarray, dt: float) -> bool:
        return bool(np.linalg.norm(relative[:3, 3]) > self.max_speed * dt
                    or rotation_angle(relative) > self.max_angular_speed * dt
                    or not np.isfinite(relative).all())

    def _confidence(self, frame: MotionFrame, previous: MotionFrame,
                    vector: torch.Tensor) -> np.ndarray:
        depth = frame.network_depth.to(self.device).float()
        height, width = depth.shape[-2:]
        image_width, image_height = frame.image_size
        K = scale_intrinsics(frame.K, width / image_width, height / image_height)
        Kt = torch.as_tensor(K, dtype=torch.float32, device=self.device)[None]
        return depth_confidence(depth, previous.network_depth.to(self.device).float(), vector,
                                Kt)[0, 0].cpu().numpy()
