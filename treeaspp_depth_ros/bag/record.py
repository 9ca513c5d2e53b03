"""
`--record-out`: a SLAM-ready bag of the original camera stream plus the node's outputs.

Layout (PREFIX defaults to /camera), every message stamped with the input image's stamp and
written at that bag time, so `ros2 bag play` reproduces the original timing and exact-time
synchronisers (RTAB-Map `approx_sync:=false`) pair colour and depth:

- PREFIX/image_raw, PREFIX/camera_info: the original colour stream (bytes copied unchanged;
  a camera_info stamped differently from its image is restamped to it)
- PREFIX/depth/image (32FC1 metres, NaN invalid, registered to the colour image, same size)
- PREFIX/depth/camera_info, PREFIX/points (organised PointCloud2 in the optical frame)
- /tf_static: `camera_link` -> optical frame (REP 103/105 rotation), so tools that want a body
  frame (RTAB-Map `frame_id:=camera_link`, nvblox) have one.

An `orbslam3_rgbd.yaml` settings file (intrinsics from camera_info, `RGBD.DepthMapFactor: 1.0`
because the depth is in metres) is written into the bag folder as well.
"""

from pathlib import Path
from typing import Dict, Optional

import numpy as np

from treeaspp_depth_ros.bag import bagio
from treeaspp_depth_ros.conversions.stamps import header_stamp_ns, split_ns

BODY_FRAME = 'camera_link'
#: Rotation from the body frame (x forward, y left, z up) to the optical frame (x right, y
#: down, z forward) as (x, y, z, w), the same as realsense/openni drivers publish.
OPTICAL_ROTATION = (-0.5, 0.5, -0.5, 0.5)


def record_topics(prefix: str = '/camera') -> Dict[str, str]:
    """Topic per key: the camera stream and the node's outputs (its keys) under `prefix`."""
    topics = bagio.topics_under(prefix, dict(bagio.CAMERA_TOPICS, depth='depth/image',
                                             depth_camera_info='depth/camera_info',
                                             points='points'))
    return dict(topics, tf_static='/tf_static')


def _tf_static(child_frame: str, stamp_ns: int):
    ts = bagio.typestore()
    t = ts.types
    time = t['builtin_interfaces/msg/Time'](*split_ns(stamp_ns))
    transform = t['geometry_msgs/msg/TransformStamped'](
        header=t['std_msgs/msg/Header'](stamp=time, frame_id=BODY_FRAME),
        child_frame_id=child_frame,
        transform=t['geometry_msgs/msg/Transform'](
            translation=t['geometry_msgs/msg/Vector3'](x=0.0, y=0.0, z=0.0),
            rotation=t['geometry_msgs/msg/Quaternion'](*OPTICAL_ROTATION)))
    return t['tf2_msgs/msg/TFMessage'](transforms=[transform])


#: what dominates a --record-out bag, for --help: an xyzrgb cloud is 32 bytes a pixel
SIZE_HELP = ('about 12 MB per 640x480 frame, four fifths of it the xyzrgb point cloud '
             '(PointCloud2, 32 bytes a pixel); --record-no-points leaves it out (about 2 MB a '
             'frame: image, depth, camera_info)')
#: a size line every this many frames
SIZE_EVERY = 10


class OutputRecorder:
    """Writes the SLAM layout into an open :class:`bagio.BagWriter`, saying its size."""

    def __init__(self, writer: bagio.BagWriter, image_type: str = bagio.IMAGE,
                 prefix: str = '/camera', points: bool = True) -> None:
        self.writer = writer
        self.topics = record_topics(prefix)
        if not points:  # the node's cloud is most of the bag: `records('points')` is False
            del self.topics['points']
        self.frames = 0
        self._tf_written = False
        self.K: Optional[np.ndarray] = None
        self.size: Optional[tuple] = None
        reliable = [bagio.RELIABLE_QOS]
        writer.add_topic(self.topics['image'], image_type, reliable)
        writer.add_topic(self.topics['camera_info'], bagio.CAMERA_INFO, reliable)
        writer.add_topic(self.topics['depth'], bagio.IMAGE, reliable)
        writer.add_topic(self.topics['depth_camera_info'], bagio.CAMERA_INFO, reliable)
        if points:
            writer.add_topic(self.topics['points'], bagio.POINTCLOUD2, reliable)
        writer.add_topic(self.topics['tf_static'], bagio.TF_MESSAGE, [bagio.LATCHED_QOS])

    def add_odometry(self) -> None:
        """Record the node's ``odom`` (visual odometry) too, as PREFIX/odom."""
        self.topics['odom'] = self.topics['image'].rsplit('/', 1)[0] + '/odom'
        self.writer.add_topic(self.topics['odom'], bagio.ODOMETRY, [bagio.RELIABLE_QOS])

    def records(self, key: str) -> bool:
        """Whether the layout has a topic for this node output key."""
        return key in self.topics

    def write_input(self, stamp_ns: int, image_raw: bytes, camera_info_raw: Optional[bytes],
                    frame_id: str) -> None:
        """
        Write the original colour image and its camera_info.

        The camera_info is restamped to the image when their stamps differ, so exact-time
        synchronisers pair them; otherwise both are the recorded bytes.
        """
        if not self._tf_written:
            self.writer.write(self.topics['tf_static'], stamp_ns, _tf_static(frame_id, stamp_ns))
            self._tf_written = True
        self.writer.write(self.topics['image'], stamp_ns, image_raw)
        if camera_info_raw is not None:
            info = bagio.deserialize(camera_info_raw, bagio.CAMERA_INFO)
            if header_stamp_ns(info) != stamp_ns:
                camera_info_raw = bagio.restamp(camera_info_raw, bagio.CAMERA_INFO, stamp_ns)
            self.writer.write(self.topics['camera_info'], stamp_ns, camera_info_raw)
        self.frames += 1
        if self.frames % SIZE_EVERY == 0:
            print(f'[record-out] {self.size_text()}', flush=True)

    def size_text(self) -> str:
        """Frames and megabytes written so far, and the point clouds' share of them."""
        total = sum(self.writer.sizes.values())
        text = f'{self.frames} frames, {total / 1e6:.1f} MB so far'
        points = self.writer.sizes.get(self.topics.get('points', ''), 0)
        if points:
            text += (f' ({points / max(total, 1):.0%} point clouds; --record-no-points drops '
                     'them)')
        return text

    def write_output(self, key: str, stamp_ns: int, msg) -> None:
        """Write a node output (`depth`, `depth_camera_info`, `points`), message or CDR bytes."""
        self.writer.write(self.topics[key], stamp_ns, msg)

    def note_camera(self, K: np.ndarray, width: int, height: int) -> None:
        if self.K is None:
            self.K = np.asarray(K, dtype=np.float64)
            self.size = (int(width), int(height))


def bag_size_mb(folder: Path) -> float:
    """Megabytes a written bag folder takes on disk (its storage files and metadata)."""
    return sum(f.stat().st_size for f in Path(folder).rglob('*') if f.is_file()) / 1e6


def orbslam3_settings(K: np.ndarray, width: int, height: int, fps: float) -> str:
    """ORB-SLAM3 (settings format 1.0) RGB-D file for a rectified pinhole camera, depth in m."""
    return '\n'.join([
        '%YAML:1.0',
        '# Written by treeaspp-depth bag-eval --record-out. Depth is 32FC1 in metres, hence',
        '# RGBD.DepthMapFactor 1.0. Images are rgb8, hence Camera.RGB 1.',
        'File.version: "1.0"',
        'Camera.type: "PinHole"',
        f'Camera1.fx: {K[0, 0]:.6f}',
        f'Camera1.fy: {K[1, 1]:.6f}',
        f'Camera1.cx: {K[0, 2]:.6f}',
        f'Camera1.cy: {K[1, 2]:.6f}',
        'Camera1.k1: 0.0', 'Camera1.k2: 0.0', 'Camera1.p1: 0.0', 'Camera1.p2: 0.0',
        f'Camera.width: {int(width)}',
        f'Camera.height: {int(height)}',
        f'Camera.fps: {int(round(fps)) or 30}',
        'Camera.RGB: 1',
        '# Virtual baseline (m) and close/far threshold (x baseline) required by RGB-D mode.',
        'Stereo.b: 0.0745',
        'Stereo.ThDepth: 40.0',
        'RGBD.DepthMapFactor: 1.0',
        'ORBextractor.nFeatures: 1000',
        'ORBextractor.scaleFactor: 1.2',
        'ORBextractor.nLevels: 8',
        'ORBextractor.iniThFAST: 20',
        'ORBextractor.minThFAST: 7',
        'Viewer.KeyFrameSize: 0.05',
        'Viewer.KeyFrameLineWidth: 1.0',
        'Viewer.GraphLineWidth: 0.9',
        'Viewer.PointSize: 2.0',
        'Viewer.CameraSize: 0.08',
        'Viewer.CameraLineWidth: 3.0',
        'Viewer.ViewpointX: 0.0',
        'Viewer.ViewpointY: -0.7',
        'Viewer.ViewpointZ: -1.8',
        'Viewer.ViewpointF: 500.0',
        '',
    ])


def write_orbslam3_settings(folder: Path, recorder: OutputRecorder, fps: float) -> Optional[Path]:
    if recorder.K is None:
        return None
    path = Path(folder) / 'orbslam3_rgbd.yaml'
    path.write_text(orbslam3_settings(recorder.K, recorder.size[0], recorder.size[1], fps))
    return path
