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
``main`` runs the plain node, ``lifecycle_main`` the managed variant (configure loads the
model, activate starts publishing).
"""

import copy
import os
import re
import signal
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from . import dds, params, qos
from .runtime import FrameStats, NewestFrameSlot
from ..conversions.camera_info import (
    camera_info_to_K,
    CameraInfoError,
    intrinsics_from_fov,
    make_camera_info,
    scale_camera_info,
)
from ..conversions.colormap import colorize_depth
from ..conversions.image import (
    compressed_msg_to_rgb,
    depth_to_image_msg,
    image_msg_to_rgb,
    ImageConversionError,
    rgb_to_image_msg,
)
from ..conversions.pointcloud import PointCloudBuilder

NODE_NAME = 'depth_node'
_THROTTLE_S = 5.0


class StartupError(RuntimeError):
    """The node cannot start (bad parameters, unusable weights); the message says why."""


def _stamp_seconds(stamp: Any) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


class DepthNodeCore:
    """Everything the plain and the lifecycle node share (mixed into a rclpy Node class)."""

    def _init_core(self, lifecycle: bool) -> None:
        self._lifecycle = lifecycle
        self._active = False
        self._estimator = None  # inference.DepthEstimator once configured
        self._checkpoint_scale: Optional[float] = None
        self._entities: List[Any] = []
        self._worker: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._slot = NewestFrameSlot()
        self.stats = FrameStats()
        self._camera_info: Optional[CameraInfo] = None
        self._info_cache: Tuple[Any, Any, Any] = (None, None, None)  # key, info, K
        self._first_image_time: Optional[float] = None
        self._builder: Optional[PointCloudBuilder] = None
        self._device_note = ''
        self._logged: Dict[str, float] = {}
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
        errors = params.validate(values, require_weights=False)
        if errors:
            return SetParametersResult(successful=False, reason='; '.join(errors))
        return SetParametersResult(successful=True)

    def _after_set_parameters(self, changed: Sequence[rclpy.Parameter]) -> None:
        self._config = self._read_config()
        if self._estimator is not None:
            self._apply_depth_scale()

    def _apply_depth_scale(self) -> None:
        estimator, config = self._estimator, self._config
        if config.depth_scale > 0:
            estimator.depth_scale, estimator.scale_is_metric = config.depth_scale, True
        elif self._checkpoint_scale is not None:
            estimator.depth_scale, estimator.scale_is_metric = self._checkpoint_scale, True
        else:
            estimator.depth_scale, estimator.scale_is_metric = 1.0, False

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
        try:
            estimator = DepthEstimator(
                config.weights, device=config.device,
                input_size=(config.input_width, config.input_height),
                precision=config.precision,
                depth_scale=config.depth_scale if config.depth_scale > 0 else None)
        except (CheckpointError, ValueError, RuntimeError, OSError) as error:
            raise StartupError(f'cannot load weights {config.weights!r}: {error}') from None
        if config.variant and estimator.variant != config.variant:
            raise StartupError(
                f'wrong variant: {config.weights} holds a {estimator.variant!r} network but '
                f'parameter variant is {config.variant!r}')
        stored = estimator.checkpoint.get('depth_scale')
        self._checkpoint_scale = float(stored) if stored is not None else None
        self._estimator = estimator
        self._cpu_threads = torch.get_num_threads()
        self._apply_depth_scale()
        log = self.get_logger()
        precision = config.precision if estimator.device.type == 'cuda' else 'fp32'
        log.info(f'loaded {estimator.variant} network from {config.weights} on '
                 f'{estimator.device} ({precision}, input {config.input_width}x'
                 f'{config.input_height}, {torch.get_num_threads()} CPU threads)')
        if not estimator.scale_is_metric:
            log.warning('no calibrated depth scale (checkpoint has none and depth_scale is 0): '
                        'depth is published with scale 1.0 and is only correct up to scale; '
                        'run `treeaspp-depth calibrate-scale` or set depth_scale')

    def _create_topics(self, config: params.NodeConfig) -> None:
        make_pub = self.create_lifecycle_publisher if self._lifecycle else self.create_publisher
        options = qos.overrides()
        self._depth_pub = make_pub(Image, 'depth/image', qos.output_qos(),
                                   qos_overriding_options=options)
        self._info_pub = make_pub(CameraInfo, 'depth/camera_info', qos.output_qos(),
                                  qos_overriding_options=options)
        self._colored_pub = make_pub(Image, 'depth/image_colored', qos.output_qos(),
                                     qos_overriding_options=options)
        self._points_pub = make_pub(PointCloud2, 'points', qos.points_qos(),
                                    qos_overriding_options=options)
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
        timer = self.create_timer(config.diagnostics_period, self._publish_diagnostics)
        self._entities = [image_sub, info_sub, timer, self._depth_pub, self._info_pub,
                          self._colored_pub, self._points_pub, self._diag_pub]
        self.get_logger().info(
            f'listening on {self._image_topic} and {self.resolve_topic_name("camera_info")}; '
            f'publishing {self.resolve_topic_name("depth/image")}, '
            f'{self.resolve_topic_name("points")}')

    def _teardown(self) -> None:
        """Stop the worker (bounded wait) and destroy topics; the model is released."""
        self._active = False
        self._stop.set()
        self._slot.close()
        if self._worker is not None:
            self._worker.join(timeout=1.5)
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
        self._camera_info = None
        self._first_image_time = None

    # ---------------------------------------------------------------- callbacks (executor)

    def _on_image(self, msg: Image) -> None:
        self._enqueue(msg, False)

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._enqueue(msg, True)

    def _enqueue(self, msg: Any, compressed: bool) -> None:
        if not self._active:
            return
        self.stats.count('received')
        if self._slot.put((msg, compressed, time.monotonic())):
            self.stats.count('dropped')

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

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
        config = self._config
        try:
            rgb = compressed_msg_to_rgb(msg) if compressed else image_msg_to_rgb(msg)
        except ImageConversionError as error:
            self.stats.count('invalid', f'invalid image: {error}')
            self._error_throttled(f'skipping frame from {self._image_topic}: {error}')
            return
        height, width = rgb.shape[:2]
        intrinsics = self._intrinsics(msg.header, width, height, config)
        if intrinsics is None:
            self.stats.count('waiting_camera_info')
            return
        info, K = intrinsics
        started = time.monotonic()
        depth = self._infer(rgb)
        inference_s = time.monotonic() - started
        # NaN outside [min_depth, max_depth]; comparisons with NaN are False, so NaN stays NaN
        depth[~((depth >= config.min_depth) & (depth <= config.max_depth))] = np.nan
        if not self._active:
            return
        header = msg.header
        self._depth_pub.publish(depth_to_image_msg(depth, header))
        self._info_pub.publish(info)
        if config.publish_colored and self._colored_pub.get_subscription_count() > 0:
            self._colored_pub.publish(rgb_to_image_msg(colorize_depth(depth), header))
        if config.publish_points and self._points_pub.get_subscription_count() > 0:
            builder = self._builder
            if builder is None or (builder.with_rgb, builder.stride) != \
                    (config.points_rgb, config.points_stride):
                builder = self._builder = PointCloudBuilder(config.points_rgb,
                                                            config.points_stride)
            self._points_pub.publish(
                builder.build(depth, K, header, rgb if config.points_rgb else None))
        now = self.get_clock().now().nanoseconds * 1e-9
        done = time.monotonic()
        self.stats.frame_done(now - _stamp_seconds(header.stamp), done - received, inference_s,
                              done - taken)

    def _infer(self, rgb: np.ndarray) -> np.ndarray:
        """Predict depth; on a GPU failure (out of memory, device lost) continue on the CPU."""
        estimator = self._estimator
        try:
            return estimator.predict(rgb)
        except Exception as error:  # noqa: B902 - OOM, lost device, driver errors alike
            if estimator.device.type != 'cuda':
                raise
            reason = f'{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}'
            self.get_logger().error(f'GPU inference failed ({reason}); continuing on the CPU')
            self.stats.count('gpu_fallbacks', f'GPU failure, now on CPU: {reason}')
            self._device_note = f' (fell back from cuda: {reason})'
            estimator.fall_back_to_cpu()
            return estimator.predict(rgb)

    def _intrinsics(self, header: Any, width: int, height: int,
                    config: params.NodeConfig) -> Optional[Tuple[CameraInfo, np.ndarray]]:
        """Camera info for this image (scaled to its size) and K; None while waiting for one."""
        log = self.get_logger()
        info_msg = self._camera_info
        if info_msg is not None:
            key = (tuple(info_msg.k), int(info_msg.width), int(info_msg.height), width, height)
            cached_key, base, K = self._info_cache
            if key != cached_key:
                base = info_msg
                if (info_msg.width, info_msg.height) != (width, height):
                    log.warning(f'camera_info is for {info_msg.width}x{info_msg.height} but the '
                                f'image is {width}x{height}: scaling K to the image',
                                throttle_duration_sec=60.0)
                    base = scale_camera_info(info_msg, width, height)
                try:
                    K = camera_info_to_K(base)
                except CameraInfoError as error:
                    base = K = None
                    log.error(f'{error}; using the intrinsics parameters instead',
                              throttle_duration_sec=_THROTTLE_S)
                self._info_cache = (key, base, K)
            if base is not None:
                out = copy.copy(base)
                out.header = header
                return out, K
        else:
            now = time.monotonic()
            if self._first_image_time is None:
                self._first_image_time = now
            if now - self._first_image_time < config.camera_info_timeout:
                return None
            log.warning(f'no camera_info on {self.resolve_topic_name("camera_info")} after '
                        f'{config.camera_info_timeout:g} s: using the intrinsics parameters '
                        '(fx, fy, cx, cy or horizontal_fov_deg); point clouds are only as '
                        'right as those', once=True)
        if config.intrinsics_set:
            K = np.array([[config.fx, 0.0, config.cx], [0.0, config.fy, config.cy],
                          [0.0, 0.0, 1.0]])
        else:
            K = intrinsics_from_fov(width, height, config.horizontal_fov_deg)
        return make_camera_info(K, width, height, header), K

    # ---------------------------------------------------------------- diagnostics

    def _publish_diagnostics(self) -> None:
        if not self._active or self._estimator is None:
            return
        snap = self.stats.snapshot()
        estimator, config = self._estimator, self._config
        status = DiagnosticStatus()
        status.name = f'{self.get_fully_qualified_name()}: depth'
        status.hardware_id = str(estimator.device)
        problems = []
        if snap.get('received', 0) == 0:
            problems.append(f'no images received on {self._image_topic}')
        if snap.get('gpu_fallbacks', 0):
            problems.append('running on CPU after a GPU failure')
        if snap.get('invalid', 0) or snap.get('errors', 0):
            problems.append(f'{snap.get("invalid", 0)} invalid frames, '
                            f'{snap.get("errors", 0)} errors (last: {snap["last_error"]})')
        status.level = DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
        status.message = '; '.join(problems) if problems else (
            f'{snap["fps"]:.1f} fps, latency p50 {snap["latency_ms_p50"]:.0f} ms')
        values = {
            'frames_received': snap.get('received', 0),
            'frames_published': snap.get('published', 0),
            'frames_dropped': snap.get('dropped', 0),
            'frames_invalid': snap.get('invalid', 0),
            'frames_waiting_camera_info': snap.get('waiting_camera_info', 0),
            'errors': snap.get('errors', 0),
            'gpu_fallbacks': snap.get('gpu_fallbacks', 0),
            'fps': f'{snap["fps"]:.2f}',
            'latency_ms_p50': f'{snap["latency_ms_p50"]:.1f}',
            'latency_ms_p95': f'{snap["latency_ms_p95"]:.1f}',
            'processing_ms_p50': f'{snap["processing_ms_p50"]:.1f}',
            'processing_ms_p95': f'{snap["processing_ms_p95"]:.1f}',
            'inference_ms_p50': f'{snap["inference_ms_p50"]:.1f}',
            'work_ms_p50': f'{snap["work_ms_p50"]:.1f}',
            'device': f'{estimator.device}{self._device_note}',
            'precision': config.precision if estimator.device.type == 'cuda' else 'fp32',
            'variant': estimator.variant,
            'input_size': f'{config.input_width}x{config.input_height}',
            'cpu_threads': self._cpu_threads,
            'depth_scale': f'{estimator.depth_scale:g}',
            'scale_is_metric': str(estimator.scale_is_metric).lower(),
            'image_topic': self._image_topic,
            'last_error': snap['last_error'],
        }
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [status]
        self._diag_pub.publish(array)


class DepthNode(DepthNodeCore, Node):
    """The plain node: loads the model and starts publishing in its constructor."""

    def __init__(self, **kwargs: Any) -> None:
        Node.__init__(self, NODE_NAME, **kwargs)
        self._init_core(lifecycle=False)
        self._configure()
        self._active = True

    def shutdown(self) -> None:
        self._teardown()


class DepthLifecycleNode(DepthNodeCore, LifecycleNode):
    """Managed variant: configure loads the model, activate starts publishing."""

    def __init__(self, **kwargs: Any) -> None:
        LifecycleNode.__init__(self, NODE_NAME, **kwargs)
        self._init_core(lifecycle=True)

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
        self._teardown()


def _run(node_class: type, args: Optional[List[str]], fast_exit: bool = False) -> int:
    """
    Spin the node until SIGINT/SIGTERM, then release everything in order.

    The signal handlers only set a flag that the spin loop checks every 0.1 s. Shutting the
    context down from rclpy's own handlers races with the executor building its wait set
    (seen here as an RCLError exit or a hang about one run in five).
    """
    profile = dds.apply_to_this_process()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    context = rclpy.get_default_context()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    logger = rclpy.logging.get_logger(NODE_NAME)
    if profile:
        logger.info(f'Fast DDS: large shared-memory profile {profile} (set '
                    f'{dds.OPT_OUT}=0 to keep Fast DDS defaults)')
    node = None
    executor = None
    status = 0
    try:
        node = node_class()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set() and context.ok():
            executor.spin_once(timeout_sec=0.1)
    except StartupError as error:
        logger.fatal(str(error))
        status = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        if executor is not None:
            executor.shutdown(timeout_sec=0.5)
        rclpy.try_shutdown(context=context)
        context.destroy()  # leaves the DDS graph now, so peers see the node go at once
    if fast_exit:
        # Everything ROS has been released above; skip the interpreter's teardown of torch
        # and friends, which alone takes 1-2 s here and would break the 2 s shutdown budget.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _strip(args: Optional[List[str]]) -> Tuple[bool, List[str]]:
    argv = list(sys.argv if args is None else args)
    lifecycle = '--lifecycle' in argv[:argv.index('--ros-args')] if '--ros-args' in argv \
        else '--lifecycle' in argv
    if lifecycle:
        argv.remove('--lifecycle')
    return lifecycle, argv


def main(args: Optional[List[str]] = None) -> int:
    """Entry point of ``depth_node`` (``--lifecycle`` before ``--ros-args`` selects it too)."""
    lifecycle, argv = _strip(args)
    return _run(DepthLifecycleNode if lifecycle else DepthNode, argv, fast_exit=args is None)


def lifecycle_main(args: Optional[List[str]] = None) -> int:
    """Entry point of ``depth_lifecycle_node``."""
    _, argv = _strip(args)
    return _run(DepthLifecycleNode, argv, fast_exit=args is None)


if __name__ == '__main__':
    sys.exit(main())
