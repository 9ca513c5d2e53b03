"""
sensor_msgs/CameraInfo helpers: build one from K, rescale it, read K back.

The depth image is published at the input image's resolution with the input's CameraInfo, but
cameras sometimes publish CameraInfo for another resolution (binning, a resize node upstream)
and sometimes none at all; these helpers cover both without image_geometry.
"""

from typing import Any, Optional, Sequence

import numpy as np
from sensor_msgs.msg import CameraInfo
from treeaspp_depth_ros.pinhole import scale_intrinsics


class CameraInfoError(ValueError):
    """CameraInfo that cannot give intrinsics (uncalibrated K, zero size)."""


def _distortion_model(num_coefficients: int) -> str:
    if num_coefficients == 0 or num_coefficients == 5:
        return 'plumb_bob'
    if num_coefficients == 8 or num_coefficients == 14:
        return 'rational_polynomial'
    if num_coefficients == 4:
        return 'equidistant'
    return ''


def make_camera_info(K: np.ndarray, width: int, height: int, header: Any,
                     distortion: Optional[Sequence[float]] = None) -> CameraInfo:
    """
    Build a CameraInfo for an image of ``width`` x ``height`` with intrinsics ``K``.

    Without distortion the image is declared rectified (five zero plumb_bob coefficients),
    which is what a depth image predicted by a pinhole network is. P = [K | 0], R = I.
    """
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    coefficients = [0.0] * 5 if distortion is None else [float(c) for c in distortion]
    msg = CameraInfo()
    msg.header = header
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = _distortion_model(len(coefficients))
    msg.d = coefficients
    msg.k = K.reshape(-1).tolist()
    msg.r = np.eye(3).reshape(-1).tolist()
    msg.p = np.hstack([K, np.zeros((3, 1))]).reshape(-1).tolist()
    return msg


def scale_camera_info(msg: Any, width: int, height: int) -> CameraInfo:
    """
    Return a copy of ``msg`` rescaled to an image of ``width`` x ``height``.

    K and P rows 0 and 1 are multiplied by the size ratios (as image_proc's resize node does);
    distortion, R and the header are kept, the ROI is scaled and binning reset.
    """
    if int(msg.width) <= 0 or int(msg.height) <= 0:
        raise CameraInfoError(f'camera_info has zero size ({msg.width}x{msg.height})')
    sx, sy = float(width) / float(msg.width), float(height) / float(msg.height)
    k = scale_intrinsics(np.reshape(msg.k, (3, 3)), sx, sy)
    p = scale_intrinsics(np.reshape(msg.p, (3, 4)), sx, sy)
    out = CameraInfo()
    out.header = msg.header
    out.width, out.height = int(width), int(height)
    out.distortion_model = str(msg.distortion_model)
    out.d = [float(c) for c in msg.d]
    out.k = k.reshape(-1).tolist()
    out.r = [float(c) for c in msg.r]
    out.p = p.reshape(-1).tolist()
    out.binning_x = 0
    out.binning_y = 0
    roi = msg.roi
    out.roi.x_offset = int(round(roi.x_offset * sx))
    out.roi.y_offset = int(round(roi.y_offset * sy))
    out.roi.width = int(round(roi.width * sx))
    out.roi.height = int(round(roi.height * sy))
    out.roi.do_rectify = bool(roi.do_rectify)
    return out


def camera_info_to_K(msg: Any) -> np.ndarray:
    """
    Return the 3x3 float64 intrinsic matrix of a CameraInfo.

    Raises :class:`CameraInfoError` for an uncalibrated camera (K all zero, fx or fy <= 0),
    because back-projecting with it would silently produce garbage point clouds.
    """
    K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3).copy()
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise CameraInfoError(f'camera_info has no valid intrinsics (K = {K.ravel().tolist()})')
    return K
