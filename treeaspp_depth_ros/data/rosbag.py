"""
Reading rosbag2 recordings (sqlite3 or mcap) on `rosbags`, with errors naming bag and topic.

What every reader of a bag shares: the reader itself, the message type names, camera_info
discovery next to an image topic, a recorded trajectory, the pairing of images with depth by
header stamp and the decoding of an image message. Training's bag layout (:mod:`.bag_dataset`)
and the bag tools (`bag-eval`, `calibrate-scale`, the demo) read through it; writing bags is the
bag tools' own (``treeaspp_depth_ros.bag.bagio``). Every failure is a :class:`DataError`. Needs
rosbags and the ROS message packages, so the dataset layouts import it only when a bag is read.
"""

from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from rosbags.rosbag2 import Reader
from rosbags.typesys import get_typestore, Stores

from .association import associate
from .errors import DataError
from .poses import quaternion_to_matrix
from ..conversions.image import compressed_msg_to_rgb, image_msg_to_rgb
from ..conversions.stamps import header_stamp_ns

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
POSE_STAMPED = 'geometry_msgs/msg/PoseStamped'
ODOMETRY = 'nav_msgs/msg/Odometry'
#: what a recorded trajectory can be: a robot's odometry or a pose topic (make-bag's pose_gt)
POSE_TYPES = (ODOMETRY, POSE_STAMPED)
#: Message definitions and hashes: identical for sensor_msgs & co. from Humble to Kilted.
_TYPESTORE = None


def typestore():
    """Typestore (ROS 2 Jazzy definitions) shared by readers and writers."""
    global _TYPESTORE
    if _TYPESTORE is None:
        _TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
    return _TYPESTORE


def deserialize(data: bytes, msgtype: str):
    """Deserialise CDR bytes into a rosbags message (numpy arrays for `uint8[]` fields)."""
    return typestore().deserialize_cdr(data, msgtype)


class BagReader:
    """Open a rosbag2 directory (or a single .db3/.mcap file) with errors naming the bag/topic."""

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f'bag {self.path} does not exist')
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except Exception as error:  # rosbags, sqlite3, mcap and YAML errors alike
            storage = [] if not self.path.is_dir() else \
                [p for p in self.path.iterdir() if p.suffix in ('.db3', '.mcap')]
            hint = '(empty, corrupt or not a rosbag2)'
            if storage and not (self.path / 'metadata.yaml').exists():
                hint = ('(no metadata.yaml next to its storage file: the recording was cut off '
                        'before it was closed; `ros2 bag reindex` can rebuild the metadata of '
                        'what was written)')
            raise DataError(
                f'cannot open bag {self.path}: {error or type(error).__name__} {hint}') from None
        if self._reader.message_count == 0:
            self.close()
            raise DataError(f'bag {self.path} contains no messages')

    def close(self) -> None:
        try:
            self._reader.close()
        except Exception:  # closing a half-open reader must not hide the original error
            pass

    def __enter__(self) -> 'BagReader':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def topics(self) -> Dict[str, Tuple[str, int]]:
        """Map topic -> (msgtype, message count)."""
        out: Dict[str, Tuple[str, int]] = {}
        for conn in self._reader.connections:
            msgtype, count = out.get(conn.topic, (conn.msgtype, 0))
            out[conn.topic] = (msgtype, count + conn.msgcount)
        return out

    @property
    def storage(self) -> str:
        files = list(self.path.glob('*.mcap')) if self.path.is_dir() else [self.path]
        return 'mcap' if any(f.suffix == '.mcap' for f in files) else 'sqlite3'

    def offered_qos(self, topic: str) -> List[Any]:
        for conn in self._reader.connections:
            if conn.topic == topic:
                return list(getattr(conn.ext, 'offered_qos_profiles', []) or [])
        return []

    def require_topic(self, topic: str, allowed: Iterable[str], role: str = 'topic') -> str:
        """Check `topic` exists with one of the `allowed` types and has messages; return type."""
        allowed = tuple(allowed)
        topics = self.topics
        if topic not in topics:
            listing = ', '.join(f'{t} ({m})' for t, (m, _) in sorted(topics.items())) or 'none'
            raise DataError(f'{role} {topic} is not in bag {self.path}; it has: {listing}')
        msgtype, count = topics[topic]
        if msgtype not in allowed:
            raise DataError(
                f'{role} {topic} in bag {self.path} has type {msgtype}, expected '
                f'{" or ".join(allowed)}')
        if count == 0:
            raise DataError(f'{role} {topic} in bag {self.path} has no messages')
        return msgtype

    def messages(self, topics: Iterable[str], start: Optional[int] = None,
                 stop: Optional[int] = None) -> Iterator[Tuple[str, str, int, bytes]]:
        """(topic, msgtype, bag time ns, CDR bytes) in bag-time order, within [start, stop)."""
        wanted = set(topics)
        connections = [c for c in self._reader.connections if c.topic in wanted]
        try:
            for conn, timestamp, data in self._reader.messages(connections=connections,
                                                               start=start, stop=stop):
                yield conn.topic, conn.msgtype, timestamp, data
        except DataError:
            raise
        except Exception as error:
            raise DataError(
                f'bag {self.path} is corrupt: reading {", ".join(sorted(wanted))} failed: '
                f'{error or type(error).__name__}') from None

    def message_at(self, topic: str, timestamp: int, ordinal: int = 0) -> bytes:
        """
        Return the CDR bytes of the `ordinal`-th message on `topic` at bag time `timestamp`.

        Why: a long recording is read again message by message (both storages index bag time)
        instead of being held in memory.
        """
        found = self.messages([topic], start=timestamp, stop=timestamp + 1)
        for index, (_, _, _, data) in enumerate(found):
            if index == ordinal:
                return bytes(data)
        raise DataError(f'bag {self.path} has no message {ordinal} on {topic} at bag time '
                        f'{timestamp} ns any more; was it changed while in use?')

    def decode(self, topic: str, msgtype: str, timestamp: int, data: bytes):
        """Deserialise one message; a corrupt message becomes an error naming topic and time."""
        try:
            return deserialize(data, msgtype)
        except Exception as error:
            raise DataError(
                f'corrupt message on {topic} at bag time {timestamp} ns in {self.path}: '
                f'{error or type(error).__name__}') from None


def find_camera_info_topic(reader: BagReader, image_topic: str) -> Optional[str]:
    """Find the CameraInfo topic next to the image topic (`/ns/image_raw` -> `/ns/camera_info`)."""
    namespace = image_topic.rsplit('/', 1)[0]
    for topic, (msgtype, count) in reader.topics.items():
        if msgtype == CAMERA_INFO and count and topic == f'{namespace}/camera_info':
            return topic
    return None


def read_pose_track(reader: BagReader, topic: str) -> Tuple[np.ndarray, np.ndarray]:
    """
    Header stamps (ns, sorted) and 4x4 poses of a nav_msgs/Odometry or PoseStamped topic.

    Odometry gives the robot body's pose in its odom frame, not the camera's; for how far and
    how much a rigidly mounted camera moved between two frames that is what counts.
    """
    msgtype = reader.require_topic(topic, POSE_TYPES, 'pose topic')
    stamps, poses = [], []
    for name, kind, timestamp, data in reader.messages([topic]):
        msg = reader.decode(name, kind, timestamp, data)
        pose = msg.pose.pose if msgtype == ODOMETRY else msg.pose
        p, q = pose.position, pose.orientation
        if not np.isfinite([p.x, p.y, p.z, q.x, q.y, q.z, q.w]).all() or \
                not np.linalg.norm([q.x, q.y, q.z, q.w]) > 0:
            raise DataError(f'pose topic {topic} in bag {reader.path}: non-finite pose or '
                            f'zero quaternion at bag time {timestamp} ns')
        stamps.append(header_stamp_ns(msg))
        poses.append(quaternion_to_matrix((p.x, p.y, p.z), (q.x, q.y, q.z, q.w)))
    order = np.argsort(np.array(stamps, dtype=np.int64), kind='stable')
    return np.array(stamps, dtype=np.int64)[order], np.array(poses).reshape(-1, 4, 4)[order]


def pair_with_depth(image_stamps: Sequence[int], depth_stamps: Sequence[int],
                    max_dt: float) -> List[Tuple[int, int]]:
    """
    Pair images with depth maps by header stamp (ns): `(image index, depth index)` pairs.

    One to one, closest stamps first, within `max_dt` seconds (equal stamps always pair), in
    image-stamp order. Stamps are taken relative to the earliest, so nanoseconds survive the
    conversion to seconds.
    """
    if not len(image_stamps) or not len(depth_stamps):
        return []
    origin = min(min(image_stamps), min(depth_stamps))
    image_s = (np.asarray(image_stamps, dtype=np.int64) - origin) * 1e-9
    depth_s = (np.asarray(depth_stamps, dtype=np.int64) - origin) * 1e-9
    pairs = associate(image_s, depth_s, max_dt + 1e-9)
    pairs.sort(key=lambda ij: (image_stamps[ij[0]], ij[0]))
    return pairs


def no_depth_pair_error(bag: Path, image_topic: str, depth_topic: str,
                        max_dt: float) -> DataError:
    """Return the error for a bag where :func:`pair_with_depth` pairs nothing (one text)."""
    return DataError(f'bag {bag}: no image on {image_topic} has a depth map on {depth_topic} '
                     f'within {max_dt} s (header stamps)')


def decode_rgb(msg: Any, msgtype: str) -> np.ndarray:
    """
    RGB (HxWx3 uint8) of a recorded sensor_msgs Image or CompressedImage (`msgtype`).

    An unknown encoding or a corrupt image raises the conversions' ImageConversionError.
    """
    if msgtype == COMPRESSED_IMAGE:
        return compressed_msg_to_rgb(msg)
    return image_msg_to_rgb(msg)
