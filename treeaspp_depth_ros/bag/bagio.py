"""
rosbag2 writing on `rosbags` for the bag tools, with atomic outputs and readable errors.

rosbags' CDR bytes equal `rclpy.serialization.serialize_message`, so messages built with rclpy
(as the conversions and the node do) are written as raw bytes, and read back either with
rosbags' typestore (numpy views, no ROS install needed) or rclpy. Reading is the data layer's
(:mod:`treeaspp_depth_ros.data.rosbag`, whose errors are DataError); its reader, type names
and typestore are named here too, so that a bag tool reads and writes through one module.
"""

from contextlib import contextmanager
import dataclasses
import os
from pathlib import Path
import shutil
import tempfile
from typing import Dict, Iterator, Optional, Sequence, Union

from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer

from treeaspp_depth_ros.cli import CommandError
from treeaspp_depth_ros.conversions.stamps import split_ns
from treeaspp_depth_ros.data.rosbag import (  # noqa: F401 - the bag tools' names for reading
    BagReader,
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    deserialize,
    IMAGE,
    ODOMETRY,
    POSE_STAMPED,
    POSE_TYPES,
    read_pose_track,
    typestore,
)

STORAGES = {'sqlite3': StoragePlugin.SQLITE3, 'mcap': StoragePlugin.MCAP}
POINTCLOUD2 = 'sensor_msgs/msg/PointCloud2'
TF_MESSAGE = 'tf2_msgs/msg/TFMessage'
CLOCK = 'rosgraph_msgs/msg/Clock'
_INFINITE = QosTime(9223372036, 854775807)   # RMW_DURATION_INFINITE as rosbag2 records it


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
        #: message bytes written per topic (what the bag's size is made of)
        self.sizes: Dict[str, int] = {}

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
        self.sizes[topic] = 0

    def write(self, topic: str, timestamp_ns: int, msg) -> None:
        """Write a message (rclpy or rosbags object, or CDR bytes) with bag time `timestamp_ns`."""
        data = msg if isinstance(msg, (bytes, bytearray, memoryview)) else serialize(msg)
        self._writer.write(self._connections[topic], int(timestamp_ns), bytes(data))
        self.counts[topic] += 1
        self.sizes[topic] += len(data)
