"""Message conversions: encodings, malformed messages, depth (REP 118), camera info, clouds."""

import math

from conftest import K_KITCHEN
import cv2
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header
from treeaspp_depth_ros.conversions import (
    camera_info_to_K,
    CameraInfoError,
    colorize_depth,
    compressed_msg_to_rgb,
    depth_image_msg_to_array,
    depth_to_image_msg,
    depth_to_pointcloud2,
    image_msg_to_rgb,
    ImageConversionError,
    make_camera_info,
    pointcloud2_to_array,
    PointCloudBuilder,
    rgb_to_image_msg,
    scale_camera_info,
)
from treeaspp_depth_ros.data.errors import DataError
from treeaspp_depth_ros.data.intrinsics import intrinsics_from_fov
from treeaspp_depth_ros.pinhole import depth_to_points, intrinsics_from_fov as pinhole_from_fov


def _header() -> Header:
    header = Header(frame_id='camera_color_optical_frame')
    header.stamp.sec, header.stamp.nanosec = 1700000000, 123456789
    return header


def _raw(encoding, height, width, step, data, bigendian=0) -> Image:
    msg = Image(height=height, width=width, encoding=encoding, step=step,
                is_bigendian=bigendian)
    msg.data = bytes(data) if not isinstance(data, np.ndarray) else data.tobytes()
    return msg


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8'])
def test_colour_encodings_round_trip_real_image(kitchen_rgbd, encoding):
    rgb = kitchen_rgbd[0]
    msg = rgb_to_image_msg(rgb, _header(), encoding)
    assert (msg.height, msg.width, msg.encoding) == (480, 640, encoding)
    assert msg.step == 640 * len(encoding.rstrip('8'))
    assert msg.header.frame_id == 'camera_color_optical_frame'
    first = bytes(msg.data[:3])
    expected = rgb[0, 0].tobytes() if encoding.startswith('rgb') else rgb[0, 0, ::-1].tobytes()
    assert first == expected  # the wire layout really is the named channel order
    out = image_msg_to_rgb(deserialize_message(serialize_message(msg), Image))
    np.testing.assert_array_equal(out, rgb)


def test_mono_and_16bit_encodings():
    gray = np.arange(12 * 8, dtype=np.uint8).reshape(8, 12)
    out = image_msg_to_rgb(_raw('mono8', 8, 12, 12, gray))
    assert out.shape == (8, 12, 3)
    np.testing.assert_array_equal(out[:, :, 0], gray)
    np.testing.assert_array_equal(out[:, :, 2], gray)
    words = (gray.astype(np.uint16) << 8) | 0x7F
    for bigendian in (0, 1):
        data = words.astype('>u2' if bigendian else '<u2')
        out = image_msg_to_rgb(_raw('mono16', 8, 12, 24, data, bigendian))
        np.testing.assert_array_equal(out[:, :, 1], gray)


def test_row_padding_is_stripped():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    padded = np.zeros((5, 7 * 3 + 11), np.uint8)
    padded[:, :21] = rgb.reshape(5, 21)
    padded[:, 21:] = 255
    out = image_msg_to_rgb(_raw('rgb8', 5, 7, 32, padded))
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize('encoding, first_row', [
    ('bayer_rggb8', 'RG'), ('bayer_bggr8', 'BG'), ('bayer_gbrg8', 'GB'), ('bayer_grbg8', 'GR')])
def test_bayer_patterns_give_the_right_colour(encoding, first_row):
    colour = {'R': 200, 'G': 90, 'B': 20}
    # the second row of a 2x2 Bayer cell is the complement of the first
    second = {'RG': 'GB', 'BG': 'GR', 'GB': 'RG', 'GR': 'BG'}[first_row]
    pattern = [first_row, second]
    mosaic = np.zeros((16, 16), np.uint8)
    for dy in range(2):
        for dx in range(2):
            mosaic[dy::2, dx::2] = colour[pattern[dy][dx]]
    out = image_msg_to_rgb(_raw(encoding, 16, 16, 16, mosaic))
    assert np.all(out[4:12, 4:12] == [200, 90, 20])


@pytest.mark.parametrize('encoding, order', [('yuv422_yuy2', 'YUYV'), ('yuv422', 'UYVY')])
def test_packed_yuv(encoding, order):
    # Y=81, U=90, V=240 is pure red (BT.601); OpenCV's conversion is the reference for both.
    values = {'Y': 81, 'U': 90, 'V': 240}
    line = np.array([values[c] for c in order] * 4, np.uint8)
    msg = _raw(encoding, 2, 8, 16, np.tile(line, (2, 1)))
    out = image_msg_to_rgb(msg)
    assert out.shape == (2, 8, 3)
    assert out[..., 0].min() > 200 and out[..., 1].max() < 60 and out[..., 2].max() < 60


@pytest.mark.parametrize('msg, words', [
    (_raw('yuv420_garbage', 2, 2, 6, bytes(12)), ['unsupported encoding', 'yuv420_garbage']),
    (_raw('rgb8', 4, 4, 12, bytes(47)), ['data length 47', 'height*step', '48']),
    (_raw('rgb8', 0, 4, 12, b''), ['zero-size']),
    (_raw('rgb8', 4, 0, 0, b''), ['zero-size']),
    (_raw('rgb8', 4, 4, 8, bytes(32)), ['step 8', 'smaller']),
    (_raw('yuv422_yuy2', 2, 3, 6, bytes(12)), ['even width']),
])
def test_malformed_images_are_rejected_with_a_reason(msg, words):
    with pytest.raises(ImageConversionError) as error:
        image_msg_to_rgb(msg)
    for word in words:
        assert word in str(error.value)


def test_compressed_png_and_jpeg(kitchen_rgbd):
    rgb = kitchen_rgbd[0]
    ok, png = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    msg = CompressedImage(format='rgb8; png compressed bgr8')
    msg.data = png.tobytes()
    np.testing.assert_array_equal(compressed_msg_to_rgb(msg), rgb)
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 220
    ok, jpg = cv2.imencode('.jpg', cv2.cvtColor(red, cv2.COLOR_RGB2BGR))
    out = compressed_msg_to_rgb(CompressedImage(format='jpeg', data=jpg.tobytes()))
    assert out.shape == (32, 32, 3)
    assert out[..., 0].mean() > 200 > out[..., 2].mean() + 150  # RGB order, not BGR


def test_corrupt_compressed_data_is_rejected(kitchen_rgbd):
    ok, jpg = cv2.imencode('.jpg', kitchen_rgbd[0])
    for data, word in ((b'', 'empty'), (b'\xff\xd8garbage' * 10, 'corrupt'),
                       (jpg.tobytes()[:40], 'corrupt')):
        with pytest.raises(ImageConversionError, match=word):
            compressed_msg_to_rgb(CompressedImage(format='jpeg', data=data))
    with pytest.raises(ImageConversionError, match='compressed depth'):
        compressed_msg_to_rgb(CompressedImage(format='16UC1; compressedDepth png',
                                              data=jpg.tobytes()))


def test_depth_32fc1_follows_rep118(kitchen_rgbd):
    depth = kitchen_rgbd[1].astype(np.float32) / 1000.0  # real Kinect depth, 0 = no measurement
    msg = depth_to_image_msg(depth, _header())
    assert (msg.encoding, msg.height, msg.width, msg.step) == ('32FC1', 480, 640, 640 * 4)
    raw = np.frombuffer(msg.data, np.float32).reshape(480, 640)
    assert np.all(np.isnan(raw[depth == 0]))
    np.testing.assert_array_equal(raw[depth > 0], depth[depth > 0])
    back = depth_image_msg_to_array(deserialize_message(serialize_message(msg), Image))
    np.testing.assert_array_equal(np.isnan(back), depth == 0)
    np.testing.assert_array_equal(back[depth > 0], depth[depth > 0])


def test_depth_16uc1_millimetres(kitchen_rgbd):
    depth_mm = kitchen_rgbd[1]
    msg = Image(height=480, width=640, encoding='16UC1', step=1280, data=depth_mm.tobytes())
    metres = depth_image_msg_to_array(msg)
    np.testing.assert_array_equal(np.isnan(metres), depth_mm == 0)
    np.testing.assert_allclose(metres[depth_mm > 0], depth_mm[depth_mm > 0] / 1000.0,
                               rtol=1e-6)
    out = depth_to_image_msg(metres, _header(), '16UC1')
    np.testing.assert_array_equal(np.frombuffer(out.data, np.uint16).reshape(480, 640),
                                  depth_mm)


def test_big_endian_float_depth_is_read():
    depth = np.array([[1.5, np.nan], [0.0, 7.25]], np.float32)
    msg = _raw('32FC1', 2, 2, 8, depth.astype('>f4'), bigendian=1)
    out = depth_image_msg_to_array(msg)
    assert out[0, 0] == 1.5 and out[1, 1] == 7.25
    assert np.isnan(out[0, 1]) and np.isnan(out[1, 0])


def test_camera_info_make_scale_and_K():
    info = make_camera_info(K_KITCHEN, 640, 480, _header())
    assert (info.width, info.height, info.distortion_model) == (640, 480, 'plumb_bob')
    np.testing.assert_array_equal(camera_info_to_K(info), K_KITCHEN)
    np.testing.assert_array_equal(np.asarray(info.p).reshape(3, 4)[:, :3], K_KITCHEN)
    half = scale_camera_info(info, 320, 240)
    assert (half.width, half.height) == (320, 240)
    np.testing.assert_allclose(camera_info_to_K(half),
                               [[292.5, 0, 160], [0, 292.5, 120], [0, 0, 1]])
    assert list(half.d) == list(info.d) and half.header.frame_id == info.header.frame_id
    with pytest.raises(CameraInfoError, match='no valid intrinsics'):
        camera_info_to_K(CameraInfo(width=640, height=480))


def test_intrinsics_from_fov():
    K = intrinsics_from_fov(640, 480, 90.0)
    assert K[0, 0] == pytest.approx(320.0) and K[1, 1] == pytest.approx(320.0)
    assert (K[0, 2], K[1, 2]) == (319.5, 239.5)
    with pytest.raises(DataError):
        intrinsics_from_fov(640, 480, 180.0)
    # the camera maths is pinhole's (the node's); the dataset readers' form says DataError
    np.testing.assert_array_equal(pinhole_from_fov(640, 480, 90.0), K)
    with pytest.raises(ValueError, match=r'field of view must be in \(0, 180\) degrees'):
        pinhole_from_fov(640, 480, 0.0)


def _check_cloud_layout(cloud: PointCloud2, height, width, rgb: bool) -> None:
    names = [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields]
    expected = [('x', 0, PointField.FLOAT32, 1), ('y', 4, PointField.FLOAT32, 1),
                ('z', 8, PointField.FLOAT32, 1)]
    if rgb:
        expected.append(('rgb', 16, PointField.FLOAT32, 1))
    assert names == expected
    assert cloud.point_step == (32 if rgb else 16)
    assert (cloud.height, cloud.width) == (height, width)
    assert cloud.row_step == cloud.point_step * width
    assert len(cloud.data) == cloud.row_step * height
    assert cloud.is_dense is False and cloud.is_bigendian is False


def test_pointcloud_equals_backprojected_real_depth(kitchen_rgbd):
    rgb, depth_mm = kitchen_rgbd
    depth = depth_mm.astype(np.float32) / 1000.0
    depth[depth_mm == 0] = np.nan
    cloud = depth_to_pointcloud2(depth, K_KITCHEN, _header(), rgb=rgb)
    _check_cloud_layout(cloud, 480, 640, rgb=True)
    cloud = deserialize_message(serialize_message(cloud), PointCloud2)
    xyz, colours = pointcloud2_to_array(cloud)
    expected = depth_to_points(depth, K_KITCHEN)
    np.testing.assert_array_equal(np.isnan(xyz), np.isnan(expected))
    np.testing.assert_allclose(xyz[~np.isnan(xyz)], expected[~np.isnan(expected)], rtol=1e-6)
    np.testing.assert_array_equal(colours, rgb)
    u, v = 500, 100  # one point by hand: x = (u - cx) z / fx, y = (v - cy) z / fy
    z = depth[v, u]
    np.testing.assert_allclose(xyz[v, u], [(u - 320) * z / 585, (v - 240) * z / 585, z],
                               rtol=1e-6)
    raw = np.frombuffer(cloud.data, np.uint8).reshape(480, 640, 32)
    assert np.all(raw[:, :, 19] == 255)  # PCL's opaque alpha byte of 0xAARRGGBB


def test_pointcloud_stride_and_xyz_layout(kitchen_rgbd):
    depth = kitchen_rgbd[1].astype(np.float32) / 1000.0
    cloud = depth_to_pointcloud2(depth, K_KITCHEN, _header(), stride=3)
    _check_cloud_layout(cloud, math.ceil(480 / 3), math.ceil(640 / 3), rgb=False)
    xyz, colours = pointcloud2_to_array(cloud)
    assert colours is None
    np.testing.assert_allclose(xyz, depth_to_points(depth, K_KITCHEN)[::3, ::3], rtol=1e-6)


def test_builder_recomputes_rays_when_K_or_size_changes():
    builder = PointCloudBuilder()
    depth = np.full((4, 6), 2.0, np.float32)
    K1 = np.array([[10.0, 0, 3], [0, 10.0, 2], [0, 0, 1]])
    first, _ = pointcloud2_to_array(builder.build(depth, K1, _header()))
    K2 = K1.copy()
    K2[0, 0] = 20.0
    second, _ = pointcloud2_to_array(builder.build(depth, K2, _header()))
    np.testing.assert_allclose(second[..., 0], first[..., 0] / 2)
    bigger, _ = pointcloud2_to_array(builder.build(np.ones((8, 6), np.float32), K2, _header()))
    assert bigger.shape == (8, 6, 3)
    with pytest.raises(ValueError, match='RGB'):
        PointCloudBuilder(with_rgb=True).build(depth, K1, _header(), rgb=None)


def test_colorize_depth_near_red_far_blue_invalid_black():
    depth = np.array([[0.5, 8.0, np.nan, 0.0]], np.float32)
    out = colorize_depth(depth, 0.5, 8.0)
    assert out.shape == (1, 4, 3) and out.dtype == np.uint8
    near, far = out[0, 0].astype(int), out[0, 1].astype(int)
    assert near[0] > near[2] and far[2] > far[0]
    np.testing.assert_array_equal(out[0, 2:], 0)


def test_header_stamp_read_from_cdr_bytes_of_either_byte_order():
    """The stamp from raw CDR equals the deserialised one, for little and big endian data."""
    from rosbags.typesys import get_typestore, Stores
    from treeaspp_depth_ros.conversions.stamps import cdr_header_stamp_ns, make_header
    stamp = 1_700_000_000_123_456_789
    for msg in (Image(header=make_header(stamp, 'cam'), height=2, width=2, step=6,
                      encoding='rgb8', data=bytes(12)),
                PointCloud2(header=make_header(stamp, 'cam')),
                CameraInfo(header=make_header(stamp, 'cam'))):
        assert cdr_header_stamp_ns(serialize_message(msg)) == stamp
    store = get_typestore(Stores.ROS2_JAZZY)
    Time, Header_ = store.types['builtin_interfaces/msg/Time'], store.types['std_msgs/msg/Header']
    camera_info = store.types['sensor_msgs/msg/CameraInfo']
    info = camera_info(header=Header_(stamp=Time(sec=1_700_000_000, nanosec=123_456_789),
                                      frame_id='cam'), height=0, width=0,
                       distortion_model='', d=np.zeros(0), k=np.zeros(9), r=np.zeros(9),
                       p=np.zeros(12), binning_x=0, binning_y=0,
                       roi=store.types['sensor_msgs/msg/RegionOfInterest'](
                           x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
    big = store.serialize_cdr(info, 'sensor_msgs/msg/CameraInfo', little_endian=False)
    assert big[1] == 0 and cdr_header_stamp_ns(big) == stamp
    with pytest.raises(ValueError, match='too few'):
        cdr_header_stamp_ns(b'\x00\x01\x00\x00')
