"""
Depth image -> organised sensor_msgs/PointCloud2 in the camera optical frame (PCL layout).

Layout matches what depth_image_proc publishes and what PCL's ``PointXYZ``/``PointXYZRGB``
expect, so RViz, PCL and nvblox read it without conversion:

- xyz: float32 ``x, y, z`` at offsets 0, 4, 8, padded to ``point_step`` 16;
- xyzrgb: the same plus ``rgb`` (float32 bits of 0xAARRGGBB) at offset 16, ``point_step`` 32.

The cloud is organised (``height`` x ``width`` = the depth image subsampled by ``stride``),
invalid depth gives NaN points and ``is_dense`` is False. Rays ``K^-1 [u, v, 1]`` are computed
once per (K, size, stride) and the output buffer is reused, so a frame costs three multiplies
and one copy into the message.
"""

import sys
import threading
from typing import Any, Optional, Tuple

import numpy as np
from sensor_msgs.msg import PointCloud2, PointField
from treeaspp_depth_ros.conversions.image import to_byte_array
from treeaspp_depth_ros.pinhole import pixel_rays

_LITTLE = sys.byteorder == 'little'
# byte offsets of b, g, r, a inside the packed rgb float, as PCL lays out 0xAARRGGBB in memory
_RGBA_BYTES = (16, 17, 18, 19) if _LITTLE else (19, 18, 17, 16)


def _field(name: str, offset: int) -> PointField:
    return PointField(name=name, offset=offset, datatype=PointField.FLOAT32, count=1)


class PointCloudBuilder:
    """
    Reusable, vectorised PointCloud2 builder (one per publisher; not thread-safe).

    Why a class: the node publishes clouds of the same size and intrinsics every frame, so the
    rays and the output buffer are kept between calls instead of being rebuilt per frame.
    """

    def __init__(self, with_rgb: bool = False, stride: int = 1) -> None:
        if int(stride) < 1:
            raise ValueError(f'stride must be >= 1, got {stride}')
        self.with_rgb = bool(with_rgb)
        self.stride = int(stride)
        self.point_step = 32 if self.with_rgb else 16
        self.fields = [_field('x', 0), _field('y', 4), _field('z', 8)]
        if self.with_rgb:
            self.fields.append(_field('rgb', 16))
        self._key: Optional[Tuple[bytes, int, int]] = None
        self._rays: Optional[Tuple[np.ndarray, np.ndarray]] = None
        self._buffer: Optional[np.ndarray] = None

    def _prepare(self, K: np.ndarray, height: int, width: int) -> None:
        key = (np.asarray(K, dtype=np.float64).tobytes(), height, width)
        if key == self._key:
            return
        # unit-z rays, so point = ray * depth, depth being z as in REP 118
        rays = pixel_rays(np.asarray(K, dtype=np.float64).reshape(3, 3), height, width)
        rays = rays[::self.stride, ::self.stride]
        self._rays = (np.ascontiguousarray(rays[:, :, 0]), np.ascontiguousarray(rays[:, :, 1]))
        rows, cols = rays.shape[:2]
        floats_per_point = self.point_step // 4
        self._buffer = np.zeros((rows, cols, floats_per_point), np.float32)
        if self.with_rgb:
            self._buffer.view(np.uint8)[:, :, _RGBA_BYTES[3]] = 255  # opaque, as PCL sets it
        self._key = key

    def points(self, depth: np.ndarray, K: np.ndarray) -> np.ndarray:
        """
        Fill the internal buffer from ``depth`` (HxW metres) and return its (h, w, n) view.

        The returned array is overwritten by the next call.
        """
        depth = np.asarray(depth, dtype=np.float32)
        if depth.ndim != 2 or depth.size == 0:
            raise ValueError(f'expected a non-empty HxW depth array, got shape {depth.shape}')
        self._prepare(K, depth.shape[0], depth.shape[1])
        z = depth[::self.stride, ::self.stride]
        buf = self._buffer
        np.multiply(self._rays[0], z, out=buf[:, :, 0])
        np.multiply(self._rays[1], z, out=buf[:, :, 1])
        buf[:, :, 2] = z
        return buf

    def build(self, depth: np.ndarray, K: np.ndarray, header: Any,
              rgb: Optional[np.ndarray] = None) -> PointCloud2:
        """Return the organised cloud of ``depth`` (and colours from ``rgb`` if xyzrgb)."""
        buf = self.points(depth, K)
        if self.with_rgb:
            if rgb is None or np.shape(rgb)[:2] != np.shape(depth) or np.ndim(rgb) != 3:
                got = None if rgb is None else np.shape(rgb)
                raise ValueError('an xyzrgb cloud needs an HxWx3 RGB image the size of depth '
                                 f'{np.shape(depth)}, got {got}')
            colours = np.asarray(rgb)[::self.stride, ::self.stride]
            as_bytes = buf.view(np.uint8)
            as_bytes[:, :, _RGBA_BYTES[0]] = colours[:, :, 2]
            as_bytes[:, :, _RGBA_BYTES[1]] = colours[:, :, 1]
            as_bytes[:, :, _RGBA_BYTES[2]] = colours[:, :, 0]
        msg = PointCloud2()
        msg.header = header
        msg.height, msg.width = int(buf.shape[0]), int(buf.shape[1])
        msg.fields = list(self.fields)
        msg.is_bigendian = not _LITTLE
        msg.point_step = self.point_step
        msg.row_step = self.point_step * msg.width
        msg.data = to_byte_array(buf)  # the single copy into the message
        msg.is_dense = False
        return msg


_local = threading.local()


def depth_to_pointcloud2(depth: np.ndarray, K: np.ndarray, header: Any,
                         rgb: Optional[np.ndarray] = None, stride: int = 1) -> PointCloud2:
    """
    Organised PointCloud2 (PCL layout, NaN for invalid depth, ``is_dense`` False).

    ``depth`` is HxW metres, ``K`` the 3x3 intrinsics of that image, ``rgb`` an optional HxWx3
    uint8 image (gives an xyzrgb cloud), ``stride`` keeps every n-th row and column.
    Builders are cached per thread, so repeated calls reuse rays and buffers.
    """
    builders = getattr(_local, 'builders', None)
    if builders is None:
        builders = _local.builders = {}
    key = (rgb is not None, int(stride))
    builder = builders.get(key)
    if builder is None:
        builder = builders[key] = PointCloudBuilder(with_rgb=rgb is not None, stride=stride)
    return builder.build(depth, K, header, rgb)


_DATATYPES = {
    PointField.INT8: 'i1', PointField.UINT8: 'u1', PointField.INT16: 'i2',
    PointField.UINT16: 'u2', PointField.INT32: 'i4', PointField.UINT32: 'u4',
    PointField.FLOAT32: 'f4', PointField.FLOAT64: 'f8',
}


def pointcloud2_to_array(msg: Any) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """
    Read an organised or unorganised PointCloud2 as (h, w, 3) float32 xyz and RGB or None.

    Uses the message's own field offsets and ``point_step``/``row_step``, so it reads clouds
    from any publisher (used by the demo recorder and the tests).
    """
    names = [f.name for f in msg.fields]
    for required in ('x', 'y', 'z'):
        if required not in names:
            raise ValueError(f'PointCloud2 has no {required!r} field (fields: {names})')
    endian = '>' if msg.is_bigendian else '<'
    dtype = np.dtype({
        'names': names,
        'formats': [endian + _DATATYPES[f.datatype] for f in msg.fields],
        'offsets': [int(f.offset) for f in msg.fields],
        'itemsize': int(msg.point_step),
    })
    height, width = int(msg.height), int(msg.width)
    raw = np.frombuffer(msg.data, dtype=np.uint8) if not isinstance(msg.data, np.ndarray) \
        else msg.data.view(np.uint8)
    rows = raw.reshape(height, int(msg.row_step))[:, :width * int(msg.point_step)]
    points = np.ascontiguousarray(rows).view(dtype).reshape(height, width)
    xyz = np.stack([points['x'], points['y'], points['z']], axis=-1).astype(np.float32)
    rgb = None
    if 'rgb' in names:
        packed = np.ascontiguousarray(points['rgb']).view(endian + 'u4')
        rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255],
                       axis=-1).astype(np.uint8)
    return xyz, rgb
