"""
A rosbag2 recording (sqlite3 or mcap) as a sequence: images, intrinsics, poses, depth.

A robot's own recordings are the data self-supervised training adapts to best, so a bag is one
more layout: raw or compressed images on one topic, intrinsics from camera_info (or given),
camera poses from a recorded odometry or pose topic, and ground-truth depth when a depth
camera was recorded too. Only each frame's place in the bag is kept: frames are read again and
decoded on access, so a long recording is held neither as pixels nor as message bytes. Every
frame is decoded once while loading: undecodable frames are skipped and counted, and a bag
where most are bad is an error, before any training starts. Reading, pairing with depth and
decoding are :mod:`.rosbag`'s, as for the bag tools; it is imported only when a bag is read
(it needs rosbags and the ROS messages, which the other layouts do not).
"""

from dataclasses import dataclass, field
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .errors import DataError
from .intrinsics import parse_intrinsics
from .records import Dataset, Frame

#: the topics make-bag writes and most camera drivers publish
DEFAULT_IMAGE_TOPIC = '/camera/image_raw'
#: largest share of undecodable frames that is skipped rather than refused
MAX_BAD_FRACTION = 0.5


#: where a message lies in its bag: (bag time ns, index among the topic's messages at that time)
MessageRef = Tuple[int, int]


@dataclass
class BagSequence(Dataset):
    """
    Frames of one bag, read again from the bag and decoded on access.

    Only each frame's place in the bag is kept, so a long recording costs no memory; every
    process (DataLoader workers included) opens its own reader on first access.
    """

    image_type: str = ''
    image_topic: str = ''
    depth_topic: str = ''
    image_refs: List[MessageRef] = field(default_factory=list, repr=False)
    depth_refs: List[MessageRef] = field(default_factory=list, repr=False)
    _reader: Any = field(default=None, init=False, repr=False, compare=False)
    _reader_pid: int = field(default=0, init=False, repr=False, compare=False)

    def rgb(self, index: int) -> np.ndarray:
        """RGB image of frame `index` (HxWx3 uint8)."""
        from . import rosbag
        data = self._message(self.image_topic, self.image_refs[index])
        return rosbag.decode_rgb(rosbag.deserialize(data, self.image_type), self.image_type)

    def depth(self, index: int) -> Optional[np.ndarray]:
        """Ground-truth depth of frame `index` in metres (NaN = no measurement)."""
        frame = self.frames[index]
        if frame.depth_index is None:
            return None
        from . import rosbag
        from ..conversions.image import depth_image_msg_to_array
        data = self._message(self.depth_topic, self.depth_refs[frame.depth_index])
        depth = depth_image_msg_to_array(rosbag.deserialize(data, rosbag.IMAGE))
        depth = np.asarray(depth, dtype=np.float32).copy()
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
        return depth

    def _message(self, topic: str, ref: MessageRef) -> bytes:
        from .rosbag import BagReader
        if self._reader is None or self._reader_pid != os.getpid():
            # a reader (an sqlite3 connection, an open file) must not cross a fork
            self._reader, self._reader_pid = BagReader(self.root), os.getpid()
        return self._reader.message_at(topic, *ref)

    def close(self) -> None:
        """Close this process's reader of the bag (it reopens on the next access)."""
        if self._reader is not None and self._reader_pid == os.getpid():
            self._reader.close()
        self._reader = None

    def __getstate__(self) -> Dict[str, Any]:
        # for spawned DataLoader workers and DDP: the reader stays behind
        return dict(self.__dict__, _reader=None, _reader_pid=0)


def _intrinsics_text(intrinsics: Union[str, Sequence[float]]) -> str:
    if isinstance(intrinsics, (list, tuple)):
        return ','.join(str(v) for v in intrinsics)
    return str(intrinsics)


def load_bag(src: Path, image_topic: str = DEFAULT_IMAGE_TOPIC,
             camera_info_topic: Optional[str] = None,
             intrinsics: Optional[Union[str, Sequence[float]]] = None,
             pose_topic: Optional[str] = 'auto', depth_topic: Optional[str] = None,
             max_dt: float = 0.02, need_depth: bool = False) -> BagSequence:
    """
    Read one bag; frames are the decodable images in header-stamp order.

    `camera_info_topic` None looks for IMAGE_NS/camera_info; `intrinsics` (fx,fy,cx,cy or a
    file) replaces camera_info. `pose_topic` 'auto' uses the bag's one Odometry/PoseStamped
    topic when there is exactly one, None uses none; poses are interpolated to the image stamps
    and images outside the recorded trajectory are dropped (counted). With `depth_topic`, depth
    is paired by header stamp within `max_dt` seconds; `need_depth` (validation) keeps only the
    images that have a depth map.
    """
    from .rosbag import BagReader
    with BagReader(src) as reader:
        return _read(reader, image_topic, camera_info_topic, intrinsics, pose_topic,
                     depth_topic, max_dt, need_depth)


def _read(reader: Any, image_topic: str, camera_info_topic: Optional[str],
          intrinsics: Optional[Union[str, Sequence[float]]], pose_topic: Optional[str],
          depth_topic: Optional[str], max_dt: float, need_depth: bool) -> BagSequence:
    from . import rosbag
    from ..conversions.stamps import header_stamp_ns
    bag = reader.path
    image_type = reader.require_topic(image_topic, (rosbag.IMAGE, rosbag.COMPRESSED_IMAGE),
                                      'image topic (data.image_topic)')
    if intrinsics is None:
        if camera_info_topic:
            reader.require_topic(camera_info_topic, (rosbag.CAMERA_INFO,),
                                 'camera_info topic (data.camera_info_topic)')
        else:
            # image_transport publishes /ns/image_raw/compressed next to /ns/camera_info
            base = image_topic[:-len('/compressed')] if image_topic.endswith('/compressed') \
                else image_topic
            camera_info_topic = rosbag.find_camera_info_topic(reader, base)
            if camera_info_topic is None:
                raise DataError(
                    f'bag {bag}: no camera_info for {image_topic} (looked for '
                    f'{base.rsplit("/", 1)[0]}/camera_info); pass --data.intrinsics '
                    f'fx,fy,cx,cy or --data.camera_info_topic TOPIC')
    else:
        camera_info_topic = None
    pose_topic = _choose_pose_topic(reader, pose_topic)
    if depth_topic:
        reader.require_topic(depth_topic, (rosbag.IMAGE,), 'depth topic (val.depth_topic)')

    images: List[Tuple[int, MessageRef]] = []
    depths: List[Tuple[int, MessageRef]] = []
    info_msg = None
    check = _DecodeCheck(image_type, bag, image_topic)
    last: Dict[str, MessageRef] = {}
    topics = [image_topic] + [t for t in (camera_info_topic, depth_topic) if t]
    for topic, msgtype, timestamp, data in reader.messages(topics):
        if topic == camera_info_topic:
            if info_msg is None:
                info_msg = reader.decode(topic, msgtype, timestamp, data)
            continue
        before = last.get(topic)
        ref = (timestamp, before[1] + 1 if before and before[0] == timestamp else 0)
        last[topic] = ref
        msg = reader.decode(topic, msgtype, timestamp, data)
        stamp = header_stamp_ns(msg)
        if topic != image_topic:
            depths.append((stamp, ref))
        elif check.decodes(msg, stamp):
            images.append((stamp, ref))
    images.sort(key=lambda item: item[0])
    depths.sort(key=lambda item: item[0])
    width, height = check.size()
    if intrinsics is not None:
        K = parse_intrinsics(_intrinsics_text(intrinsics))
    else:
        K = _camera_info_K(info_msg, width, height, bag, camera_info_topic)
    info: Dict[str, str] = {'bag': str(bag), 'image_topic': image_topic,
                            'images': str(check.good + check.bad), 'undecodable': str(check.bad)}

    frames = [Frame(stamp_ns=stamp) for stamp, _ in images]
    refs = [ref for _, ref in images]
    if pose_topic:
        stamps, poses = rosbag.read_pose_track(reader, pose_topic)
        frame_poses = interpolate_poses(stamps, poses, [f.stamp_ns for f in frames], max_dt)
        inside = [i for i, pose in enumerate(frame_poses) if pose is not None]
        info.update(pose_topic=pose_topic, outside_trajectory=str(len(frames) - len(inside)))
        if not inside:
            raise DataError(f'bag {bag}: no image on {image_topic} lies within the trajectory '
                            f'recorded on {pose_topic} (header stamps)')
        for i in inside:
            frames[i].pose = frame_poses[i]
        frames, refs = [frames[i] for i in inside], [refs[i] for i in inside]
    depth_data: List[MessageRef] = []
    if depth_topic:
        pairs = rosbag.pair_with_depth([f.stamp_ns for f in frames], [s for s, _ in depths],
                                       max_dt)
        for i, j in pairs:
            frames[i].depth_index = len(depth_data)
            frames[i].depth_stamp_ns = depths[j][0]
            depth_data.append(depths[j][1])
        info.update(depth_topic=depth_topic, depth_pairs=str(len(pairs)))
        if need_depth:
            if not pairs:
                raise rosbag.no_depth_pair_error(bag, image_topic, depth_topic, max_dt)
            keep = [i for i, f in enumerate(frames) if f.depth_index is not None]
            frames, refs = [frames[i] for i in keep], [refs[i] for i in keep]
    return BagSequence(name='bag', root=Path(bag), K=K, width=width, height=height,
                       frames=frames, info=info, image_type=image_type,
                       image_topic=image_topic, depth_topic=depth_topic or '', image_refs=refs,
                       depth_refs=depth_data)


def _choose_pose_topic(reader: Any, pose_topic: Optional[str]) -> Optional[str]:
    from .rosbag import POSE_TYPES
    if not pose_topic or str(pose_topic).lower() in ('none', 'null'):
        return None
    if pose_topic != 'auto':
        reader.require_topic(pose_topic, POSE_TYPES, 'pose topic (data.pose_topic)')
        return pose_topic
    found = sorted(t for t, (msgtype, count) in reader.topics.items()
                   if msgtype in POSE_TYPES and count)
    return found[0] if len(found) == 1 else None


class _DecodeCheck:
    """Decode each image once while loading: count the bad ones, insist on one image size."""

    def __init__(self, msgtype: str, bag: Path, topic: str) -> None:
        self.msgtype, self.bag, self.topic = msgtype, bag, topic
        self.good = self.bad = 0
        self.first_error = ''
        self._size: Optional[Tuple[int, int]] = None

    def decodes(self, msg: Any, stamp: int) -> bool:
        from .rosbag import decode_rgb
        from ..conversions.image import ImageConversionError
        try:
            rgb = decode_rgb(msg, self.msgtype)
        except (ImageConversionError, ValueError) as error:
            self.bad += 1
            self.first_error = self.first_error or f'{error}'
            return False
        shape = (rgb.shape[1], rgb.shape[0])
        if self._size is None:
            self._size = shape
        elif shape != self._size:
            raise DataError(f'bag {self.bag}: image at stamp {stamp} ns on {self.topic} is '
                            f'{shape[0]}x{shape[1]}, earlier ones {self._size[0]}x'
                            f'{self._size[1]}; all frames must share one camera')
        self.good += 1
        return True

    def size(self) -> Tuple[int, int]:
        """Return the sequence's image size, or refuse a bag where most images are bad."""
        total = self.good + self.bad
        if not total or self.bad > MAX_BAD_FRACTION * total or self._size is None:
            raise DataError(f'bag {self.bag}: {self.bad} of {total} images on {self.topic} '
                            f'cannot be decoded (first: {self.first_error or "none"}); '
                            f'refusing to train on it')
        return self._size


def _camera_info_K(msg: Any, width: int, height: int, bag: Path, topic: str) -> np.ndarray:
    """K of the first camera_info, rescaled when it was calibrated at another image size."""
    from ..conversions.camera_info import camera_info_to_K, CameraInfoError, scale_camera_info
    if msg is None:
        raise DataError(f'bag {bag}: camera_info topic {topic} has no messages')
    try:
        if (int(msg.width), int(msg.height)) != (width, height):
            msg = scale_camera_info(msg, width, height)
        return camera_info_to_K(msg)
    except CameraInfoError as error:
        raise DataError(f'bag {bag}: {topic}: {error}; pass --data.intrinsics fx,fy,cx,cy') \
            from None


def interpolate_poses(stamps: np.ndarray, poses: np.ndarray, at: Sequence[int],
                      max_dt: float = 0.02) -> List[Optional[np.ndarray]]:
    """
    Camera-to-world pose at each stamp in `at` from a recorded trajectory (ns stamps).

    Translation is interpolated linearly and rotation along the geodesic (slerp) between the
    two recorded poses around each stamp, since odometry runs at other rates than the camera;
    stamps more than `max_dt` seconds outside the trajectory get None.
    """
    stamps = np.asarray(stamps, dtype=np.int64)
    poses = np.asarray(poses, dtype=np.float64)
    out: List[Optional[np.ndarray]] = []
    slack = int(max_dt * 1e9)
    for stamp in at:
        if not len(stamps) or stamp < stamps[0] - slack or stamp > stamps[-1] + slack:
            out.append(None)
            continue
        b = int(np.clip(np.searchsorted(stamps, stamp), 0, len(stamps) - 1))
        a = max(b - 1, 0)
        span = stamps[b] - stamps[a]
        w = 0.0 if span == 0 else float(np.clip((stamp - stamps[a]) / span, 0.0, 1.0))
        pose = np.eye(4)
        turn = cv2.Rodrigues(poses[a][:3, :3].T @ poses[b][:3, :3])[0]
        pose[:3, :3] = poses[a][:3, :3] @ cv2.Rodrigues(w * turn)[0]
        pose[:3, 3] = (1 - w) * poses[a][:3, 3] + w * poses[b][:3, 3]
        out.append(pose)
    return out
