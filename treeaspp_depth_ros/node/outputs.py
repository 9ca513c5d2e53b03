"""
The depth node's output stage: the intrinsics of each image and the messages built from depth.

The live node and ``bag-eval --record-out`` (offline) both build their outputs here, so an
offline SLAM bag holds the very messages the node publishes for the same frame and parameters.

Intrinsics policy: the camera's own CameraInfo, scaled when it was published for another
resolution; while none has arrived the frame waits, for at most ``camera_info_timeout`` after
the first image, then the ``fx..cy`` parameters, else ``horizontal_fov_deg``, are used. A
CameraInfo without usable intrinsics falls back to the parameters at once; one that stops
arriving for longer than ``camera_info_timeout`` too, until it returns.
"""

import copy
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Tuple

from nav_msgs.msg import Odometry
import numpy as np
from sensor_msgs.msg import CameraInfo

from .params import NodeConfig
from ..conversions.camera_info import (
    camera_info_to_K,
    CameraInfoError,
    make_camera_info,
    scale_camera_info,
)
from ..conversions.colormap import colorize_depth
from ..conversions.image import depth_to_image_msg, float_to_image_msg, rgb_to_image_msg
from ..conversions.pointcloud import PointCloudBuilder
from ..data.poses import matrix_to_quaternion
from ..pinhole import intrinsics_from_fov, intrinsics_matrix

#: where a frame's intrinsics came from (``Intrinsics.source``)
CAMERA_INFO, SCALED, INVALID, MISSING = 'camera_info', 'scaled', 'invalid', 'missing'
#: a variance that says "not measured" (robot_localization and friends then ignore it)
UNKNOWN_VARIANCE = 1.0e6


@dataclass(frozen=True)
class Intrinsics:
    """The intrinsics of one frame and the depth/camera_info that carries them."""

    info: CameraInfo  # stamped with the image's header
    K: np.ndarray
    source: str  # CAMERA_INFO, SCALED (for another size), INVALID or MISSING (parameters used)
    note: str = ''  # why not the camera's own CameraInfo as it is
    changed: bool = True  # first frame of this source or of a new CameraInfo: worth a log line


class IntrinsicsResolver:
    """Picks each image's intrinsics (module docstring); one per node, reset on cleanup."""

    def __init__(self, camera_info_topic: str = 'camera_info') -> None:
        self.camera_info_topic = camera_info_topic
        self.reset()

    def reset(self) -> None:
        #: the newest CameraInfo; set by the subscription (one reference assignment)
        self.camera_info: Optional[Any] = None
        #: when it arrived (the clock of ``resolve``'s ``now``); None: never goes stale
        self.camera_info_at: Optional[float] = None
        # key of the last CameraInfo and image size, and what was derived from it
        self._cached: Tuple[Any, Optional[CameraInfo], Optional[np.ndarray], str, str] = \
            (None, None, None, '', '')
        self._first_image: Optional[float] = None
        self._last_source = ''  # what the previous frame used; '' after a new CameraInfo

    def resolve(self, header: Any, width: int, height: int, config: NodeConfig,
                now: float) -> Optional[Intrinsics]:
        """Return the intrinsics for an image, or None while still waiting for a CameraInfo."""
        received = self.camera_info
        arrived = self.camera_info_at
        if received is not None and arrived is not None and \
                0 < config.camera_info_timeout < now - arrived:
            # it stopped: fall back until it returns (a new one updates camera_info_at)
            source = MISSING
            note = (f'camera_info on {self.camera_info_topic} stopped {now - arrived:.1f} s '
                    'ago: using the intrinsics parameters (fx, fy, cx, cy or '
                    'horizontal_fov_deg) until it returns')
        elif received is not None:
            base, K, source, note = self._from_camera_info(received, width, height)
            if base is not None:
                info = copy.copy(base)
                info.header = header
                return self._sourced(info, K, source, note)
        else:
            if self._first_image is None:
                self._first_image = now
            if now - self._first_image < config.camera_info_timeout:
                return None
            source = MISSING
            note = (f'no camera_info on {self.camera_info_topic} after '
                    f'{config.camera_info_timeout:g} s: using the intrinsics parameters (fx, fy, '
                    'cx, cy or horizontal_fov_deg); point clouds are only as right as those')
        K = parameter_intrinsics(config, width, height)
        return self._sourced(make_camera_info(K, width, height, header), K, source, note)

    def _from_camera_info(self, received: Any, width: int, height: int
                          ) -> Tuple[Optional[CameraInfo], Optional[np.ndarray], str, str]:
        """Return the camera's info for this size and its K (None if unusable), cached."""
        key = (tuple(received.k), int(received.width), int(received.height), width, height)
        if key == self._cached[0]:
            return self._cached[1:]
        base, source, note = received, CAMERA_INFO, ''
        try:
            if (received.width, received.height) != (width, height):
                source = SCALED
                note = (f'camera_info is for {received.width}x{received.height} but the image '
                        f'is {width}x{height}: scaling K to the image')
                base = scale_camera_info(received, width, height)
            K = camera_info_to_K(base)
        except CameraInfoError as error:
            base = K = None
            source, note = INVALID, f'{error}; using the intrinsics parameters instead'
        self._cached = (key, base, K, source, note)
        self._last_source = ''
        return base, K, source, note

    def _sourced(self, info: CameraInfo, K: np.ndarray, source: str, note: str) -> Intrinsics:
        changed, self._last_source = source != self._last_source, source
        return Intrinsics(info, K, source, note, changed)


def parameter_intrinsics(config: NodeConfig, width: int, height: int) -> np.ndarray:
    """K from the ``fx..cy`` parameters when set, else from ``horizontal_fov_deg``."""
    if config.intrinsics_set:
        return intrinsics_matrix(config.fx, config.fy, config.cx, config.cy)
    return intrinsics_from_fov(width, height, config.horizontal_fov_deg)


def limit_range(depth: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """Copy of ``depth`` with NaN outside [min_depth, max_depth] (NaN stays NaN)."""
    out = np.array(depth, dtype=np.float32)
    out[~((out >= min_depth) & (out <= max_depth))] = np.nan
    return out


class OutputBuilder:
    """
    The messages of one frame, in publishing order (one builder per thread).

    Why one class: the point cloud builder keeps its rays and buffer between frames, and the
    messages are built lazily so that the node publishes depth before it spends time on the
    colour map and the cloud.
    """

    def __init__(self) -> None:
        self._clouds: Optional[PointCloudBuilder] = None

    def messages(self, depth: np.ndarray, rgb: np.ndarray, intrinsics: Intrinsics,
                 config: NodeConfig, wanted: Callable[[str], bool] = lambda key: True,
                 confidence: Optional[np.ndarray] = None) -> Iterator[Tuple[str, Any]]:
        """
        Yield ``(key, message)``: depth, depth_camera_info, confidence, depth_colored, points.

        ``depth`` is the network's metres at the image's size (not modified); pixels whose
        ``confidence`` (same size, when measured) is below ``min_confidence`` become NaN in
        depth and cloud. Confidence, colour map and cloud are built only when ``wanted(key)``
        (someone subscribes), the last two also only with ``publish_colored``/``points``.
        """
        depth = limit_range(depth, config.min_depth, config.max_depth)
        if confidence is not None and config.min_confidence > 0:
            depth[confidence < config.min_confidence] = np.nan
        header = intrinsics.info.header
        yield 'depth', depth_to_image_msg(depth, header)
        yield 'depth_camera_info', intrinsics.info
        if confidence is not None and wanted('confidence'):
            yield 'confidence', float_to_image_msg(confidence, header)
        if config.publish_colored and wanted('depth_colored'):
            yield 'depth_colored', rgb_to_image_msg(colorize_depth(depth), header)
        if config.publish_points and wanted('points'):
            clouds = self._clouds
            if clouds is None or (clouds.with_rgb, clouds.stride) != \
                    (config.points_rgb, config.points_stride):
                clouds = self._clouds = PointCloudBuilder(config.points_rgb, config.points_stride)
            yield 'points', clouds.build(depth, intrinsics.K, header,
                                         rgb if config.points_rgb else None)


def odometry_message(pose: np.ndarray, pose_variance: np.ndarray, header: Any,
                     child_frame: str, velocity: Optional[Tuple[np.ndarray, np.ndarray]],
                     velocity_variance: np.ndarray) -> Odometry:
    """
    Build nav_msgs/Odometry from the chained camera pose and the last pair's twist.

    ``header`` carries the image's stamp and the odom frame; the twist is in ``child_frame``
    (the camera), as nav_msgs specifies. Without a measured pair (``velocity`` None: first
    frame, a reset) the twist is zero with a variance of 1e6: unknown, not "standing still".
    """
    msg = Odometry()
    msg.header = header
    msg.child_frame_id = child_frame
    position = msg.pose.pose.position
    position.x, position.y, position.z = (float(v) for v in pose[:3, 3])
    orientation = msg.pose.pose.orientation
    orientation.x, orientation.y, orientation.z, orientation.w = (
        float(v) for v in matrix_to_quaternion(pose))
    msg.pose.covariance = _diagonal_covariance(pose_variance)
    if velocity is None:
        msg.twist.covariance = _diagonal_covariance(np.full(6, UNKNOWN_VARIANCE))
    else:
        linear, angular = velocity
        msg.twist.twist.linear.x, msg.twist.twist.linear.y, msg.twist.twist.linear.z = (
            float(v) for v in linear)
        msg.twist.twist.angular.x, msg.twist.twist.angular.y, msg.twist.twist.angular.z = (
            float(v) for v in angular)
        msg.twist.covariance = _diagonal_covariance(velocity_variance)
    return msg


def _diagonal_covariance(variances: np.ndarray) -> np.ndarray:
    covariance = np.zeros((6, 6))
    covariance[np.diag_indices(6)] = variances
    return covariance.ravel()
