"""
Hostile input against the real node: malformed Image, CompressedImage and CameraInfo over DDS.

Two node processes (one raw, one compressed input; a node subscribes to one of them) receive
more than 20 kinds of bad message, each followed by a good frame. After every bad message the
kind must be counted in diagnostics (``input_problem_<kind>``) and the next good frame served.
The demo checkpoint at 64x64 keeps inference cheap; the messages are small except the bombs,
whose headers declare gigapixel images in a few kilobytes.
"""

import os
from pathlib import Path
import struct
import time
from typing import Callable, Dict, List, Tuple
import zlib

from conftest import K_KITCHEN
import cv2
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from treeaspp_depth_ros.conversions import make_camera_info, rgb_to_image_msg
from treeaspp_depth_ros.conversions.image import (
    compressed_msg_to_rgb,
    compressed_size,
    DEFAULT_MAX_INPUT_PIXELS,
    ImageConversionError,
)
from treeaspp_depth_ros.conversions.stamps import header_stamp_ns, make_header
from treeaspp_depth_ros.node.description import describe_depth_node
from treeaspp_depth_ros.node_launcher import isolated_env, NodeProcess, Probe
from treeaspp_depth_ros.weights import DEMO_WEIGHTS

DOMAIN = 1 + (os.getpid() + 5) % 100
NS = f'/fuzz_{os.getpid()}'
WEIGHTS = DEMO_WEIGHTS
SIZE = (64, 48)  # good frames: width, height
RAW_LIMIT = 20000  # max_input_pixels of the raw node: a 200x150 frame is already too large
K = K_KITCHEN / 10 * np.array([[1], [1], [10]])  # the kitchen camera at 64x48


def _header(frame_id: str = 'fuzz_optical_frame', stamp_ns: int = 0):
    return make_header(stamp_ns or time.time_ns(), frame_id)


def _png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """Build a valid 1-bit greyscale PNG of ``width`` x ``height`` zeros: ~50 kB, 1.2 GB as RGB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF))
    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    idat = b''.join(packer.compress(row * 1000) for _ in range(height // 1000)) + packer.flush()
    header = struct.pack('>IIBBBBB', width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', idat)
            + chunk(b'IEND', b''))


def _jpeg_declaring(good_jpeg: bytes, width: int, height: int) -> bytes:
    """Patch a real JPEG's frame header (SOF0) to declare another size."""
    sof = good_jpeg.index(b'\xff\xc0')
    return (good_jpeg[:sof + 5] + struct.pack('>HH', height, width)
            + good_jpeg[sof + 9:])


def _image(encoding: str, width: int, height: int, step: int, size: int,
           bigendian: int = 0, **header) -> Image:
    msg = Image(header=_header(**header), height=height, width=width, encoding=encoding,
                step=step, is_bigendian=bigendian)
    msg.data = bytes(size)
    return msg


def _info(k: np.ndarray, width: int = SIZE[0], height: int = SIZE[1]) -> CameraInfo:
    info = make_camera_info(K, width, height, _header())
    info.k = [float(v) for v in np.asarray(k, np.float64).ravel()]
    return info


def _k_with(fx: float) -> np.ndarray:
    k = K.copy()
    k[0, 0] = fx
    return k


@pytest.fixture(scope='module')
def good_rgb(kitchen_rgbd) -> np.ndarray:
    return cv2.resize(kitchen_rgbd[0], SIZE, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope='module')
def encoded(good_rgb) -> Dict[str, bytes]:
    bgr = cv2.cvtColor(good_rgb, cv2.COLOR_RGB2BGR)
    return {ext: cv2.imencode(f'.{ext}', bgr)[1].tobytes() for ext in ('png', 'jpg')}


def test_compressed_size_reads_headers_and_bounds_decoding(encoded):
    """The header parser agrees with OpenCV; a gigapixel bomb is refused in microseconds."""
    assert compressed_size(encoded['png']) == ('png', *SIZE)
    assert compressed_size(encoded['jpg']) == ('jpeg', *SIZE)
    bomb = _png_bomb()
    assert len(bomb) < 100_000 and compressed_size(bomb) == ('png', 20000, 20000)
    started = time.perf_counter()
    with pytest.raises(ImageConversionError, match='max_input_pixels') as caught:
        compressed_msg_to_rgb(CompressedImage(format='png', data=bomb))
    assert caught.value.kind == 'too_large' and time.perf_counter() - started < 0.05
    assert 20000 * 20000 > DEFAULT_MAX_INPUT_PIXELS >= 3840 * 2160  # 4K cameras still pass


class FuzzNode:
    """One node process and the probe's publishers and subscriptions for it."""

    def __init__(self, probe: Probe, workdir: Path, name: str, **parameters) -> None:
        values = {'weights': str(WEIGHTS), 'device': 'cpu', 'input_width': 64,
                  'input_height': 64, 'diagnostics_period': 0.1, 'cpu_threads': 1,
                  'publish_points': False, 'publish_colored': False}
        values.update(parameters)
        self.ns, self.probe = f'{NS}/{name}', probe
        description = describe_depth_node(namespace=self.ns, parameters=values)
        self.process = NodeProcess.depth_node(description, isolated_env(DOMAIN),
                                              workdir / f'{name}.log')
        self.depth = probe.subscribe(Image, f'{self.ns}/depth/image')
        self.diagnostics = probe.subscribe(DiagnosticArray, f'{self.ns}/diagnostics')
        self.info_pub = probe.publisher(CameraInfo, f'{self.ns}/camera_info')
        topic = f'{self.ns}/image/compressed' if values.get('use_compressed') else \
            f'{self.ns}/image'
        self.image_topic = topic
        self.image_pub = probe.publisher(
            CompressedImage if values.get('use_compressed') else Image, topic)

    def wait_ready(self) -> None:
        ok = self.probe.wait_for(
            lambda: not self.process.alive()
            or self.probe.node.count_subscribers(self.image_topic) > 0
            and self.probe.node.count_publishers(f'{self.ns}/depth/image') > 0, 90)
        assert ok and self.process.alive(), self.process.log_text()

    def diag(self) -> Dict[str, str]:
        msg = self.diagnostics.latest()
        return {} if msg is None else {kv.key: kv.value for kv in msg.status[0].values}

    def count(self, kind: str) -> int:
        return int(self.diag().get(f'input_problem_{kind}', 0))

    def output_for(self, stamp: int):
        return next((m for m in self.depth.messages() if header_stamp_ns(m) == stamp), None)

    def publish_until(self, publish: Callable[[], int], done: Callable[[int], bool],
                      timeout: float = 15.0) -> int:
        """Publish (again every half second: best effort) until ``done(stamp)``; the stamp."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stamp = publish()
            if self.probe.wait_for(lambda: done(stamp), 0.5):
                return stamp
        raise AssertionError(f'timed out after {timeout} s; diagnostics {self.diag()}\n'
                             + self.process.log_tail(30))


@pytest.fixture(scope='module')
def nodes(tmp_path_factory, kitchen_dir):
    workdir = tmp_path_factory.mktemp('fuzz')
    with Probe(DOMAIN, 'fuzz_probe') as probe:
        started = {'raw': FuzzNode(probe, workdir, 'raw', max_input_pixels=RAW_LIMIT)}
        try:
            started['raw'].wait_ready()
            # started now, not together: it loads while the raw cases run, not while raw starts
            started['compressed'] = FuzzNode(probe, workdir, 'compressed', use_compressed=True)
            yield started
        finally:
            for node in started.values():
                node.process.stop()


def _raw_cases(good_rgb) -> List[Tuple[str, str, Callable[[], object]]]:
    """(case, counted kind, message factory): the raw node's bad Image and CameraInfo."""
    width, height = SIZE

    def big_endian_garbage():
        msg = rgb_to_image_msg(good_rgb, _header())
        msg.encoding, msg.step, msg.is_bigendian = 'rgb16', width * 6, 7
        msg.data = bytes(height * width * 6)
        return msg

    oversize = cv2.resize(good_rgb, (200, 150))
    return [
        ('unknown encoding', 'unsupported_encoding', lambda: _image('yuv420', 4, 4, 6, 24)),
        ('empty encoding', 'unsupported_encoding', lambda: _image('', 4, 4, 12, 48)),
        ('depth as colour', 'unsupported_encoding',
         lambda: _image('32FC1', width, height, width * 4, width * height * 4)),
        ('zero size', 'zero_size', lambda: _image('rgb8', 0, 0, 0, 0)),
        ('step too small', 'step_too_small', lambda: _image('bgr8', width, height, 100,
                                                            100 * height)),
        ('truncated data', 'truncated', lambda: _image('rgb8', width, height, width * 3,
                                                       width * height * 3 - 1)),
        ('excess data', 'excess_data', lambda: _image('rgb8', width, height, width * 3,
                                                      width * height * 3 + 64)),
        ('odd-width yuv422', 'odd_width', lambda: _image('yuv422', 5, 4, 10, 40)),
        ('is_bigendian 7', 'bad_endianness', big_endian_garbage),
        ('oversize frame', 'too_large', lambda: rgb_to_image_msg(oversize, _header())),
        ('gigapixel header, tiny data', 'too_large',
         lambda: _image('rgb8', 100000, 100000, 300000, 16)),
    ]


def _info_cases() -> List[Tuple[str, str, Callable[[], CameraInfo]]]:
    nan_k = K.copy()
    nan_k[1, 2] = np.nan
    return [
        ('NaN intrinsics', 'camera_info_nonfinite', lambda: _info(nan_k)),
        ('zero focal length', 'camera_info_zero_focal', lambda: _info(_k_with(0.0))),
        ('negative focal length', 'camera_info_negative_focal', lambda: _info(_k_with(-58.5))),
        ('zero-size camera_info', 'camera_info_zero_size', lambda: _info(K, 0, 0)),
        ('camera_info for 640x480', 'camera_info_other_resolution',
         lambda: _info(K_KITCHEN, 640, 480)),
    ]


def _compressed_cases(encoded) -> List[Tuple[str, str, Callable[[], CompressedImage]]]:
    png, jpg = encoded['png'], encoded['jpg']
    corrupt_idat = bytearray(png)
    middle = len(png) // 2
    corrupt_idat[middle:middle + 64] = bytes(64)
    bomb = _png_bomb()
    return [
        ('compressedDepth', 'compressed_depth', lambda: (png, '16UC1; compressedDepth png')),
        ('empty data', 'empty', lambda: (b'', 'png')),
        ('garbage', 'unknown_format', lambda: (os.urandom(4096), 'jpeg')),
        ('other container (BMP)', 'unknown_format',
         lambda: (cv2.imencode('.bmp', np.zeros((8, 8, 3), np.uint8))[1].tobytes(), 'bmp')),
        ('PNG cut inside IHDR', 'bad_header', lambda: (png[:20], 'png')),
        ('JPEG without a frame header', 'bad_header', lambda: (b'\xff\xd8\xff\xd9', 'jpeg')),
        ('PNG header declaring 0x0', 'bad_header',
         lambda: (png[:16] + bytes(8) + png[24:], 'png')),
        ('PNG decompression bomb 20000x20000', 'too_large', lambda: (bomb, 'png')),
        ('JPEG declaring 60000x60000', 'too_large',
         lambda: (_jpeg_declaring(jpg, 60000, 60000), 'jpeg')),
        ('truncated PNG', 'corrupt', lambda: (png[:len(png) * 2 // 3], 'png')),
        ('truncated JPEG', 'corrupt', lambda: (jpg[:len(jpg) // 2], 'jpeg')),
        ('PNG with corrupt image data', 'corrupt', lambda: (bytes(corrupt_idat), 'png')),
    ]


def _peak_rss(node: FuzzNode) -> int:
    with open(f'/proc/{node.process.pid}/status') as handle:
        return next(int(line.split()[1]) * 1024 for line in handle
                    if line.startswith('VmHWM:'))


def test_node_survives_malformed_input_counts_each_kind_and_serves_the_next_frame(
        nodes, good_rgb, encoded):
    raw, compressed = nodes['raw'], nodes['compressed']

    def serve_good(node: FuzzNode, **header) -> int:
        """Publish a good frame and camera_info until its depth arrives; return its stamp."""
        def publish() -> int:
            head = _header(**header)
            info = make_camera_info(K, *SIZE, head)
            node.info_pub.publish(info)
            if node is compressed:
                node.image_pub.publish(CompressedImage(header=head, format='png',
                                                       data=encoded['png']))
            else:
                node.image_pub.publish(rgb_to_image_msg(good_rgb, head))
            return header_stamp_ns(info)
        stamp = node.publish_until(publish, lambda stamp: node.output_for(stamp) is not None)
        # diagnostics caught up with this frame, so counts read next are not stale
        published = len(node.depth.messages())
        assert node.probe.wait_for(
            lambda: int(node.diag().get('frames_published', 0)) >= published, 5)
        return stamp

    def bad_then_good(node: FuzzNode, case: str, kind: str, send: Callable[[], None]) -> None:
        before = node.count(kind)
        node.publish_until(lambda: send() or 0, lambda _: node.count(kind) > before)
        assert node.process.alive(), (case, node.process.log_tail())
        serve_good(node)

    serve_good(raw)
    kinds = set()
    for case, kind, make in _raw_cases(good_rgb):
        bad_then_good(raw, case, kind, lambda: raw.image_pub.publish(make()))
        kinds.add(kind)
    for case, kind, make in _info_cases():
        def send_info_and_frame(make=make) -> None:
            raw.info_pub.publish(make())
            time.sleep(0.05)
            raw.image_pub.publish(rgb_to_image_msg(good_rgb, _header()))
        bad_then_good(raw, case, kind, send_info_and_frame)
        kinds.add(kind)
    # stamps going backwards and an empty frame_id are counted, and those frames still served
    newest = serve_good(raw)
    before = raw.count('stamp_backwards')
    older = serve_good(raw, stamp_ns=newest - 10**9)
    assert older < newest  # diagnostics come every 0.1 s: wait for the count
    assert raw.probe.wait_for(lambda: raw.count('stamp_backwards') > before, 5)
    before = raw.count('empty_frame_id')
    serve_good(raw, frame_id='')
    assert raw.probe.wait_for(lambda: raw.count('empty_frame_id') > before, 5)
    kinds |= {'stamp_backwards', 'empty_frame_id'}

    compressed.wait_ready()
    serve_good(compressed)
    peak_before = _peak_rss(compressed)
    for case, kind, make in _compressed_cases(encoded):
        def send_compressed(make=make) -> None:
            data, fmt = make()
            compressed.image_pub.publish(CompressedImage(header=_header(), format=fmt,
                                                         data=data))
        bad_then_good(compressed, case, kind, send_compressed)
        kinds.add(kind)
    # the bombs were refused from their headers: the node's peak memory did not grow by
    # the 1.2 GB (or 10 GB) that decoding them would take
    assert _peak_rss(compressed) - peak_before < 100 * 2**20

    assert len(kinds) >= 20, sorted(kinds)
    for node in (raw, compressed):
        diag = node.diag()
        seen = {key[len('input_problem_'):] for key in diag
                if key.startswith('input_problem_')}
        assert seen <= kinds and int(diag['errors']) == 0, diag
        assert node.process.alive() and 'Traceback' not in node.process.log_text()
    assert 'max_input_pixels' in raw.process.log_text()  # the log says why it was refused
