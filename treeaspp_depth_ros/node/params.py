"""
Parameters of the depth node: one table with defaults, ranges and descriptions.

The table is the single source for the node's declarations (descriptors with ranges, so
``ros2 param describe`` explains each one), for validation at start and at run time, and for
``config/depth_node.yaml`` (a test keeps the YAML in sync with it). Parameters that need a
model reload or new topics are read-only after start; the rest can be changed live.
"""

from dataclasses import dataclass, fields
import re
from typing import Any, Dict, List, Optional, Tuple

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from ..backends import BACKENDS
from ..compute import PRECISIONS
from ..sizes import check_input_size

SCALE_SOURCES = ('checkpoint', 'camera_height')
_DEVICE_RE = re.compile(r'^(auto|cpu|cuda(:\d+)?)$')


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: default, description, optional numeric range, restart needed or not."""

    name: str
    default: Any
    description: str
    low: Optional[float] = None
    high: Optional[float] = None
    step: int = 0
    read_only: bool = False

    def descriptor(self) -> ParameterDescriptor:
        text = self.description
        if self.read_only:
            text += ' (read at start; restart the node to change it)'
        descriptor = ParameterDescriptor(description=text, read_only=self.read_only)
        if self.low is not None and isinstance(self.default, bool) is False:
            if isinstance(self.default, int):
                descriptor.integer_range = [IntegerRange(
                    from_value=int(self.low), to_value=int(self.high), step=self.step)]
            elif isinstance(self.default, float):
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(self.low), to_value=float(self.high), step=0.0)]
        return descriptor


PARAMETERS: Tuple[ParamSpec, ...] = (
    ParamSpec('weights', '', 'Checkpoint file (.pt) in treeaspp_depth_ros format, or an ONNX '
              'file from treeaspp-depth export; empty: the shipped default weights (tree_aspp '
              'learnt from a real 7-Scenes kitchen video and procedural rooms; non-commercial '
              'research use only). The network variant is read from it.', read_only=True),
    ParamSpec('variant', '', 'Expected network variant: baseline, aspp or tree_aspp; empty '
              'accepts whatever the checkpoint holds. A mismatch is an error at start.',
              read_only=True),
    ParamSpec('device', 'auto', 'Inference device: auto (GPU if present, else CPU), cpu, '
              'cuda or cuda:N. After a GPU failure at run time the node continues on the CPU.',
              read_only=True),
    ParamSpec('precision', 'fp32', 'Arithmetic on the GPU: fp32, fp16 or bf16 (autocast). '
              'The CPU always runs fp32.', read_only=True),
    ParamSpec('cpu_threads', 0, 'Threads PyTorch uses on the CPU; 0 keeps its default (one '
              'per core). Lower it when other busy processes share the cores: with every core '
              'contended, the PyTorch thread pool can slow inference several-fold.', 0, 256, 1,
              read_only=True),
    ParamSpec('backend', 'torch', 'Inference backend: torch, onnxruntime, openvino, '
              'tensorrt or auto (TensorRT on a GPU when installed, else torch on a GPU, else '
              'the fastest installed CPU backend). The ONNX backends export a checkpoint once '
              'to ~/.cache/treeaspp_depth_ros; a missing package is an error at start that '
              'names the install command.', read_only=True),
    ParamSpec('engine_rebuild', False, 'backend tensorrt: build the engine again even when a '
              'cached one matches (GPU, TensorRT version, input size and ONNX hash).',
              read_only=True),
    ParamSpec('input_width', 0, 'Network input width in pixels (multiple of 32); images '
              'are resized to it and depth is resized back to the image. 0 (with '
              'input_height 0) uses the size the checkpoint was trained at, else 320x256.',
              0, 2048, 32, read_only=True),
    ParamSpec('input_height', 0, 'Network input height in pixels (multiple of 32); 0 = the '
              "checkpoint's training size.", 0, 2048, 32, read_only=True),
    ParamSpec('depth_scale', 0.0, 'Metres per network depth unit. 0 uses the calibrated '
              'scale stored in the checkpoint, or 1.0 (depth up to scale, with a warning).',
              0.0, 1.0e6),
    ParamSpec('scale_source', 'checkpoint', 'Where the metric scale comes from: checkpoint '
              '(depth_scale, else the scale calibrated into the checkpoint) or camera_height '
              '(a running estimate from the floor plane seen in the depth and the '
              'camera_height parameter; for robots without a depth sensor).', read_only=True),
    ParamSpec('camera_height', 0.0, 'Height of the camera above the floor in metres (from '
              'the URDF); required by scale_source camera_height.', 0.0, 100.0,
              read_only=True),
    ParamSpec('camera_pitch_deg', 0.0, 'How far the camera looks down, in degrees (from the '
              'URDF); scale_source camera_height measures the floor along this down '
              'direction.', -90.0, 90.0, read_only=True),
    ParamSpec('floor_window', 30, 'scale_source camera_height: the scale is the median of '
              'the last this many frames that showed a floor, each counted by its floor '
              'inliers.', 1, 10000, 1, read_only=True),
    ParamSpec('publish_odometry', False, 'Run the pose network on (previous, current) '
              'frame and publish the chained camera motion on odom (nav_msgs/Odometry, '
              "metres with the depth's scale); one pose-network pass per frame while odom "
              'has a subscriber (or publish_odom_tf is on).', read_only=True),
    ParamSpec('odom_frame', 'odom', "header.frame_id of odom: the first camera pose's "
              "optical frame (x right, y down, z forward); child_frame_id is the image's "
              'frame.'),
    ParamSpec('publish_odom_tf', False, 'Also broadcast odom_frame -> image frame on /tf '
              '(needs tf2_ros, present on a ROS install; without it a warning and odom '
              'only). Only for a camera that is the root of its TF tree.', read_only=True),
    ParamSpec('odom_max_gap', 0.5, 'Seconds between two processed frames beyond which the '
              'pair is not measured (odometry reset: the pose holds, diagnostics count it).',
              0.01, 60.0),
    ParamSpec('odom_max_speed', 3.0, 'A measured motion faster than this (m/s) is taken as '
              'a failure and resets instead of moving the pose.', 0.01, 1000.0),
    ParamSpec('odom_max_angular_speed', 6.0, 'A measured rotation faster than this (rad/s) '
              'resets instead of turning the pose.', 0.01, 1000.0),
    ParamSpec('odom_relative_error', 0.2, 'Assumed error of each measured step, as a '
              'fraction of it, for the odom covariances (the pose network gives none; '
              'variances add up along the path).', 0.0, 10.0),
    ParamSpec('min_confidence', 0.0, 'Pixels whose geometric confidence (depth/confidence: '
              "agreement with the previous frame's depth warped by the measured motion) is "
              'below this become NaN in depth/image and points; 0 = off. Frames without a '
              'previous frame have confidence 0.', 0.0, 1.0),
    ParamSpec('min_depth', 0.1, 'Depth below this (metres) is published as NaN.', 0.0, 1000.0),
    ParamSpec('max_depth', 10.0, 'Depth above this (metres) is published as NaN.', 0.0, 1000.0),
    ParamSpec('use_compressed', False, 'Subscribe to <image>/compressed (jpeg/png '
              'sensor_msgs/CompressedImage) instead of the raw image topic.', read_only=True),
    ParamSpec('max_input_pixels', 16777216, 'Largest input frame (width * height) the node '
              'decodes; bigger ones are refused before decoding (compressed frames by the size '
              'in their PNG/JPEG header) and counted as too_large. The default, 4096x4096, is '
              'above 4K UHD and 12 MP cameras and bounds one decoded frame to 48 MB.',
              4096, 1 << 30, 1),
    ParamSpec('publish_points', True, 'Publish the organised point cloud on points (only '
              'computed while someone subscribes).'),
    ParamSpec('points_rgb', True, 'Point cloud with colour (PCL xyzrgb, 32-byte points) '
              'instead of xyz (16-byte points).'),
    ParamSpec('points_stride', 1, 'Keep every n-th row and column in the point cloud '
              '(1 = full resolution, organised).', 1, 16, 1),
    ParamSpec('publish_colored', True, 'Publish a colour-mapped depth image on '
              'depth/image_colored for RViz/rqt (only computed while someone subscribes).'),
    ParamSpec('fx', 0.0, 'Fallback focal length x (pixels, at the image resolution) used '
              'when no camera_info arrives; set fx, fy, cx, cy together or leave all at 0.',
              0.0, 1.0e5),
    ParamSpec('fy', 0.0, 'Fallback focal length y (pixels).', 0.0, 1.0e5),
    ParamSpec('cx', 0.0, 'Fallback principal point x (pixels).', 0.0, 1.0e5),
    ParamSpec('cy', 0.0, 'Fallback principal point y (pixels).', 0.0, 1.0e5),
    ParamSpec('horizontal_fov_deg', 60.0, 'Fallback horizontal field of view (degrees) when '
              'there is no camera_info and fx..cy are 0.', 1.0, 179.0),
    ParamSpec('camera_info_timeout', 1.0, 'Seconds to wait for camera_info after the first '
              'image before falling back to the intrinsics parameters (frames wait-skipped '
              'until then are counted); also how long camera_info may stop before the '
              'parameters are used until it returns (0: wait for none, never stale).',
              0.0, 60.0),
    ParamSpec('diagnostics_period', 1.0, 'Seconds between diagnostics messages.', 0.1, 60.0,
              read_only=True),
)

SPECS: Dict[str, ParamSpec] = {spec.name: spec for spec in PARAMETERS}


@dataclass(frozen=True)
class NodeConfig:
    """Typed snapshot of the parameters (replaced as a whole when a parameter changes)."""

    weights: str
    variant: str
    device: str
    precision: str
    cpu_threads: int
    backend: str
    engine_rebuild: bool
    input_width: int
    input_height: int
    depth_scale: float
    scale_source: str
    camera_height: float
    camera_pitch_deg: float
    floor_window: int
    publish_odometry: bool
    odom_frame: str
    publish_odom_tf: bool
    odom_max_gap: float
    odom_max_speed: float
    odom_max_angular_speed: float
    odom_relative_error: float
    min_confidence: float
    min_depth: float
    max_depth: float
    use_compressed: bool
    max_input_pixels: int
    publish_points: bool
    points_rgb: bool
    points_stride: int
    publish_colored: bool
    fx: float
    fy: float
    cx: float
    cy: float
    horizontal_fov_deg: float
    camera_info_timeout: float
    diagnostics_period: float

    @classmethod
    def from_values(cls, values: Dict[str, Any]) -> 'NodeConfig':
        return cls(**{f.name: values[f.name] for f in fields(cls)})

    @property
    def input_size(self) -> Optional[Tuple[int, int]]:
        """Return the requested network input size, or None for the training size."""
        if self.input_width == 0 and self.input_height == 0:
            return None
        return self.input_width, self.input_height

    @property
    def intrinsics_set(self) -> bool:
        return all(v > 0 for v in (self.fx, self.fy, self.cx, self.cy))


def defaults() -> Dict[str, Any]:
    """Parameter name -> default value."""
    return {spec.name: spec.default for spec in PARAMETERS}


def validate(values: Dict[str, Any]) -> List[str]:
    """
    Return the reasons why ``values`` (a full parameter set) is invalid; empty when valid.

    Why here and not only in descriptors: descriptors cannot express relations between
    parameters (min < max, intrinsics all-or-nothing) or choices of strings, and the same
    check must reject bad values at start and at run time with the same message.
    """
    errors = []
    for name, value in values.items():
        spec = SPECS.get(name)
        if spec is None:
            continue
        expected = type(spec.default)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            errors.append(f'{name} must be of type {expected.__name__}, got {value!r}')
            continue
        if spec.low is not None and not spec.low <= value <= spec.high:
            errors.append(f'{name} = {value} is outside [{spec.low:g}, {spec.high:g}]')
        elif spec.step and (value - int(spec.low)) % spec.step:
            errors.append(f'{name} = {value} must be a multiple of {spec.step}')
    if errors:
        return errors
    if values['variant']:
        from ..model import VARIANTS  # only here: reporting other errors needs no torch
        if values['variant'] not in VARIANTS:
            errors.append(f'variant must be empty or one of {", ".join(VARIANTS)}, got '
                          f'{values["variant"]!r}')
    if not _DEVICE_RE.match(values['device']):
        errors.append(f'device must be auto, cpu, cuda or cuda:N, got {values["device"]!r}')
    if values['precision'] not in PRECISIONS:
        errors.append(f'precision must be one of {", ".join(PRECISIONS)}, got '
                      f'{values["precision"]!r}')
    if values['backend'] not in BACKENDS:
        errors.append(f'backend must be one of {", ".join(BACKENDS)}, got '
                      f'{values["backend"]!r}')
    if values['scale_source'] not in SCALE_SOURCES:
        errors.append(f'scale_source must be one of {", ".join(SCALE_SOURCES)}, got '
                      f'{values["scale_source"]!r}')
    elif values['scale_source'] == 'camera_height':
        if not values['camera_height'] > 0:
            errors.append('scale_source camera_height needs camera_height > 0 (metres, the '
                          "camera's height above the floor)")
        if values['depth_scale'] > 0:
            errors.append('depth_scale and scale_source camera_height exclude each other: '
                          'set depth_scale to 0')
    if values['publish_odometry'] and not values['odom_frame'].strip():
        errors.append('odom_frame must not be empty with publish_odometry (the frame the '
                      'odometry is expressed in, e.g. odom)')
    if not values['min_depth'] < values['max_depth']:
        errors.append(f'min_depth ({values["min_depth"]}) must be smaller than max_depth '
                      f'({values["max_depth"]})')
    if (values['input_width'] == 0) != (values['input_height'] == 0):
        errors.append('input_width and input_height must be set together, or both left at 0 '
                      "(the checkpoint's training size)")
    elif values['input_width']:
        try:
            check_input_size((values['input_width'], values['input_height']))
        except ValueError as error:
            errors.append(f'input_width x input_height: {error}')
    intrinsics = [values[k] for k in ('fx', 'fy', 'cx', 'cy')]
    if any(v > 0 for v in intrinsics) and not all(v > 0 for v in intrinsics):
        errors.append('fx, fy, cx, cy must be set together (all > 0) or all left at 0')
    return errors
