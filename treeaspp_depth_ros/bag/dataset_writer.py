"""
Write a `Dataset` (an RGB-D dataset folder, synthetic rooms) as a rosbag2 (sqlite3 or mcap).

The bag holds what a camera driver would publish (image + camera_info with equal stamps), the
dataset's ground-truth depth (16UC1 mm or 32FC1 m, REP 118) and, when the dataset has poses,
the ground-truth camera pose, so `bag-eval` and SLAM tools can replay it like a recording.
`treeaspp-depth make-bag` (:mod:`.make_bag`) is the command; tests, benchmarks and training's
fine-tuning check call :func:`write_dataset_bag` directly.
"""

from pathlib import Path
import time
from typing import Dict, Optional

import numpy as np

from treeaspp_depth_ros.bag import bagio
from treeaspp_depth_ros.cli import CommandError
from treeaspp_depth_ros.conversions.stamps import make_header
from treeaspp_depth_ros.data.poses import matrix_to_quaternion
from treeaspp_depth_ros.data.records import Dataset

DEFAULT_PREFIX = '/camera'
DEFAULT_FRAME_ID = 'camera_color_optical_frame'


def topic_names(prefix: str = DEFAULT_PREFIX) -> Dict[str, str]:
    """Return the topics make-bag writes under `prefix`."""
    return bagio.topics_under(prefix, dict(bagio.CAMERA_TOPICS, depth='depth_gt',
                                           pose='pose_gt'))


def _pose_msg(pose: np.ndarray, header):
    from geometry_msgs.msg import PoseStamped
    msg = PoseStamped()
    msg.header = header
    t = np.asarray(pose, dtype=np.float64)[:3, 3]
    x, y, z, w = matrix_to_quaternion(pose)
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in t)
    msg.pose.orientation.x, msg.pose.orientation.y = float(x), float(y)
    msg.pose.orientation.z, msg.pose.orientation.w = float(z), float(w)
    return msg


def write_dataset_bag(dataset: Dataset, output: Path, storage: str = 'sqlite3',
                      depth_encoding: str = '16UC1', frame_id: str = DEFAULT_FRAME_ID,
                      topic_prefix: str = DEFAULT_PREFIX, reliable: bool = True,
                      max_frames: Optional[int] = None, version: int = 8,
                      overwrite: bool = False) -> Dict[str, object]:
    """Write `dataset` as a rosbag2 at `output` (atomically) and return a summary."""
    from treeaspp_depth_ros.conversions.camera_info import make_camera_info
    from treeaspp_depth_ros.conversions.image import (
        depth_to_image_msg, ImageConversionError, rgb_to_image_msg)

    if depth_encoding not in ('16UC1', '32FC1'):
        raise CommandError(f'unknown depth encoding {depth_encoding!r}; use 16UC1 or 32FC1')
    count = len(dataset) if max_frames is None else min(len(dataset), max(0, int(max_frames)))
    if count == 0:
        raise CommandError(f'dataset {dataset.root} has no frames to write')
    topics = topic_names(topic_prefix)
    sensor_qos = bagio.qos(reliable=reliable, depth=10 if reliable else 5)
    custom = {
        'generator': 'treeaspp-depth make-bag',
        'dataset_format': dataset.name,
        'dataset_path': str(dataset.root),
        'depth_encoding': depth_encoding if dataset.has_depth else '',
    }
    started = time.perf_counter()
    with bagio.atomic_output(output, overwrite=overwrite) as staging:
        with bagio.BagWriter(staging, storage=storage, version=version,
                             custom_data=custom) as writer:
            writer.add_topic(topics['image'], bagio.IMAGE, [sensor_qos])
            writer.add_topic(topics['camera_info'], bagio.CAMERA_INFO, [sensor_qos])
            if dataset.has_depth:
                writer.add_topic(topics['depth'], bagio.IMAGE, [sensor_qos])
            if dataset.has_pose:
                writer.add_topic(topics['pose'], bagio.POSE_STAMPED, [bagio.RELIABLE_QOS])
            for index in range(count):
                frame = dataset.frames[index]
                rgb = dataset.rgb(index)
                header = make_header(frame.stamp_ns, frame_id)
                pending = [
                    (frame.stamp_ns, topics['image'], rgb_to_image_msg(rgb, header)),
                    (frame.stamp_ns, topics['camera_info'],
                     make_camera_info(dataset.K, dataset.width, dataset.height, header)),
                ]
                if dataset.has_depth:
                    depth = dataset.depth(index)
                    if depth.shape != rgb.shape[:2]:
                        raise CommandError(
                            f'depth of frame {index} ({frame.depth_path or "array"}) is '
                            f'{depth.shape[1]}x{depth.shape[0]}, image is {rgb.shape[1]}x'
                            f'{rgb.shape[0]}; make-bag expects registered depth')
                    depth_stamp = frame.depth_stamp_ns or frame.stamp_ns
                    try:
                        depth_msg = depth_to_image_msg(
                            depth, make_header(depth_stamp, frame_id), depth_encoding)
                    except ImageConversionError as error:
                        raise CommandError(f'frame {index}: {error}') from None
                    pending.append((depth_stamp, topics['depth'], depth_msg))
                if dataset.has_pose:
                    pending.append((frame.stamp_ns, topics['pose'],
                                    _pose_msg(frame.pose, make_header(frame.stamp_ns, 'world'))))
                for stamp, topic, msg in sorted(pending, key=lambda item: item[0]):
                    writer.write(topic, stamp, msg)
            counts = dict(writer.counts)
    return {
        'bag': str(output), 'storage': storage, 'frames': count, 'topics': counts,
        'width': dataset.width, 'height': dataset.height,
        'seconds': time.perf_counter() - started,
    }
