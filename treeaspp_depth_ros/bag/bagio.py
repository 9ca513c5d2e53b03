"""
rosbag2 reading and writing on `rosbags`, with atomic outputs and readable errors.

rosbags' CDR bytes equal `rclpy.serialization.serialize_message`, so messages built with rclpy
(as the conversions and the node do) are written as raw bytes, and read back either with
rosbags' typestore (numpy views, no ROS install needed) or rclpy.
"""

from contextlib import contextmanager
import dataclasses
import os
from pathlib import Path
import shutil
import tempfile
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores

from treeaspp_depth_ros.cli import CommandError
from treeaspp_depth_ros.conversions.stamps import header_stamp_ns, split_ns
from treeaspp_depth_ros.data.poses import quaternion_to_matrix

STORAGES = {'sqlite3': StoragePlugin.SQLITE3, 'mcap': StoragePlugin.MCAP}
IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
POINTCLOUD2 = 'sensor_msgs/msg/PointCloud2'
POSE_STAMPED = 'geometry_msgs/msg/PoseStamped'
ODOMETRY = 'nav_msgs/msg/Odometry'
#: what a recorded trajectory can be: a robot's odometry or a pose topic (make-bag's pose_gt)
POSE_TYPES = (ODOMETRY, POSE_STAMPED)
TF_MESSAGE = 'tf2_msgs/msg/TFMessage'
CLOCK = 'rosgraph_msgs/msg/Clock'
#: Message definitions and hashes: identical for sensor_msgs & co. from Humble to Kilted.
_TYPESTORE = None
_INFINITE = QosTime(9223372036, 854775807)   # RMW_DURATION_INFINITE as rosbag2 records it


def typestore():
    """Typestore (ROS 2 Jazzy definitions) shared by readers and writers."""
    global _TYPESTORE
    if _TYPESTORE is None:
        _TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
    return _TYPESTORE


def qos(reliable: bool = True, depth: int = 10, transient_local: bool = False) -> Qos:
    """Return an offered QoS profile as rosbag2 records it (and `ros2 bag play` re-offers)."""
    return Qos(
        QosHistory.KEEP_LAST, depth,
        QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
        _INFINITE, _INFINITE, QosLiveliness.AUTOMATIC, _INFINITE, False)


SENSOR_QOS = qos(reliable=False, depth=5)
RELIABLE_QOS = qos(reliable=True, depth=10)
LATCHED_QOS = qos(reliable=True, depth=1, transient_local=True)


def topics_under(prefix: str, names: Dict[str, str]) -> Dict[str, str]:
    """Topic per key, each name below a namespace prefix (`/camera`, `camera/`, `` alike)."""
    prefix = '/' + prefix.strip('/') if prefix.strip('/') else ''
    return {key: f'{prefix}/{name}' for key, name in names.items()}


#: a camera driver's colour stream, as make-bag writes it and --record-out copies it
CAMERA_TOPICS = {'image': 'image_raw', 'camera_info': 'camera_info'}


def msgtype_of(msg) -> str:
    """`pkg/msg/Type` of an rclpy or rosbags message."""
    name = getattr(msg, '__msgtype__', None)
    if name:
        return name
    module = type(msg).__module__.split('.')
    if len(module) >= 2 and module[1] == 'msg':
        return f'{module[0]}/msg/{type(msg).__name__}'
    raise TypeError(f'not a ROS message: {type(msg)!r}')


def serialize(msg) -> bytes:
    """CDR bytes of an rclpy message (rclpy's serializer) or a rosbags message (typestore)."""
    if getattr(msg, '__msgtype__', None):
        return bytes(typestore().serialize_cdr(msg, msg.__msgtype__))
    from rclpy.serialization import serialize_message
    return serialize_message(msg)


def deserialize(data: bytes, msgtype: str):
    """Deserialise CDR bytes into a rosbags message (numpy arrays for `uint8[]` fields)."""
    return typestore().deserialize_cdr(data, msgtype)


def restamp(data: bytes, msgtype: str, stamp_ns: int) -> bytes:
    """CDR bytes of the same message with another header stamp."""
    msg = deserialize(data, msgtype)
    stamp = typestore().types['builtin_interfaces/msg/Time'](*split_ns(stamp_ns))
    msg = dataclasses.replace(msg, header=dataclasses.replace(msg.header, stamp=stamp))
    return bytes(typestore().serialize_cdr(msg, msgtype))


@contextmanager
def atomic_output(target: Union[str, Path], overwrite: bool = False,
                  replace_if: Optional[str] = None) -> Iterator[Path]:
    """
    Yield a staging path next to `target`; move it into place only if the block succeeds.

    The staging path has the target's name (inside a hidden temporary folder in the same
    directory), so a rosbag2 written there names its storage files after the target. On any
    error nothing is left behind. An existing target is an error unless `overwrite`, or unless
    it is a directory containing `replace_if` (a previous report of ours).
    """
    target = Path(target)
    if target.exists():
        ours = replace_if is not None and target.is_dir() and (target / replace_if).exists()
        if not (overwrite or ours):
            raise CommandError(f'{target} exists already (pass --overwrite to replace it)')
    previous = ', the previous one is unchanged' if target.exists() else ''
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f'.{target.name}.', suffix='.tmp',
                                        dir=target.parent))
    except OSError as error:
        raise CommandError(f'cannot write {target}: {_os_reason(error)}{previous}') from None
    staging = scratch / target.name
    try:
        yield staging
        if not staging.exists():
            raise CommandError(f'nothing was written for {target}')
        old = scratch / (target.name + '.old')
        if target.exists():
            os.replace(target, old)
        try:
            os.replace(staging, target)
        except OSError:
            if old.exists():
                os.replace(old, target)
            raise
    except OSError as error:  # a full disk, a read-only folder, an image writer failing
        raise CommandError(f'writing {target} failed: {_os_reason(error)}; nothing was '
                           f'written{previous}') from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _os_reason(error: OSError) -> str:
    where = f' ({error.filename})' if error.filename else ''
    return f'{error.strerror or error}{where}'


class BagWriter:
    """A rosbag2 writer keyed by topic name; use inside :func:`atomic_output`."""

    def __init__(self, path: Union[str, Path], storage: str = 'sqlite3', version: int = 8,
                 custom_data: Optional[Dict[str, str]] = None):
        if storage not in STORAGES:
            raise CommandError(f'unknown storage {storage!r}; choose from sqlite3, mcap')
        self.path = Path(path)
        self._writer = Writer(self.path, version=version, storage_plugin=STORAGES[storage])
        for key, value in (custom_data or {}).items():
            self._writer.set_custom_data(key, str(value))
        self._connections: Dict[str, object] = {}
        self.counts: Dict[str, int] = {}

    def __enter__(self) -> 'BagWriter':
        self._writer.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._writer.close()
        else:
            self._writer.abort()

    def add_topic(self, topic: str, msgtype: str, offered_qos: Sequence[Qos] = (RELIABLE_QOS,)
                  ) -> None:
        if topic in self._connections:
            return
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=typestore(), offered_qos_profiles=list(offered_qos))
        self.counts[topic] = 0

    def write(self, topic: str, timestamp_ns: int, msg) -> None:
        """Write a message (rclpy or rosbags object, or CDR bytes) with bag time `timestamp_ns`."""
        data = msg if isinstance(msg, (bytes, bytearray, memoryview)) else serialize(msg)
        self._writer.write(self._connections[topic], int(timestamp_ns), bytes(data))
        self.counts[topic] += 1


class BagReader:
    """Open a rosbag2 directory (or a single .db3/.mcap file) with errors naming the bag/topic."""

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        if not self.path.exists():
            raise CommandError(f'bag {self.path} does not exist')
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
            raise CommandError(
                f'cannot open bag {self.path}: {error or type(error).__name__} {hint}') from None
        if self._reader.message_count == 0:
            self.close()
            raise CommandError(f'bag {self.path} contains no messages')

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

    def offered_qos(self, topic: str) -> List[Qos]:
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
            raise CommandError(f'{role} {topic} is not in bag {self.path}; it has: {listing}')
        msgtype, count = topics[topic]
        if msgtype not in allowed:
            raise CommandError(
                f'{role} {topic} in bag {self.path} has type {msgtype}, expected '
                f'{" or ".join(allowed)}')
        if count == 0:
            raise CommandError(f'{role} {topic} in bag {self.path} has no messages')
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
        except CommandError:
            raise
        except Exception as error:
            raise CommandError(
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
        raise CommandError(f'bag {self.path} has no message {ordinal} on {topic} at bag time '
                           f'{timestamp} ns any more; was it changed while in use?')

    def decode(self, topic: str, msgtype: str, timestamp: int, data: bytes):
        """Deserialise one message; a corrupt message becomes an error naming topic and time."""
        try:
            return deserialize(data, msgtype)
        except Exception as error:
            raise CommandError(
                f'corrupt message on {topic} at bag time {timestamp} ns in {self.path}: '
                f'{error or type(error).__name__}') from None


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
            raise CommandError(f'pose topic {topic} in bag {reader.path}: non-finite pose or '
                               f'zero quaternion at bag time {timestamp} ns')
        stamps.append(header_stamp_ns(msg))
        poses.append(quaternion_to_matrix((p.x, p.y, p.z), (q.x, q.y, q.z, q.w)))
    order = np.argsort(np.array(stamps, dtype=np.int64), kind='stable')
    return np.array(stamps, dtype=np.int64)[order], np.array(poses).reshape(-1, 4, 4)[order]
