"""
ROS 2 depth node: camera image in; depth image, camera_info, point cloud and diagnostics out.

Topics (all relative, so namespaces and remapping work; one node per camera):

- subscribes ``image`` (sensor_msgs/Image) or ``<image>/compressed`` (CompressedImage), and
  ``camera_info``;
- publishes ``depth/image`` (32FC1 metres, NaN invalid, REP 118), ``depth/camera_info``,
  ``points`` (organised PointCloud2, PCL layout), ``depth/image_colored`` (rgb8) and
  ``diagnostics``, all with the input image's stamp and frame_id and at its resolution.

The subscription callback only stores the newest message; a worker thread converts, infers
and publishes, so the node never falls behind the camera (older frames are counted as drops).
What is published for a frame is decided in :mod:`.outputs`, the diagnostics in :mod:`.runtime`
and the process around the node in :mod:`.runner`; this module is the rclpy wiring.
``main`` runs the plain node, ``lifecycle_main`` the managed variant (configure loads the
model, activate starts publishing).
"""

import os
import re
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

import cv2
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
import numpy as np
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from . import params, qos, runner
from .outputs import CAMERA_INFO, IntrinsicsResolver, INVALID, OutputBuilder, SCALED
from .runner import StartupError
from .runtime import camera_info_problem, diagnostic_status, FrameStats, NewestFrameSlot
from ..conversions.image import compressed_msg_to_rgb, image_msg_to_rgb, ImageConversionError
from ..conversions.stamps import stamp_to_ns

NODE_NAME = 'depth_node'
_THROTTLE_S = 5.0
#: test-only fault injection: fail the N-th inference with a simulated CUDA out-of-memory
#: error, so that the GPU-failure fallback can be exercised on a machine without a GPU
GPU_FAULT_ENV = 'TREEASPP_DEPTH_TEST_GPU_FAULT'
#: how long a process that is exiting waits for a frame in inference (it is abandoned)
_EXIT_WAIT_S = 0.2


class DepthNodeCore:
    """Everything the plain and the lifecycle node share (mixed into a rclpy Node class)."""

    def _init_core(self, lifecycle: bool) -> None:
        self._lifecycle = lifecycle
        self._active = False
        self._estimator = None  # inference.DepthEstimator once configured
        self._scaled_for: Optional[params.NodeConfig] = None  # the set the scale was chosen for
        self._floor = None  # floor.RunningFloorScale with scale_source camera_height
        self._motion = None  # motion.VisualOdometry when the weights hold a pose network
        self._motion_note = ''  # why there is no odometry/confidence, for diagnostics
        self._tf = None  # tf2_ros.TransformBroadcaster with publish_odom_tf, where installed
        self._entities: List[Any] = []
        self._worker: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._slot = NewestFrameSlot()
        self.stats = FrameStats()
        self._intrinsics = IntrinsicsResolver()
        self._outputs = OutputBuilder()
        self._device_note = ''
        self._logged: Dict[str, float] = {}
        self._last_stamp_ns = -1  # newest input stamp seen, to count stamps going backwards
        self._inferences = 0
        self._gpu_fault_at = int(os.environ.get(GPU_FAULT_ENV, '0') or 0)
        self._declare_parameters()
        self._config = self._read_config()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)

    # ---------------------------------------------------------------- parameters

    def _declare_parameters(self) -> None:
        for spec in params.PARAMETERS:
            try:
                self.declare_parameter(spec.name, spec.default, spec.descriptor())
            except Exception as error:  # noqa: B902 - rclpy raises several types here
                raise StartupError(f'invalid parameter {spec.name}: {error}') from None

    def _read_config(self) -> params.NodeConfig:
        values = {spec.name: self.get_parameter(spec.name).value for spec in params.PARAMETERS}
        return params.NodeConfig.from_values(values)

    def _on_set_parameters(self, changed: Sequence[rclpy.Parameter]) -> SetParametersResult:
        values = {spec.name: self.get_parameter(spec.name).value for spec in params.PARAMETERS}
        values.update({p.name: p.value for p in changed if p.name in params.SPECS})
        errors = params.validate(values)
        if values['min_confidence'] > 0 and self._estimator is not None and \
                self._motion is None:
            errors.append(f'min_confidence needs a pose network: {self._motion_note}')
        if errors:
            return SetParametersResult(successful=False, reason='; '.join(errors))
        return SetParametersResult(successful=True)

    def _after_set_parameters(self, changed: Sequence[rclpy.Parameter]) -> None:
        # one assignment: the worker takes the whole set for a frame (depth_scale included,
        # applied by the worker itself), so no frame mixes two parameter sets
        self._config = self._read_config()

    def _apply_parameter_set(self, config: params.NodeConfig) -> None:
        """Apply a parameter set's scale and odometry limits (once per set, in the worker)."""
        # with the floor, raw network depth: _floor_metric scales every frame
        self._estimator.use_depth_scale(config.depth_scale if config.depth_scale > 0 else None,
                                        raw=self._floor is not None)
        if self._motion is not None:
            self._motion.max_gap_s, self._motion.max_speed = config.odom_max_gap, \
                config.odom_max_speed
            self._motion.max_angular_speed = config.odom_max_angular_speed
            self._motion.relative_error = config.odom_relative_error
        self._scaled_for = config

    # ---------------------------------------------------------------- bring-up

    def _configure(self) -> None:
        """Validate parameters, load the model, create topics and start the worker."""
        config = self._config = self._read_config()
        errors = params.validate({name: getattr(config, name) for name in params.SPECS})
        if errors:
            raise StartupError('invalid parameters: ' + '; '.join(errors))
        self._load_model(config)
        self._create_topics(config)
        # a fresh stop flag and slot per worker: a previous worker still finishing a frame
        # after a lifecycle cleanup can never pick up the new one's frames
        self._stop, self._slot = threading.Event(), NewestFrameSlot()
        self._worker = threading.Thread(target=self._work, args=(self._stop, self._slot),
                                        name='depth_worker', daemon=True)
        self._worker.start()

    def _load_model(self, config: params.NodeConfig) -> None:
        # imported here so that parameter errors are reported without waiting for torch
        import torch
        from ..checkpoint import CheckpointError
        from ..inference import DepthEstimator
        if config.cpu_threads > 0:
            torch.set_num_threads(config.cpu_threads)
        from ..weights import MissingWeightsError, resolve_weights, weights_origin
        try:
            weights = resolve_weights(config.weights)
        except MissingWeightsError as error:
            raise StartupError(str(error)) from None
        try:
            estimator = DepthEstimator(
                weights, device=config.device,
                input_size=config.input_size,
                precision=config.precision,
                depth_scale=config.depth_scale if config.depth_scale > 0 else None,
                backend=config.backend, cpu_threads=config.cpu_threads or None,
                engine_rebuild=config.engine_rebuild)
        except (CheckpointError, ValueError, RuntimeError, OSError, ImportError) as error:
            raise StartupError(f'cannot load weights {str(weights)!r}: {error}') from None
        if config.variant and estimator.variant != config.variant:
            raise StartupError(
                f'wrong variant: {weights} holds a {estimator.variant!r} network but '
                f'parameter variant is {config.variant!r}')
        self._estimator = estimator
        self._floor = None
        if config.scale_source == 'camera_height':
            from ..floor import down_direction, RunningFloorScale
            self._floor = RunningFloorScale(config.camera_height, config.floor_window,
                                            down_direction(config.camera_pitch_deg))
        self._motion = self._make_motion(config, estimator, weights)
        self._cpu_threads = torch.get_num_threads()
        self._apply_parameter_set(config)
        log = self.get_logger()
        precision = config.precision if estimator.device.type == 'cuda' else 'fp32'
        self._weights_origin = weights_origin(estimator.checkpoint, weights)
        log.info(f'loaded {estimator.variant} network from {weights} on '
                 f'{estimator.device} ({precision}, input {estimator.input_size_text}, '
                 f'{torch.get_num_threads()} CPU threads, backend '
                 f'{estimator.describe_backend()})')
        log.info(f'weights trained on: {self._weights_origin["trained_on"]}; licence: '
                 f'{self._weights_origin["licence"]}')
        if self._floor is not None:
            log.info(f'metric scale from the floor: camera {config.camera_height:g} m above '
                     f'it, looking {config.camera_pitch_deg:g} deg down; depth is published '
                     'once a floor has been seen')
        elif estimator.scale_synthetic:
            log.warning(f'depth_scale {estimator.depth_scale:g} was {estimator.scale_origin}: '
                        'not metric for a real camera; run `treeaspp-depth calibrate-scale` on '
                        'a recording of this camera or set depth_scale')
        elif not estimator.scale_is_metric:
            log.warning('no calibrated depth scale (checkpoint has none and depth_scale is 0): '
                        'depth is published with scale 1.0 and is only correct up to scale; '
                        'run `treeaspp-depth calibrate-scale` or set depth_scale')

    def _make_motion(self, config: params.NodeConfig, estimator: Any, weights: Any) -> Any:
        """Load the pose network (odometry, confidence) when the weights hold one."""
        from ..checkpoint import CheckpointError, load_pose_net
        from ..motion import VisualOdometry
        try:
            pose_net = load_pose_net(estimator.checkpoint)
        except CheckpointError as error:
            self._motion_note = f'{weights} has no pose network ({error})'
            if config.publish_odometry or config.min_confidence > 0:
                raise StartupError(
                    f'publish_odometry and min_confidence need a pose network, but '
                    f'{self._motion_note}: use a training checkpoint (best.pth) or the shipped '
                    'default weights') from None
            return None
        self._motion_note = ''
        return VisualOdometry(pose_net, estimator.device, config.odom_max_gap,
                              config.odom_max_speed, config.odom_max_angular_speed,
                              config.odom_relative_error)

    def _create_topics(self, config: params.NodeConfig) -> None:
        make_pub = self.create_lifecycle_publisher if self._lifecycle else self.create_publisher
        options = qos.overrides()
        #: OutputBuilder's keys -> publishers
        self._output_pubs = {
            key: make_pub(msg_type, topic, profile, qos_overriding_options=options)
            for key, (msg_type, topic, profile) in {
                'depth': (Image, 'depth/image', qos.output_qos()),
                'depth_camera_info': (CameraInfo, 'depth/camera_info', qos.output_qos()),
                'depth_colored': (Image, 'depth/image_colored', qos.output_qos()),
                'points': (PointCloud2, 'points', qos.points_qos()),
                'confidence': (Image, 'depth/confidence', qos.output_qos()),
                **({'odom': (Odometry, 'odom', qos.output_qos())}
                   if config.publish_odometry else {}),
            }.items()}
        self._tf = None
        if config.publish_odom_tf:
            self._tf = self._make_tf_broadcaster()
        self._diag_pub = make_pub(DiagnosticArray, 'diagnostics', qos.output_qos(),
                                  qos_overriding_options=options)
        if config.use_compressed:
            self._image_topic = self.resolve_topic_name('image') + '/compressed'
            image_sub = self.create_subscription(
                CompressedImage, self._image_topic, self._on_compressed, qos.input_qos(),
                qos_overriding_options=options)
        else:
            self._image_topic = self.resolve_topic_name('image')
            image_sub = self.create_subscription(
                Image, 'image', self._on_image, qos.input_qos(), qos_overriding_options=options)
        info_sub = self.create_subscription(CameraInfo, 'camera_info', self._on_camera_info,
                                            qos.input_qos(), qos_overriding_options=options)
        self._intrinsics.camera_info_topic = self.resolve_topic_name('camera_info')
        timer = self.create_timer(config.diagnostics_period, self._publish_diagnostics)
        self._entities = [image_sub, info_sub, timer, *self._output_pubs.values(),
                          self._diag_pub]
        self.get_logger().info(
            f'listening on {self._image_topic} and {self.resolve_topic_name("camera_info")}; '
            f'publishing {self.resolve_topic_name("depth/image")}, '
            f'{self.resolve_topic_name("points")}')
        if config.publish_odometry:
            self.get_logger().info(
                f'visual odometry on {self.resolve_topic_name("odom")} in frame '
                f'{config.odom_frame!r} (the first camera pose; one pose-network pass per frame '
                'while it has a subscriber)')

    def _make_tf_broadcaster(self) -> Any:
        """Make a TF broadcaster where tf2_ros is installed (ROS); else warn and return None."""
        try:
            from tf2_ros import TransformBroadcaster
        except ImportError:
            self.get_logger().warning(
                'publish_odom_tf: tf2_ros is not installed here, so no odom -> camera transform '
                'is broadcast; odom is still published (install ros-<distro>-tf2-ros)')
            return None
        return TransformBroadcaster(self)

    def _teardown(self, wait_s: float = 1.5) -> None:
        """Stop the worker (waiting ``wait_s`` at most) and destroy topics; release the model."""
        self._active = False
        self._stop.set()
        self._slot.close()
        if self._worker is not None:
            self._worker.join(timeout=wait_s)
            self._worker = None
        for entity in self._entities:
            if isinstance(entity, Timer):
                self.destroy_timer(entity)
            elif isinstance(entity, Subscription):
                self.destroy_subscription(entity)
            elif self._lifecycle:
                self.destroy_lifecycle_publisher(entity)
            else:
                self.destroy_publisher(entity)
        self._entities = []
        self._estimator = None
        self._motion = None
        self._tf = None
        self._intrinsics.reset()

    # ---------------------------------------------------------------- callbacks (executor)

    def _on_image(self, msg: Image) -> None:
        self._enqueue(msg, False)

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._enqueue(msg, True)

    def _enqueue(self, msg: Any, compressed: bool) -> None:
        if not self._active:
            return
        self.stats.count('received')
        stamp_ns = stamp_to_ns(msg.header.stamp)
        if stamp_ns < self._last_stamp_ns:
            self.stats.problem('stamp_backwards')  # served: a looped bag, a clock reset
        self._last_stamp_ns = stamp_ns
        if not msg.header.frame_id:
            self.stats.problem('empty_frame_id')  # served, but TF cannot place the outputs
        if self._slot.put((msg, compressed, time.monotonic())):
            self.stats.count('dropped')

    def _on_camera_info(self, msg: CameraInfo) -> None:
        problem = camera_info_problem(msg)
        if problem:
            self.stats.problem(problem)  # the resolver falls back to the parameters for it
        self._intrinsics.camera_info_at = time.monotonic()  # first: never newer than the info
        self._intrinsics.camera_info = msg

    # ---------------------------------------------------------------- worker thread

    def _work(self, stop: threading.Event, slot: NewestFrameSlot) -> None:
        while not stop.is_set():
            item = slot.take(timeout=0.2)
            if item is None or stop.is_set():
                continue
            try:
                self._process(*item)
            except Exception as error:  # noqa: B902 - a bad frame must not kill the node
                if stop.is_set() or not rclpy.ok(context=self.context):
                    return
                self.stats.count('errors', f'{type(error).__name__}: {error}')
                self._error_throttled(f'frame failed: {type(error).__name__}: {error}')

    def _error_throttled(self, text: str) -> None:
        """
        Log an error at most every few seconds per kind of problem (numbers ignored).

        rclpy's throttling is per call site, which would hide a second, different problem.
        """
        kind = re.sub(r'\d+', '#', text)
        now = time.monotonic()
        if now - self._logged.get(kind, -_THROTTLE_S) >= _THROTTLE_S:
            self._logged[kind] = now
            self.get_logger().error(text)

    def _process(self, msg: Any, compressed: bool, received: float) -> None:
        taken = time.monotonic()
        config = self._config  # this frame's parameter set, all of it
        if config is not self._scaled_for:
            self._apply_parameter_set(config)
        try:
            rgb = (compressed_msg_to_rgb if compressed else image_msg_to_rgb)(
                msg, config.max_input_pixels)
        except ImageConversionError as error:
            self.stats.count('invalid', f'invalid image: {error}', error.kind)
            self._error_throttled(f'skipping frame from {self._image_topic}: {error}')
            return
        height, width = rgb.shape[:2]
        intrinsics = self._intrinsics.resolve(msg.header, width, height, config,
                                              time.monotonic())
        if intrinsics is None:
            self.stats.count('waiting_camera_info')
            return
        if intrinsics.changed and intrinsics.note:
            self._log_intrinsics(intrinsics.source, intrinsics.note)
        if intrinsics.source == SCALED:
            self.stats.problem('camera_info_other_resolution')
        started = time.monotonic()
        prediction = self._infer(rgb)
        depth = prediction.depth
        inference_s = time.monotonic() - started
        scale = self._estimator.depth_scale
        if self._floor is not None:
            depth = self._floor_metric(depth, intrinsics.K)
            if depth is None:
                self.stats.count('waiting_floor')
                return
            scale = self._floor.scale
        publishers = self._output_pubs

        def wanted(name: str) -> bool:
            return name in publishers and publishers[name].get_subscription_count() > 0
        confidence = None
        if self._motion is not None:
            confidence = self._measure_motion(prediction, msg.header, intrinsics.K, scale,
                                              config, wanted)
        for key, out in self._outputs.messages(depth, rgb, intrinsics, config, wanted=wanted,
                                               confidence=confidence):
            if not self._active:
                return
            publishers[key].publish(out)
        latency_s = (self.get_clock().now().nanoseconds - stamp_to_ns(msg.header.stamp)) * 1e-9
        done = time.monotonic()
        self.stats.frame_done(latency_s, done - received, inference_s, done - taken)

    def _measure_motion(self, prediction: Any, header: Any, K: np.ndarray, scale: float,
                        config: params.NodeConfig, wanted: Any) -> Optional[np.ndarray]:
        """
        Pair the frame with the previous one: publish odom, return the confidence if wanted.

        The confidence map has the image's size; a frame without a measured pair (the first,
        a reset) gets 0 everywhere: no evidence either way.
        """
        from ..motion import MotionFrame
        height, width = prediction.depth.shape
        want_pose = config.publish_odometry and (wanted('odom') or self._tf is not None)
        want_confidence = wanted('confidence') or config.min_confidence > 0
        result = self._motion.step(
            MotionFrame(prediction.network_input, prediction.network_depth,
                        stamp_to_ns(header.stamp), (width, height), K),
            scale, want_pose, want_confidence)
        if want_pose:
            self._publish_odometry(result, header, config)
        if not want_confidence:
            return None
        if result.confidence is None:
            return np.zeros((height, width), np.float32)
        return cv2.resize(result.confidence, (width, height), interpolation=cv2.INTER_LINEAR)

    def _publish_odometry(self, result: Any, header: Any, config: params.NodeConfig) -> None:
        from ..conversions.stamps import make_header
        from ..motion import twist
        from .outputs import odometry_message
        motion = self._motion
        measured = result.relative is not None
        velocity = twist(result.relative, result.dt) if measured else None
        rate_variance = motion.step_variance(result.relative) / result.dt ** 2 \
            if measured else None
        odom_header = make_header(stamp_to_ns(header.stamp), config.odom_frame)
        msg = odometry_message(motion.pose, motion.pose_variance, odom_header,
                               header.frame_id, velocity, rate_variance)
        self._output_pubs['odom'].publish(msg)
        if self._tf is not None:
            from geometry_msgs.msg import TransformStamped
            transform = TransformStamped()
            transform.header, transform.child_frame_id = odom_header, header.frame_id
            position = msg.pose.pose.position
            transform.transform.translation.x = position.x
            transform.transform.translation.y = position.y
            transform.transform.translation.z = position.z
            transform.transform.rotation = msg.pose.pose.orientation
            self._tf.sendTransform(transform)

    def _infer(self, rgb: np.ndarray) -> Any:
        """Predict depth; on a GPU failure (out of memory, device lost) continue on the CPU."""
        estimator = self._estimator
        self._inferences += 1
        injected = self._inferences == self._gpu_fault_at
        try:
            if injected:
                import torch
                raise torch.cuda.OutOfMemoryError(
                    f'CUDA out of memory (simulated by {GPU_FAULT_ENV}={self._gpu_fault_at})')
            return estimator.predict_frame(rgb)
        except Exception as error:  # noqa: B902 - OOM, lost device, driver errors alike
            if estimator.device.type != 'cuda' and not injected:
                raise
            reason = f'{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}'
            self.get_logger().error(f'GPU inference failed ({reason}); continuing on the CPU')
            self.stats.count('gpu_fallbacks', f'GPU failure, now on CPU: {reason}')
            self._device_note = f' (fell back from cuda: {reason})'
            estimator.fall_back_to_cpu()
            if self._motion is not None:
                self._motion.to(estimator.device)
            return estimator.predict_frame(rgb)

    def _floor_metric(self, raw: np.ndarray, K: np.ndarray) -> Optional[np.ndarray]:
        """Metres from the running floor estimate (this frame updates it if it shows a floor)."""
        self._floor.update(raw, K)
        scale = self._floor.scale
        return None if scale is None else raw * np.float32(scale)

    def _log_intrinsics(self, source: str, note: str) -> None:
        log = self.get_logger()
        if source == INVALID:
            log.error(note, throttle_duration_sec=_THROTTLE_S)
        elif source != CAMERA_INFO:
            log.warning(note, throttle_duration_sec=60.0)

    # ---------------------------------------------------------------- diagnostics

    def _publish_diagnostics(self) -> None:
        if not self._active or self._estimator is None:
            return
        estimator, config = self._estimator, self._config
        details = {
            'device': f'{estimator.device}{self._device_note}',
            'precision': config.precision if estimator.device.type == 'cuda' else 'fp32',
            'variant': estimator.variant,
            'backend': estimator.describe_backend(),
            'input_size': '{}x{}'.format(*estimator.input_size),
            'input_size_source': estimator.input_size_source,
            'cpu_threads': self._cpu_threads,
            'depth_scale': f'{estimator.depth_scale:g}',
            'scale_is_metric': str(estimator.scale_is_metric).lower(),
            'scale_origin': estimator.scale_origin,
            **self._weights_origin,
        }
        details.update(self._motion_details(config))
        floor = self._floor
        if floor is not None:
            scale, spread = floor.scale, floor.spread
            details.update(
                scale_source='camera_height', scale_origin='the floor and camera_height',
                depth_scale='unknown (no floor seen yet)' if scale is None else f'{scale:g}',
                scale_is_metric=str(scale is not None).lower(),
                floor_frames=floor.frames_with_floor,
                frames_without_floor=floor.frames_without_floor,
                floor_scale_cv='' if spread is None else f'{spread:.4f}')
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [diagnostic_status(
            f'{self.get_fully_qualified_name()}: depth', str(estimator.device),
            self.stats.snapshot(), self._image_topic, details)]
        self._diag_pub.publish(array)

    def _motion_details(self, config: params.NodeConfig) -> Dict[str, Any]:
        """Say what the pose network does and costs (odometry, confidence) for diagnostics."""
        motion = self._motion
        if motion is None:
            return {'pose_network': f'none: {self._motion_note}'}
        resets = dict(motion.resets)  # one copy: the worker may add a reason meanwhile
        details = {
            'pose_network': 'loaded',
            'odometry': 'on' if config.publish_odometry else 'off',
            'pose_pairs': motion.pairs,
            'pose_ms_mean': f'{1000 * motion.pose_seconds / motion.pairs:.1f}'
            if motion.pairs else '',
            'odom_resets': sum(count for reason, count in resets.items()
                               if reason != 'first_frame'),
            'min_confidence': f'{config.min_confidence:g}',
        }
        details.update({f'odom_resets_{reason}': count
                        for reason, count in sorted(resets.items())})
        if config.publish_odometry:
            x, y, z = motion.pose[:3, 3]
            details['odom_position_m'] = f'{x:.3f} {y:.3f} {z:.3f}'
        return details


class DepthNode(DepthNodeCore, Node):
    """The plain node: loads the model and starts publishing in its constructor."""

    def __init__(self, **kwargs: Any) -> None:
        Node.__init__(self, NODE_NAME, **kwargs)
        self._init_core(lifecycle=False)
        self._configure()
        self._active = True

    def shutdown(self) -> None:
        """Release everything before the process exits; a frame in inference is abandoned."""
        self._teardown(wait_s=_EXIT_WAIT_S)


class DepthLifecycleNode(DepthNodeCore, LifecycleNode):
    """Managed variant: configure loads the model, activate starts publishing."""

    def __init__(self, **kwargs: Any) -> None:
        LifecycleNode.__init__(self, NODE_NAME, **kwargs)
        self._init_core(lifecycle=True)
        # else the log ends at the Fast DDS line and a user cannot tell it waits for them
        self.get_logger().info(
            f'unconfigured, waiting for configure (ros2 lifecycle set '
            f'{self.get_fully_qualified_name()} configure; the model is loaded then)')

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except StartupError as error:
            self.get_logger().error(f'configure failed: {error}')
            self._teardown()
            return TransitionCallbackReturn.FAILURE
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        self._active = result == TransitionCallbackReturn.SUCCESS
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._slot.clear()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return super().on_shutdown(state)

    def shutdown(self) -> None:
        """Release everything before the process exits; a frame in inference is abandoned."""
        self._teardown(wait_s=_EXIT_WAIT_S)


def main(args: Optional[List[str]] = None) -> int:
    """Entry point of ``depth_node`` (``--lifecycle`` before ``--ros-args`` selects it too)."""
    lifecycle, argv = runner.take_lifecycle_flag(args)
    return runner.run(DepthLifecycleNode if lifecycle else DepthNode, argv, NODE_NAME,
                      fast_exit=args is None)


def lifecycle_main(args: Optional[List[str]] = None) -> int:
    """Entry point of ``depth_lifecycle_node``."""
    _, argv = runner.take_lifecycle_flag(args)
    return runner.run(DepthLifecycleNode, argv, NODE_NAME, fast_exit=args is None)


if __name__ == '__main__':
    sys.exit(main())
