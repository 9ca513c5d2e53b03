"""
sensor_msgs/Image and CompressedImage <-> numpy, the subset of cv_bridge this package needs.

Depth follows REP 118: ``32FC1`` in metres with NaN for "no measurement", or ``16UC1`` in
millimetres with 0 for "no measurement". Colour images are always returned as RGB uint8 because
that is what the network was trained on; every supported encoding is converted with one
vectorised OpenCV/numpy call (no per-pixel Python).

Decoding is bounded: a frame declaring more than ``max_pixels`` is refused before anything is
allocated for it (for compressed frames, the size is read from the PNG or JPEG header), so a
20000x20000 PNG of a few kilobytes costs a few microseconds, not 1.2 GB.
"""

import array
import sys
from typing import Any, Dict, Optional, Tuple

import cv2
import numpy as np
from sensor_msgs.msg import Image

_BIG_ENDIAN_HOST = sys.byteorder == 'big'

# encoding -> (channels, bytes per channel); the colour conversion is chosen in _to_rgb.
_LAYOUTS: Dict[str, Tuple[int, int]] = {
    'rgb8': (3, 1), 'bgr8': (3, 1), 'rgba8': (4, 1), 'bgra8': (4, 1),
    'mono8': (1, 1), '8UC1': (1, 1), '8UC3': (3, 1), '8UC4': (4, 1),
    'rgb16': (3, 2), 'bgr16': (3, 2), 'rgba16': (4, 2), 'bgra16': (4, 2),
    'mono16': (1, 2), '16UC1': (1, 2),
    # packed 4:2:2 YUV: 2 bytes per pixel, what most USB (UVC) cameras send natively
    'yuv422': (2, 1), 'uyvy': (2, 1), 'yuv422_yuy2': (2, 1), 'yuyv': (2, 1),
    'bayer_rggb8': (1, 1), 'bayer_bggr8': (1, 1), 'bayer_gbrg8': (1, 1), 'bayer_grbg8': (1, 1),
}

#: Colour encodings accepted by :func:`image_msg_to_rgb`.
SUPPORTED_ENCODINGS = tuple(_LAYOUTS)

# OpenCV names Bayer patterns by the second row; these match cv_bridge's mapping.
_BAYER = {
    'bayer_rggb8': cv2.COLOR_BayerBG2RGB, 'bayer_bggr8': cv2.COLOR_BayerRG2RGB,
    'bayer_gbrg8': cv2.COLOR_BayerGR2RGB, 'bayer_grbg8': cv2.COLOR_BayerGB2RGB,
}
_YUV = {
    'yuv422': cv2.COLOR_YUV2RGB_UYVY, 'uyvy': cv2.COLOR_YUV2RGB_UYVY,
    'yuv422_yuy2': cv2.COLOR_YUV2RGB_YUY2, 'yuyv': cv2.COLOR_YUV2RGB_YUY2,
}
_DEPTH_LAYOUTS = {'32FC1': 'f4', '16UC1': 'u2', 'mono16': 'u2'}

#: Largest frame (width * height) decoded by default: 4096 x 4096, above 4K UHD and 12 MP
#: machine-vision sensors (48 MB as RGB). The depth node's ``max_input_pixels`` parameter.
DEFAULT_MAX_INPUT_PIXELS = 4096 * 4096

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# JPEG start-of-frame markers (baseline, extended, progressive, lossless, arithmetic), which
# carry the image size; DHT (C4), JPG (C8) and DAC (CC) share the range but are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class ImageConversionError(ValueError):
    """
    A message that cannot be turned into an image; the text names the problem.

    ``kind`` is a short stable name of the problem (``truncated``, ``too_large``, ...) so that
    the node can count each kind in its diagnostics.
    """

    def __init__(self, message: str, kind: str = 'invalid') -> None:
        super().__init__(message)
        self.kind = kind


def _as_uint8(data: Any) -> np.ndarray:
    # rclpy gives array.array('B'), rosbags a numpy array, hand-made messages bytes or lists.
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def _pixel_rows(msg: Any, channels: int, itemsize: int) -> np.ndarray:
    """
    Validate size fields and return a (H, W*channels) view of the pixel data.

    Why: a malformed message must be rejected with a reason instead of crashing the node, and
    the row padding implied by ``step`` must be stripped without copying.
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError(f'zero-size image ({width}x{height})', 'zero_size')
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f'step {step} is smaller than width*bytes_per_pixel = {width}*{channels * itemsize}'
            f' = {row_bytes} for encoding {msg.encoding!r}', 'step_too_small')
    buf = _as_uint8(msg.data)
    if buf.size != height * step:
        raise ImageConversionError(
            f'data length {buf.size} does not match height*step = {height}*{step} = '
            f'{height * step} ({msg.encoding!r}, {width}x{height})',
            'truncated' if buf.size < height * step else 'excess_data')
    rows = buf.reshape(height, step)[:, :row_bytes]
    if itemsize == 1:
        return rows
    if int(msg.is_bigendian) not in (0, 1):
        raise ImageConversionError(
            f'is_bigendian must be 0 or 1, got {int(msg.is_bigendian)}', 'bad_endianness')
    big = bool(msg.is_bigendian)
    dtype = np.dtype(f'{">" if big else "<"}u{itemsize}')
    rows = np.ascontiguousarray(rows).view(dtype)
    return rows


def _check_pixels(width: int, height: int, max_pixels: Optional[int], what: str) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise ImageConversionError(
            f'{what} is {width}x{height} = {width * height} pixels, more than max_input_pixels '
            f'= {max_pixels}; refused without decoding', 'too_large')


def image_msg_to_rgb(msg: Any, max_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS
                     ) -> np.ndarray:
    """
    Convert a sensor_msgs/Image to an HxWx3 uint8 RGB array.

    The result may share memory with ``msg.data`` (no copy for tightly packed ``rgb8``).
    Raises :class:`ImageConversionError` naming the problem for unsupported encodings, sizes
    that do not match ``height*step``, zero-size images and images of more than
    ``max_pixels`` pixels (None: no limit).
    """
    encoding = str(msg.encoding)
    layout = _LAYOUTS.get(encoding)
    if layout is None:
        raise ImageConversionError(
            f'unsupported encoding {encoding!r}; supported: {", ".join(SUPPORTED_ENCODINGS)}',
            'unsupported_encoding')
    channels, itemsize = layout
    height, width = int(msg.height), int(msg.width)
    _check_pixels(width, height, max_pixels, 'image')
    if encoding in _YUV and width % 2:
        raise ImageConversionError(f'{encoding} needs an even width, got {width}', 'odd_width')
    rows = _pixel_rows(msg, channels, itemsize)
    if itemsize == 2:
        rows = (rows >> 8).astype(np.uint8)  # 16-bit colour/mono: keep the high byte
    if encoding in _YUV:
        return cv2.cvtColor(rows.reshape(height, width, 2), _YUV[encoding])
    if encoding in _BAYER:
        return cv2.cvtColor(np.ascontiguousarray(rows), _BAYER[encoding])
    pixels = rows.reshape(height, width, channels)
    if channels == 1:
        return cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_GRAY2RGB)
    if encoding.startswith('rgb'):
        return np.ascontiguousarray(pixels[:, :, :3])
    # bgr8, bgra8, 8UC3/8UC4 (OpenCV's BGR convention, as cv_bridge assumes), bgr16, bgra16
    return np.ascontiguousarray(pixels[:, :, 2::-1])


def _jpeg_size(data: memoryview) -> Tuple[int, int]:
    """(width, height) from the first start-of-frame segment; walks the few marker segments."""
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # standalone markers, no length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            break
        length = int.from_bytes(data[pos + 2:pos + 4], 'big')
        if marker in _JPEG_SOF:
            if length < 8 or pos + 9 > end:
                break
            height = int.from_bytes(data[pos + 5:pos + 7], 'big')
            width = int.from_bytes(data[pos + 7:pos + 9], 'big')
            return width, height
        if length < 2:
            break
        pos += 2 + length
    raise ImageConversionError(
        f'corrupt or truncated JPEG: no readable frame header (SOF) in {end} bytes',
        'bad_header')


def compressed_size(data: Any) -> Tuple[str, int, int]:
    """
    Return ``(format, width, height)`` of PNG or JPEG bytes from their header alone.

    Why: ``cv2.imdecode`` allocates whatever the header declares, so the size must be known
    before decoding. Other containers are refused (image_transport sends only these two).
    """
    view = memoryview(_as_uint8(data))
    if bytes(view[:8]) == _PNG_SIGNATURE:
        if len(view) < 24 or bytes(view[12:16]) != b'IHDR':
            raise ImageConversionError(
                f'corrupt or truncated PNG: no complete IHDR header in {len(view)} bytes',
                'bad_header')
        return ('png', int.from_bytes(view[16:20], 'big'), int.from_bytes(view[20:24], 'big'))
    if bytes(view[:2]) == b'\xff\xd8':
        return ('jpeg', *_jpeg_size(view))
    raise ImageConversionError(
        f'not PNG or JPEG data (starts with {bytes(view[:8]).hex()})', 'unknown_format')


def compressed_msg_to_rgb(msg: Any, max_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS
                          ) -> np.ndarray:
    """
    Decode a sensor_msgs/CompressedImage (jpeg or png, as image_transport sends) to RGB.

    ``compressedDepth`` messages are rejected: they carry depth, not a camera image. The size
    in the header is checked against ``max_pixels`` (None: no limit) before decoding.
    """
    fmt = str(getattr(msg, 'format', '') or '').lower()
    if 'compresseddepth' in fmt:
        raise ImageConversionError(f'format {msg.format!r} is a compressed depth image',
                                   'compressed_depth')
    buf = _as_uint8(msg.data)
    if buf.size == 0:
        raise ImageConversionError(f'empty compressed image (format {msg.format!r})', 'empty')
    kind, width, height = compressed_size(buf)
    if width <= 0 or height <= 0:
        raise ImageConversionError(f'{kind} header declares a zero-size image '
                                   f'({width}x{height})', 'bad_header')
    _check_pixels(width, height, max_pixels, f'{kind} image')
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ImageConversionError(
            f'corrupt or undecodable compressed image ({buf.size} bytes, format {msg.format!r})',
            'corrupt')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _filled_image(header: Any, pixels: np.ndarray, encoding: str) -> Image:
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(_BIG_ENDIAN_HOST and pixels.dtype.itemsize > 1)
    msg.step = int(pixels.strides[0])
    msg.data = to_byte_array(pixels)
    return msg


def to_byte_array(values: np.ndarray) -> array.array:
    """
    Copy a C-contiguous array into ``array.array('B')`` (one memcpy).

    Why: rclpy message setters accept a typed ``array.array`` as is, while bytes or lists are
    checked element by element (seconds for one image).
    """
    data = array.array('B')
    data.frombytes(memoryview(np.ascontiguousarray(values)).cast('B'))
    return data


def rgb_to_image_msg(rgb: np.ndarray, header: Any, encoding: str = 'rgb8') -> Image:
    """
    Build a sensor_msgs/Image from an HxWx3 uint8 RGB array (or HxW for mono8).

    ``encoding`` may be ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8`` or ``mono8`` so that tests and
    the demo camera can send what real drivers send.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        raise ImageConversionError(f'expected a uint8 image, got {rgb.dtype}')
    if rgb.ndim == 2:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageConversionError(f'expected an HxWx3 RGB image, got shape {rgb.shape}')
    if encoding == 'rgb8':
        pixels = np.ascontiguousarray(rgb)
    elif encoding == 'bgr8':
        pixels = np.ascontiguousarray(rgb[:, :, ::-1])
    elif encoding == 'rgba8':
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
    elif encoding == 'bgra8':
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
    elif encoding == 'mono8':
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    else:
        raise ImageConversionError(
            f'cannot encode RGB as {encoding!r}; use rgb8, bgr8, rgba8, bgra8 or mono8')
    return _filled_image(header, pixels, encoding)


def depth_to_image_msg(depth_m: np.ndarray, header: Any, encoding: str = '32FC1') -> Image:
    """
    Build a REP 118 depth image from HxW metres (NaN, <= 0 or non-finite = invalid).

    ``32FC1``: float metres, NaN where invalid. ``16UC1``: uint16 millimetres, 0 where invalid
    or beyond 65.535 m (for consumers that only read 16-bit depth).
    """
    depth = np.asarray(depth_m, dtype=np.float32)
    if depth.ndim != 2:
        raise ImageConversionError(f'expected an HxW depth array, got shape {depth.shape}')
    if encoding == '32FC1':
        pixels = depth.copy()
        pixels[~(pixels > 0)] = np.nan  # NaN stays NaN; zero and negatives become NaN
    elif encoding == '16UC1':
        mm = depth * 1000.0
        valid = np.isfinite(mm) & (mm > 0) & (mm < 65535.5)
        pixels = np.zeros(depth.shape, np.uint16)
        np.rint(mm, out=mm, where=valid)
        pixels[valid] = mm[valid]
    else:
        raise ImageConversionError(f'depth encoding must be 32FC1 or 16UC1, got {encoding!r}')
    return _filled_image(header, pixels, encoding)


def float_to_image_msg(values: np.ndarray, header: Any) -> Image:
    """Build a 32FC1 image of HxW values as they are (a confidence map: 0 is a value here)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    if values.ndim != 2:
        raise ImageConversionError(f'expected an HxW array, got shape {values.shape}')
    return _filled_image(header, values, '32FC1')


def float_image_msg_to_array(msg: Any) -> np.ndarray:
    """Read a 32FC1 image's values as they are (no depth validity rule), a new HxW array."""
    if str(msg.encoding) != '32FC1':
        raise ImageConversionError(f'expected a 32FC1 image, got {msg.encoding!r}')
    rows = _pixel_rows(msg, 1, 4).view(np.dtype(f'{">" if msg.is_bigendian else "<"}f4'))
    return rows.astype(np.float32)


def depth_image_msg_to_array(msg: Any) -> np.ndarray:
    """
    Read a depth image (``32FC1`` metres or ``16UC1``/``mono16`` millimetres) as HxW metres.

    Always returns a new float32 array with NaN where the message has no measurement (NaN, Inf,
    0 or negative), so callers can compare depth from any source the same way.
    """
    encoding = str(msg.encoding)
    kind = _DEPTH_LAYOUTS.get(encoding)
    if kind is None:
        raise ImageConversionError(
            f'unsupported depth encoding {encoding!r}; supported: 32FC1, 16UC1, mono16')
    itemsize = int(kind[1])
    rows = _pixel_rows(msg, 1, itemsize)
    if kind == 'f4':
        rows = rows.view(np.dtype(f'{">" if msg.is_bigendian else "<"}f4'))
        depth = rows.astype(np.float32)
    else:
        depth = rows.astype(np.float32) * np.float32(0.001)
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth
