"""
`treeaspp-depth bag-eval`: depth accuracy and scale consistency on a rosbag2 recording.

Offline mode runs every paired frame through :class:`DepthEstimator` (the node's inference
code) deterministically; live mode plays the bag into ROS 2 against the running node and scores
what it publishes. Both write the same report (JSON, Markdown, plots) and can record a
SLAM-ready bag of the outputs (`--record-out`): live records what the node publishes, offline
builds the same messages with the node's own output stage (:mod:`..node.outputs`) and the same
node parameters (:func:`node_parameters`).
"""

import argparse
from contextlib import ExitStack
import json
import os
from pathlib import Path
import platform
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np
from treeaspp_depth_ros.bag import bagio, evaluation, record, report
from treeaspp_depth_ros.cli import CommandError
from treeaspp_depth_ros.cli_options import (add_backend_option, add_input_size_option,
                                            add_weights_option, backend_for)
from treeaspp_depth_ros.conversions.camera_info import camera_info_to_K
from treeaspp_depth_ros.conversions.stamps import make_header
from treeaspp_depth_ros.node import params
from treeaspp_depth_ros.node.outputs import (IntrinsicsResolver, INVALID, odometry_message,
                                             OutputBuilder)
from treeaspp_depth_ros.progress import track
import yaml


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('bag', metavar='BAG', type=Path, help='rosbag2 folder (sqlite3 or mcap)')
    parser.add_argument('--image-topic', required=True,
                        help='sensor_msgs/Image or CompressedImage colour topic')
    parser.add_argument('--depth-topic', required=True,
                        help='ground-truth depth topic (sensor_msgs/Image 16UC1 mm or 32FC1 m)')
    parser.add_argument('--camera-info-topic',
                        help='sensor_msgs/CameraInfo topic (default: IMAGE_NS/camera_info when '
                             'present); needed for --record-out')
    add_weights_option(parser, 'checkpoint (.pt) or .onnx (treeaspp-depth export) to evaluate')
    parser.add_argument('--output', '-o', type=Path, metavar='DIR',
                        help='report folder: report.json, report.md and plots')
    parser.add_argument('--mode', choices=('offline', 'live'), default='offline',
                        help='offline: deterministic, every frame; live: play into ROS 2 '
                             'against the node and score what it publishes')
    parser.add_argument('--device', default='cpu', help='auto, cpu, cuda, cuda:N (offline; '
                                                        'live passes it to the node)')
    add_input_size_option(parser)
    parser.add_argument('--precision', choices=('fp32', 'fp16', 'bf16'), default='fp32')
    add_backend_option(parser, from_weights=True)
    parser.add_argument('--min-depth', type=float, default=0.1)
    parser.add_argument('--max-depth', type=float, default=10.0)
    parser.add_argument('--crop', choices=('none', 'eigen'), default='none',
                        help='evaluation crop (eigen: the NYUv2 Eigen crop)')
    parser.add_argument('--max-dt', type=float, default=0.02,
                        help='largest image/depth header-stamp difference to pair (s)')
    parser.add_argument('--allow-unmatched', action='store_true',
                        help='evaluate matched frames even if some images/depths have no partner')
    parser.add_argument('--max-frames', type=int, help='evaluate only the first N pairs')
    parser.add_argument('--pose-topic',
                        help='recorded camera poses (geometry_msgs/PoseStamped or '
                             'nav_msgs/Odometry) to score the odometry and warp the flicker '
                             'with (default: IMAGE_NS/pose_gt when present, as make-bag writes)')
    parser.add_argument('--no-motion', action='store_true',
                        help='offline: skip the pose network (odometry, confidence and their '
                             'report section; about one more network pass per frame)')
    parser.add_argument('--samples', type=int, default=4,
                        help='frames in the RGB | prediction | ground truth | error strip')
    parser.add_argument('--record-out', type=Path, metavar='BAG',
                        help='write the outputs + original stream as a SLAM-ready bag; '
                             f'{record.SIZE_HELP}')
    parser.add_argument('--record-no-points', action='store_true',
                        help='leave the point clouds out of --record-out (depth, image and '
                             'camera_info stay; SLAM that takes RGB-D needs no cloud)')
    parser.add_argument('--record-storage', choices=sorted(bagio.STORAGES), default='sqlite3')
    parser.add_argument('--record-prefix', default='/camera',
                        help='topic prefix of the --record-out bag (default /camera)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing --record-out bag or --output folder (a '
                             'previous report folder is always replaced)')
    live = parser.add_argument_group('live mode')
    live.add_argument('--rate', type=float, default=1.0,
                      help='playback rate factor (0.5 = half speed)')
    live.add_argument('--clock', action='store_true',
                      help='publish /clock from bag time and start the node with use_sim_time')
    live.add_argument('--attach', metavar='NAMESPACE',
                      help='use an already running node in NAMESPACE (ROS_DOMAIN_ID from the '
                           'environment) instead of starting one')
    live.add_argument('--domain-id', type=int,
                      help='ROS_DOMAIN_ID for the node started here (default: a free-looking '
                           'one derived from the process id)')
    live.add_argument('--qos', choices=('recorded', 'reliable', 'best-effort'),
                      default='recorded', help='QoS to publish the bag with (default: as '
                                               'recorded in the bag metadata)')
    live.add_argument('--node-timeout', type=float, default=60.0,
                      help='seconds to wait for the node to come up')
    live.add_argument('--drain-timeout', type=float, default=10.0,
                      help='seconds to wait for outstanding outputs after the last frame')
    live.add_argument('--node-threads', type=int,
                      help='OMP_NUM_THREADS for the node started here (CPU inference threads)')
    parser.add_argument('--node-param', action='append', default=[], metavar='NAME:=VALUE',
                        help='depth node parameter (repeatable): live passes it to the node, '
                             'offline builds the --record-out messages with it')


def node_parameters(args: argparse.Namespace) -> Dict[str, Any]:
    """
    Return the depth node's parameters for this evaluation (``--node-param`` last).

    Live starts the node with them; offline builds its ``--record-out`` messages with them, so
    both modes record the same messages for the same frame.
    """
    values: Dict[str, Any] = {
        'weights': str(Path(args.weights).resolve()), 'device': args.device,
        'precision': args.precision, 'backend': args.backend,
        # the raw prediction (no range masking), as the evaluation scores it
        'min_depth': 0.0, 'max_depth': 1000.0}
    if args.input_size is not None:  # else the node runs at the checkpoint's training size
        values.update(input_width=args.input_size[0], input_height=args.input_size[1])
    for item in args.node_param:
        name, separator, text = item.partition(':=')
        if not separator or not name:
            raise CommandError(f'--node-param must look like NAME:=VALUE, got {item!r}')
        values[name] = yaml.safe_load(text) if text else ''  # as ROS reads `-p NAME:=VALUE`
    return values


def node_config(values: Dict[str, Any]) -> params.NodeConfig:
    """Check node parameters as the node does at start; unknown names are left to the node."""
    merged = dict(params.defaults(), **values)
    errors = params.validate(merged)
    if errors:
        raise CommandError('node parameters: ' + '; '.join(errors))
    return params.NodeConfig.from_values(merged)


def make_estimator(weights: str, device: str, input_size: tuple, precision: str,
                   depth_scale: Optional[float] = None, backend: str = 'torch'):
    """Load the node's inference path; checkpoint problems become a user error naming the file."""
    from treeaspp_depth_ros.checkpoint import CheckpointError
    from treeaspp_depth_ros.inference import DepthEstimator
    if not Path(weights).is_file():
        raise CommandError(f'weights file not found: {weights}')
    try:
        return DepthEstimator(weights, device=device, input_size=input_size,
                              precision=precision, depth_scale=depth_scale, backend=backend)
    except (CheckpointError, ValueError, RuntimeError, ImportError) as error:
        raise CommandError(f'cannot load weights {weights}: {error}') from None


class OfflineNode:
    """What the depth node publishes for each frame, built offline by its own output stage."""

    def __init__(self, config: params.NodeConfig, camera_info_topic: str) -> None:
        self.config = config
        self._intrinsics = IntrinsicsResolver(camera_info_topic)
        self._outputs = OutputBuilder()

    def record(self, recorder: record.OutputRecorder, frame: evaluation.FrameData,
               rgb: np.ndarray, pred: np.ndarray,
               odometry: Optional[Any] = None) -> None:
        """Write the frame's input stream and the node's outputs for it."""
        from rclpy.serialization import deserialize_message
        from sensor_msgs.msg import CameraInfo
        stamp = frame.pair.stamp_ns
        frame_id = str(frame.image_msg.header.frame_id)
        height, width = rgb.shape[:2]
        # the messages the node receives: the image's header and the camera_info as rclpy reads it
        self._intrinsics.camera_info = deserialize_message(frame.camera_info_raw, CameraInfo)
        intrinsics = self._intrinsics.resolve(make_header(stamp, frame_id), width, height,
                                              self.config, now=0.0)
        if intrinsics.source == INVALID:
            raise CommandError(f'camera_info topic {self._intrinsics.camera_info_topic}: '
                               f'{intrinsics.note}')
        if intrinsics.changed and intrinsics.note:
            print(f'warning: {intrinsics.note}', file=sys.stderr)
        recorder.note_camera(intrinsics.K, width, height)
        recorder.write_input(stamp, frame.image_raw, frame.camera_info_raw, frame_id)
        for key, msg in self._outputs.messages(pred, rgb, intrinsics, self.config,
                                               wanted=recorder.records):
            recorder.write_output(key, stamp, msg)
        if odometry is not None:
            recorder.write_output('odom', stamp, odometry_message(
                odometry.pose, odometry.pose_variance, make_header(stamp, self.config.odom_frame),
                frame_id, None, None))


def machine_info() -> Dict[str, object]:
    import torch
    return {'python': platform.python_version(), 'torch': torch.__version__,
            'cpu': platform.processor() or platform.machine(), 'cpu_count': os.cpu_count(),
            'torch_threads': torch.get_num_threads()}


def make_temporal(args: argparse.Namespace, inputs: evaluation.EvalInputs, estimator,
                  config: params.NodeConfig):
    """Set up the "over time" evaluation, with the weights' pose network unless --no-motion."""
    from treeaspp_depth_ros.bag.temporal import TemporalEvaluation
    from treeaspp_depth_ros.checkpoint import CheckpointError, load_pose_net
    from treeaspp_depth_ros.data import rosbag
    from treeaspp_depth_ros.motion import VisualOdometry
    odometry, truth = None, None
    if not args.no_motion and inputs.camera_info_topic is not None:
        try:
            odometry = VisualOdometry(
                load_pose_net(estimator.checkpoint), estimator.device, config.odom_max_gap,
                config.odom_max_speed, config.odom_max_angular_speed,
                config.odom_relative_error)
        except CheckpointError as error:
            print(f'[bag-eval] no odometry or confidence: {error}', file=sys.stderr)
    topic = args.pose_topic
    if topic is None:
        guess = inputs.image_topic.rsplit('/', 1)[0] + '/pose_gt'
        topic = guess if guess in inputs.reader.topics else None
    if topic is not None:
        truth = rosbag.read_pose_track(inputs.reader, topic)
    return TemporalEvaluation(odometry, truth, args.max_dt, args.min_depth, args.max_depth), \
        topic


def run_offline(args: argparse.Namespace, inputs: evaluation.EvalInputs,
                acc: evaluation.MetricAccumulator, recorder: Optional[record.OutputRecorder],
                estimator, config: params.NodeConfig, temporal=None) -> Dict[str, object]:
    """Every paired frame through the estimator; returns timing and the report samples."""
    wanted = set(evaluation.sample_indices(len(inputs.pairs), args.samples))
    samples: List[Dict[str, object]] = []
    timings = {'decode_s': 0.0, 'inference_s': 0.0, 'metrics_s': 0.0, 'record_s': 0.0}
    node = OfflineNode(config, inputs.camera_info_topic or '') if recorder is not None else None
    started = time.perf_counter()
    frames = track(evaluation.iter_frames(inputs), len(inputs.pairs),
                   '[bag-eval] offline inference', 'frames')
    for frame in frames:
        t0 = time.perf_counter()
        rgb = evaluation.decode_rgb(inputs, frame)
        gt = evaluation.decode_depth(inputs, frame)
        t1 = time.perf_counter()
        prediction = estimator.predict_frame(rgb)
        pred = prediction.depth
        t2 = time.perf_counter()
        scored = acc.add(frame.pair, pred, gt)
        if temporal is not None and frame.camera_info_msg is not None:
            temporal.add(frame.pair.index, frame.pair.stamp_ns, prediction, gt,
                         camera_info_to_K(frame.camera_info_msg), estimator.depth_scale,
                         scored['scale_ratio'] if scored else None)
        t3 = time.perf_counter()
        if node is not None:
            node.record(recorder, frame, rgb, pred,
                        temporal.odometry if temporal is not None else None)
        t4 = time.perf_counter()
        timings['decode_s'] += t1 - t0
        timings['inference_s'] += t2 - t1
        timings['metrics_s'] += t3 - t2  # with the pose network and its confidence
        timings['record_s'] += t4 - t3
        if frame.pair.index in wanted:
            samples.append({'index': frame.pair.index, 'rgb': rgb.copy(),
                            'pred': evaluation.fit_to(pred, gt.shape), 'gt': gt})
    elapsed = time.perf_counter() - started
    count = len(inputs.pairs)
    return {
        'elapsed_s': elapsed,
        'fps': count / elapsed if elapsed > 0 else float('nan'),
        'model_fps': count / timings['inference_s'] if timings['inference_s'] > 0 else None,
        'timing_ms_per_frame': {k[:-2]: 1000.0 * v / max(count, 1) for k, v in timings.items()},
        'samples': samples,
    }


def run(args: argparse.Namespace) -> int:
    args.backend = backend_for(args.weights, args.backend)  # an .onnx: an ONNX backend
    parameters = node_parameters(args)
    config = node_config(parameters)
    if args.min_depth <= 0 or args.max_depth <= args.min_depth:
        raise CommandError(f'need 0 < --min-depth < --max-depth, got {args.min_depth}, '
                           f'{args.max_depth}')
    if args.rate <= 0:
        raise CommandError(f'--rate must be positive, got {args.rate}')
    if args.mode == 'offline' and (args.attach or args.clock):
        raise CommandError('--attach and --clock only apply to --mode live')
    if args.record_out is not None and args.output is not None and \
            Path(args.record_out).resolve() == Path(args.output).resolve():
        raise CommandError('--record-out and --output must be different paths')
    if args.mode == 'offline' and config.cpu_threads > 0:
        import torch
        torch.set_num_threads(config.cpu_threads)  # as the node does
    estimator = make_estimator(args.weights, args.device if args.mode == 'offline' else 'cpu',
                               config.input_size, args.precision,
                               config.depth_scale or None, config.backend)
    print(f'[bag-eval] {estimator.describe()}', flush=True)
    with ExitStack() as stack:
        inputs = evaluation.open_inputs(
            args.bag, args.image_topic, args.depth_topic, args.camera_info_topic,
            max_dt=args.max_dt, allow_unmatched=args.allow_unmatched,
            max_frames=args.max_frames)
        stack.callback(inputs.reader.close)
        if args.record_out is not None and inputs.camera_info_topic is None:
            raise CommandError(
                f'--record-out needs camera intrinsics: bag {args.bag} has no camera_info next '
                f'to {args.image_topic}; pass --camera-info-topic')
        report_dir = None
        if args.output is not None:
            report_dir = stack.enter_context(
                bagio.atomic_output(args.output, overwrite=args.overwrite,
                                    replace_if='report.json'))
            report_dir.mkdir()
        recorder = None
        record_dir = None
        if args.record_out is not None:
            record_dir = stack.enter_context(
                bagio.atomic_output(args.record_out, overwrite=args.overwrite))
            writer = stack.enter_context(bagio.BagWriter(
                record_dir, storage=args.record_storage,
                custom_data={'generator': f'treeaspp-depth bag-eval --mode {args.mode}',
                             'source_bag': str(args.bag), 'weights': str(args.weights)}))
            recorder = record.OutputRecorder(writer, inputs.image_type, args.record_prefix,
                                             points=not args.record_no_points)
        acc = stack.enter_context(evaluation.MetricAccumulator(
            args.min_depth, args.max_depth, None if args.crop == 'none' else args.crop,
            metric=estimator.has_depth_scale,  # synthetic-rooms scales too: say how far off
            scratch_dir=report_dir.parent if report_dir is not None else None))
        temporal = None
        if args.mode == 'offline':
            temporal, pose_topic = make_temporal(args, inputs, estimator, config)
            if recorder is not None and temporal.odometry is not None:
                recorder.add_odometry()
            outcome = run_offline(args, inputs, acc, recorder, estimator, config, temporal)
        else:
            from treeaspp_depth_ros.bag import live
            outcome = live.run_live(args, inputs, acc, recorder, parameters)
        results = acc.finish()
        if temporal is not None:
            results['over_time'] = temporal.finish(
                results['global_scale'], {f['index']: f['scale_ratio'] for f in acc.frames})
            results['over_time']['pose_topic'] = pose_topic
        if recorder is not None:
            # N frames span N - 1 intervals
            fps = (len(inputs.pairs) - 1) / max(
                (inputs.pairs[-1].stamp_ns - inputs.pairs[0].stamp_ns) * 1e-9, 1e-9) \
                if len(inputs.pairs) > 1 else 30.0
            record.write_orbslam3_settings(record_dir, recorder, fps)
        summary = build_report(args, inputs, estimator, results, outcome)
        if report_dir is not None:
            report.write_report(report_dir, summary, acc.frames, outcome['samples'])
    print_summary(summary, args)
    return 0


def build_report(args, inputs: evaluation.EvalInputs, estimator, results,
                 outcome) -> Dict[str, object]:
    summary: Dict[str, object] = {
        'bag': str(args.bag), 'mode': args.mode, 'weights': str(args.weights),
        'variant': estimator.variant, 'device': str(estimator.device),
        'backend': estimator.describe_backend(), 'input_size': list(estimator.input_size),
        'input_size_source': estimator.input_size_source, 'precision': args.precision,
        'depth_scale': estimator.depth_scale, 'scale_is_metric': estimator.scale_is_metric,
        'scale_origin': estimator.scale_origin,
        'image_topic': inputs.image_topic, 'depth_topic': inputs.depth_topic,
        'camera_info_topic': inputs.camera_info_topic,
        'images': inputs.image_count, 'depths': inputs.depth_count,
        'frames_paired': len(inputs.pairs),
        'min_depth': args.min_depth, 'max_depth': args.max_depth,
        'crop': None if args.crop == 'none' else args.crop,
        'record_out': str(args.record_out) if args.record_out else None,
        'machine': machine_info(),
    }
    summary.update(results)
    summary.update({k: v for k, v in outcome.items() if k != 'samples'})
    return summary


def print_summary(summary: Dict[str, object], args) -> None:
    med, glob = summary['median_scaled'], summary['global_scaled']
    line = (f'{summary["mode"]}: {summary["frames"]} frames, {summary["fps"]:.2f} frames/s | '
            f'median-scaled AbsRel {med["abs_rel"]:.4f} RMSE {med["rmse"]:.4f} '
            f'd1 {med["a1"]:.4f} | ')
    metric = summary.get('metric')
    if metric:  # what a robot gets: the weights' own scale, beside the rescaled figures
        line += (f'metric (x{summary["depth_scale"]:.4g}, {summary.get("scale_origin")}) AbsRel '
                 f'{metric["abs_rel"]:.4f} RMSE {metric["rmse"]:.4f} d1 {metric["a1"]:.4f} | ')
    else:
        line += 'metric: none (no depth scale: run calibrate-scale) | '
    fitted = summary['global_scale'] * summary['depth_scale']  # the applied scale x the fit
    line += (f'global-scaled (one scale fitted to this bag: {fitted:.4g}) AbsRel '
             f'{glob["abs_rel"]:.4f} RMSE {glob["rmse"]:.4f} d1 {glob["a1"]:.4f} | '
             f'scale ratio CV {summary["scale_ratio_cv"]:.4f}')
    if 'dropped' in summary:
        line += f' | dropped {summary["dropped"]}'
    print(line)
    over_time = summary.get('over_time') or {}
    odometry, flicker = over_time.get('odometry') or {}, over_time.get('flicker') or {}
    if 'ate_similarity' in odometry:
        print(f'odometry: ATE {odometry["ate_similarity"]["rmse_m"]:.3f} m after a similarity '
              f'alignment ({100 * odometry["ate_sim_over_length"]:.1f}% of the '
              f'{odometry["trajectory_length_m"]:.2f} m path), '
              f'{odometry["ate_rigid"]["rmse_m"]:.3f} m rigid; RPE '
              f'{100 * odometry["rpe"]["translation_error_ratio"]:.0f}% of each step')
    if 'ours_mean_relative_change' in flicker:
        print(f'flicker (mean relative change at the same 3D points, {flicker["warped_with"]}): '
              f'ours {flicker["ours_mean_relative_change"]:.4f}, sensor '
              f'{flicker["sensor_mean_relative_change"]:.4f}')
    if args.output is not None:
        print(f'report: {Path(args.output) / "report.md"}')
    if args.record_out is not None:
        print(f'recorded: {args.record_out} ({record.bag_size_mb(args.record_out):.1f} MB)')


def load_report(folder: Path) -> Dict[str, object]:
    """Read a report.json back (used by tests and the demo)."""
    return json.loads((Path(folder) / 'report.json').read_text())
