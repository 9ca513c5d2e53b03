"""
A camera driver stand-in: streams a frame source as sensor_msgs Image + CameraInfo.

Publishes ``image`` (or ``image/compressed``) and ``camera_info`` with one stamp per frame,
best effort like real drivers, at a fixed rate. It is the demo's camera and the tests' and
benchmarks' camera (run as its own process, since the large-sample Fast DDS profile must be
in place before a process creates its first DDS participant)::

    python -m treeaspp_depth_ros.demo.camera --source synthetic --rate 30 \
        --ros-args -r __ns:=/camera
"""

import argparse
import json
import sys
import threading
import time
from typing import Dict, List, Optional

import cv2
import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from .sources import DEFAULT_FRAMES, open_source
from ..conversions.camera_info import make_camera_info
from ..conversions.image import rgb_to_image_msg, to_byte_array
from ..conversions.stamps import stamp_to_ns
from ..data.records import Dataset
from ..node import dds
from ..node.qos import input_qos

ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8')
DEFAULT_FRAME_ID = 'camera_color_optical_frame'


class CameraPublisher:
    """Publishes a dataset's frames on a node's timer; records which stamp carried which frame."""

    def __init__(self, node: Node, dataset: Dataset, rate_hz: float = 10.0,
                 encoding: str = 'rgb8', compressed: Optional[str] = None,
                 frame_id: str = DEFAULT_FRAME_ID, loop: bool = False,
                 max_frames: Optional[int] = None, wait_for_subscribers: int = 1,
                 settle_s: float = 0.5) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f'encoding must be one of {ENCODINGS}, got {encoding!r}')
        if compressed not in (None, 'jpeg', 'png'):
            raise ValueError(f'compressed must be jpeg or png, got {compressed!r}')
        self.node, self.dataset = node, dataset
        self.encoding, self.compressed, self.frame_id = encoding, compressed, frame_id
        self.loop, self.wait_for_subscribers, self.settle_s = loop, wait_for_subscribers, settle_s
        self.count = len(dataset) if max_frames is None else min(len(dataset), max_frames)
        if self.count == 0:
            raise ValueError('the frame source has no frames')
        if compressed:
            self.image_pub = node.create_publisher(CompressedImage, 'image/compressed',
                                                   input_qos())
        else:
            self.image_pub = node.create_publisher(Image, 'image', input_qos())
        self.info_pub = node.create_publisher(CameraInfo, 'camera_info', input_qos())
        #: header stamp (ns) -> frame index, for matching outputs with ground truth
        self.sent: Dict[int, int] = {}
        self.sent_order: List[int] = []
        self.done = threading.Event()
        self._next = 0
        self._ready_at: Optional[float] = None
        self._timer = node.create_timer(1.0 / rate_hz, self._tick)

    def _ready(self) -> bool:
        if self._ready_at is None:
            if self.image_pub.get_subscription_count() < self.wait_for_subscribers:
                return False
            self._ready_at = time.monotonic() + self.settle_s  # let transports connect
        return time.monotonic() >= self._ready_at

    def _tick(self) -> None:
        if self.done.is_set() or not self._ready():
            return
        index = self._next % self.count
        header = Header(frame_id=self.frame_id)
        header.stamp = self.node.get_clock().now().to_msg()
        rgb = self.dataset.rgb(index)
        info = make_camera_info(self.dataset.K, rgb.shape[1], rgb.shape[0], header)
        self.info_pub.publish(info)
        self.image_pub.publish(self._image_msg(rgb, header))
        stamp_ns = stamp_to_ns(header.stamp)
        self.sent[stamp_ns] = index
        self.sent_order.append(stamp_ns)
        self._next += 1
        if self._next >= self.count and not self.loop:
            self.done.set()

    def _image_msg(self, rgb: np.ndarray, header: Header):
        if not self.compressed:
            return rgb_to_image_msg(rgb, header, self.encoding)
        ok, data = cv2.imencode('.jpg' if self.compressed == 'jpeg' else '.png',
                                cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError(f'OpenCV could not encode a {self.compressed} image')
        msg = CompressedImage(header=header, format=f'rgb8; {self.compressed} compressed bgr8')
        msg.data = to_byte_array(data)
        return msg

    def stop(self) -> None:
        self.done.set()
        self.node.destroy_timer(self._timer)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m treeaspp_depth_ros.demo.camera', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--source', default='synthetic',
                        help='synthetic, a folder (7-Scenes, TUM, images + intrinsics) or a '
                             'rosbag2 (default: synthetic)')
    parser.add_argument('--frames', type=int, default=DEFAULT_FRAMES,
                        help='frames to stream (synthetic: frames to render)')
    parser.add_argument('--width', type=int, default=640, help='synthetic frame width')
    parser.add_argument('--height', type=int, default=480, help='synthetic frame height')
    parser.add_argument('--seed', type=int, default=7, help='synthetic scene seed')
    parser.add_argument('--rate', type=float, default=10.0, help='frames per second')
    parser.add_argument('--encoding', choices=ENCODINGS, default='rgb8')
    parser.add_argument('--compressed', choices=('jpeg', 'png'),
                        help='publish image/compressed instead of image')
    parser.add_argument('--frame-id', default=DEFAULT_FRAME_ID)
    parser.add_argument('--loop', action='store_true', help='repeat until interrupted')
    parser.add_argument('--wait-subscribers', type=int, default=1,
                        help='start once this many subscribers listen to the image topic')
    parser.add_argument('--linger', type=float, default=1.0,
                        help='seconds to stay after the last frame (delivery of the last ones)')
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Stream frames until done (or interrupted); print a JSON summary line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args = argv[argv.index('--ros-args'):] if '--ros-args' in argv else []
    args = build_parser().parse_args(argv[:len(argv) - len(ros_args)])
    dataset = open_source(args.source, args.frames, args.width, args.height, args.seed)
    dds.apply_to_this_process()
    rclpy.init(args=['camera'] + ros_args)
    node = Node('camera')
    camera = CameraPublisher(node, dataset, args.rate, args.encoding, args.compressed,
                             args.frame_id, args.loop, args.frames, args.wait_subscribers)
    try:
        while rclpy.ok() and not camera.done.is_set():
            rclpy.spin_once(node, timeout_sec=0.05)
        end = time.monotonic() + args.linger
        while rclpy.ok() and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        print(json.dumps({'frames_sent': len(camera.sent_order),
                          'stamps_ns': camera.sent_order}), flush=True)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
