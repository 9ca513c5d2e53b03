"""
``treeaspp-depth demo``: camera -> depth node -> recorder, with a report, in one command.

The depth node runs as its own process exactly as ``ros2 run`` would start it; this process
hosts the camera publisher (streaming a sequence with known depth) and the recorder, which
writes side-by-side images, a PLY point cloud and ``report.json`` into ``--output``. All
processes use the large shared-memory Fast DDS profile, so full-size frames travel best
effort like a real camera's (see ``node/dds.py``).
"""

import argparse
import os
from pathlib import Path
import threading
import time
from typing import Optional

from .camera import CameraPublisher
from .recorder import write_report
from .sources import DEFAULT_FRAMES, open_source, SYNTHETIC
from ..cli import CommandError
from ..cli_options import add_backend_option, add_input_size_option
from ..node import dds
from ..node.description import describe_depth_node
from ..node_launcher import isolated_env, NodeProcess
from ..weights import DEMO_WEIGHTS, MissingWeightsError, shipped_weights

NAMESPACE = '/treeaspp_demo'
NODE_START_TIMEOUT_S = 120.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--output', '-o', type=Path, default=Path('demo_output'),
                        help='folder for report.json, frames/*.png and cloud.ply '
                             '(default: demo_output)')
    parser.add_argument('--source', default=SYNTHETIC,
                        help='synthetic (default: a rendered indoor room with exact depth), a '
                             'folder (7-Scenes, TUM RGB-D, or images + intrinsics.txt/cam.txt '
                             'with optional depth/) or a rosbag2 with ground-truth depth')
    parser.add_argument('--weights', type=Path,
                        help='checkpoint or .onnx export (default: the demo weights shipped '
                             'with the package)')
    parser.add_argument('--frames', type=int, default=DEFAULT_FRAMES,
                        help=f'frames to stream (default {DEFAULT_FRAMES})')
    parser.add_argument('--rate', type=float, default=10.0, help='camera frame rate (Hz)')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    add_backend_option(parser)
    add_input_size_option(parser)
    parser.add_argument('--image-topic', default='/camera/image_raw',
                        help='image topic of a BAG source')
    parser.add_argument('--depth-topic', default='/camera/depth_gt',
                        help='ground-truth depth topic of a BAG source')
    parser.add_argument('--domain-id', type=int,
                        default=int(os.environ.get('ROS_DOMAIN_ID', '0') or 0),
                        help='ROS domain of the demo (default: $ROS_DOMAIN_ID or 0)')


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    if args.weights is not None:
        weights, origin = Path(args.weights), '--weights'
        if not weights.is_file():
            raise CommandError(f'--weights {weights}: no such file')
    else:
        try:
            weights = shipped_weights(DEMO_WEIGHTS)
        except MissingWeightsError as error:
            raise CommandError(str(error)) from None
        origin = 'default demo weights (shipped; recipe: treeaspp_depth_training demo.yaml)'
    # Fast DDS reads its profile when this process creates its participant: set it first.
    dds.apply_to_this_process()
    env = isolated_env(args.domain_id)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = env['ROS_AUTOMATIC_DISCOVERY_RANGE']
    parameters = {'backend': args.backend}
    if args.input_size is not None:
        parameters.update(input_width=args.input_size[0], input_height=args.input_size[1])
    description = describe_depth_node(
        namespace=NAMESPACE, weights=str(weights.resolve()), device=args.device,
        parameters=parameters)
    node = NodeProcess.depth_node(description, env, output / 'node.log')
    try:
        print(f'[demo] depth node starting (pid {node.pid}, log {output / "node.log"})')
        dataset = open_source(args.source, args.frames, image_topic=args.image_topic,
                              depth_topic=args.depth_topic)
        print(f'[demo] source: {dataset.name}, {dataset.width}x{dataset.height}, '
              f'{min(len(dataset), args.frames)} frames at {args.rate:g} Hz')
        report = _stream(args, dataset, node, output, weights, origin)
    finally:
        status, shutdown_s = node.stop()
    report.update(node_exit_code=status, node_shutdown_s=round(shutdown_s, 3),
                  duration_s=round(time.monotonic() - started, 1))
    path = write_report(output, report)
    _print_summary(report, path)
    if report['frames'] == 0:
        raise CommandError('the depth node published no depth; see ' + str(output / 'node.log'))
    return 0 if status == 0 else 1


def _stream(args, dataset, node: NodeProcess, output: Path, weights: Path,
            origin: str) -> dict:
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node

    from .recorder import DepthRecorder
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=args.domain_id)
    try:
        camera_node = Node('demo_camera', namespace=NAMESPACE, context=context)
        recorder_node = Node('demo_recorder', namespace=NAMESPACE, context=context)
        camera = CameraPublisher(camera_node, dataset, args.rate, max_frames=args.frames)

        def lookup(stamp_ns: int):
            index = camera.sent.get(stamp_ns)
            return None if index is None else (dataset.rgb(index), dataset.depth(index))

        recorder = DepthRecorder(recorder_node, output, lookup, expected_frames=camera.count)
        executor = MultiThreadedExecutor(num_threads=2, context=context)
        executor.add_node(camera_node)
        executor.add_node(recorder_node)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        _wait_for_stream(node, camera, recorder)
        executor.shutdown(timeout_sec=2.0)
        diag = recorder.diagnostics
        sent = len(camera.sent)
        received_by_node = int(diag.get('frames_received', recorder.frames))
        report = recorder.report(
            frames_sent=sent,
            dropped=sent - recorder.frames,
            dropped_by_node=int(diag.get('frames_dropped', 0)),
            lost_in_transport=max(0, sent - received_by_node),
            weights=str(weights), weights_origin=origin,
            device=diag.get('device'), backend=diag.get('backend'),
            input_size=diag.get('input_size'),
            input_size_source=diag.get('input_size_source'),
            depth_scale=diag.get('depth_scale'), scale_is_metric=diag.get('scale_is_metric'),
            scale_origin=diag.get('scale_origin'),
            source=dataset.name, image_size=f'{dataset.width}x{dataset.height}',
            camera_rate_hz=args.rate)
        # inference.NO_SCALE (not imported: torch): depth x 1.0, no metric figure to give
        if report['scale_origin'] in (None, 'none'):
            report['abs_rel_metric'], report['metrics_metric'] = None, {}
        return report
    finally:
        rclpy.try_shutdown(context=context)


def _wait_for_stream(node: NodeProcess, camera: CameraPublisher, recorder) -> None:
    """Until every frame was sent and the outputs stopped coming (or the node died)."""
    deadline = time.monotonic() + NODE_START_TIMEOUT_S
    while not camera.done.is_set():
        if not node.alive():
            raise CommandError('the depth node exited:\n' + _tail(node))
        if not camera.sent and time.monotonic() > deadline:
            raise CommandError(f'the depth node did not subscribe within '
                               f'{NODE_START_TIMEOUT_S:.0f} s:\n' + _tail(node))
        if len(camera.sent) >= camera.count // 2:
            recorder.want_point_cloud()
        time.sleep(0.05)
    recorder.want_point_cloud()
    last_count, last_change = recorder.frames, time.monotonic()
    end = time.monotonic() + 30.0
    while time.monotonic() < end:
        if recorder.frames != last_count:
            last_count, last_change = recorder.frames, time.monotonic()
        settled = time.monotonic() - last_change > 2.0
        if settled and (recorder.ply is not None or not node.alive()):
            break
        time.sleep(0.05)


def _tail(node: NodeProcess, lines: int = 15) -> str:
    return '\n'.join(node.log_text().strip().splitlines()[-lines:])


def _print_summary(report: dict, path: Path) -> None:
    def fmt(value: Optional[float], spec: str = '.1f') -> str:
        return 'n/a' if value is None else format(value, spec)
    print(f'[demo] {report["frames"]} of {report["frames_sent"]} frames got depth '
          f'({report["dropped"]} dropped: {report["dropped_by_node"]} by the node keeping the '
          f'newest frame, {report["lost_in_transport"]} lost in transport)')
    print(f'[demo] {fmt(report["fps"])} fps, latency p50 {fmt(report["latency_ms_p50"], ".0f")} '
          f'ms, p95 {fmt(report["latency_ms_p95"], ".0f")} ms, device {report["device"]}, '
          f'backend {report.get("backend")}')
    diag = report.get('node_diagnostics') or {}
    if 'latency_ms_p50' in diag:
        print(f'[demo] the node itself (its diagnostics): latency p50 {diag["latency_ms_p50"]} '
              f'ms, p95 {diag.get("latency_ms_p95", "n/a")} ms, inference p50 '
              f'{diag.get("inference_ms_p50", "n/a")} ms')
    print(f'[demo] median-scaled AbsRel {fmt(report["abs_rel"], ".3f")}, metric AbsRel '
          f'{fmt(report.get("abs_rel_metric"), ".3f")} (the node\'s metres: depth_scale '
          f'{report.get("depth_scale")}, {report.get("scale_origin")}) over '
          f'{report["frames_with_ground_truth"]} frames with ground truth')
    print(f'[demo] wrote {path}, {len(report["side_by_side_images"])} side-by-side images'
          + (f', {report["point_cloud"]["file"]}' if report['point_cloud'] else ''))
