"""
Live `bag-eval`: play a bag into ROS 2 against the depth node and score what it publishes.

The node runs as its own process (or is an already running one, `--attach`); this process
publishes the bag's image and camera_info messages unchanged (same bytes, so the recorded stamps
reach the node) at the recorded timing scaled by `--rate`, optionally with `/clock`, and
collects the node's `depth/image` (and for `--record-out` its camera_info and points). Outputs
are matched to inputs by header stamp; latency is publish -> receive on one monotonic clock,
i.e. the real end-to-end time through DDS, conversion and inference; every paired frame without
an output is a drop.
"""

import argparse
import collections
from contextlib import contextmanager
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Deque, Dict, Iterator, List, Optional, Tuple

import numpy as np

from treeaspp_depth_ros.bag import bagio, evaluation, record
from treeaspp_depth_ros.cli import CommandError

NODE_MODULE = 'treeaspp_depth_ros.node.depth_node'
WARMUP_FRAMES = 3


def default_domain_id() -> int:
    """Pick a domain id unlikely to collide with the user's (0) or a parallel run (pid based)."""
    return 1 + os.getpid() % 100


@contextmanager
def _temporary_env(values: Dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _qos_profile(args: argparse.Namespace, recorded: List[object]):
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    reliable = True
    depth = 10
    if args.qos == 'best-effort':
        reliable = False
    elif args.qos == 'recorded' and recorded:
        reliable = recorded[0].reliability.name != 'BEST_EFFORT'
        depth = max(int(recorded[0].depth or 10), 1)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE if reliable
                      else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.VOLATILE)


def _output_qos(depth: int):
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    # Reliable matches the node's reliable outputs without adding losses of our own.
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


class NodeProcess:
    """The depth node as a child process with its log captured for error messages."""

    def __init__(self, namespace: str, weights: str, input_size: Tuple[int, int],
                 precision: str, device: str, sim_time: bool, extra: List[str],
                 env: Dict[str, str], log_path: Path) -> None:
        argv = [sys.executable, '-m', NODE_MODULE, '--ros-args', '-r', f'__ns:={namespace}',
                '-p', f'weights:={Path(weights).resolve()}',
                '-p', f'device:={device}', '-p', f'precision:={precision}',
                '-p', f'input_width:={input_size[0]}', '-p', f'input_height:={input_size[1]}',
                # Publish the raw prediction (no range masking), as offline evaluation scores.
                '-p', 'min_depth:=0.0', '-p', 'max_depth:=1000.0']
        if sim_time:
            argv += ['-p', 'use_sim_time:=true']
        for item in extra:
            if ':=' not in item:
                raise CommandError(f'--node-param must look like NAME:=VALUE, got {item!r}')
            argv += ['-p', item]
        self.log_path = log_path
        self._log = open(log_path, 'wb')
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors='replace').strip().splitlines()
        except OSError:
            return ''
        return '\n'.join(text[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT: the node shuts down cleanly
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()


def _playback(reader: bagio.BagReader, topics: List[str], first_topic: str,
              stop_ns: Optional[int]) -> Iterator[Tuple[int, str, bytes]]:
    """Messages in bag order; at equal bag time `first_topic` (camera_info) comes first."""
    batch: List[Tuple[int, str, bytes]] = []
    for topic, _, timestamp, data in reader.messages(topics):
        if stop_ns is not None and timestamp > stop_ns:
            break
        if batch and timestamp != batch[0][0]:
            yield from sorted(batch, key=lambda item: item[1] != first_topic)
            batch = []
        batch.append((timestamp, topic, bytes(data)))
    yield from sorted(batch, key=lambda item: item[1] != first_topic)


def _restamped(raw: bytes, msgtype: str, stamp_ns: int) -> bytes:
    """Return the same message with another header stamp (warm-up frames that are never scored)."""
    import dataclasses
    msg = bagio.deserialize(raw, msgtype)
    ts = bagio.typestore()
    stamp = ts.types['builtin_interfaces/msg/Time'](sec=int(stamp_ns // 10**9),
                                                    nanosec=int(stamp_ns % 10**9))
    msg = dataclasses.replace(msg, header=dataclasses.replace(msg.header, stamp=stamp))
    return bytes(ts.serialize_cdr(msg, msgtype))


def run_live(args: argparse.Namespace, inputs: evaluation.EvalInputs,
             acc: evaluation.MetricAccumulator, recorder: Optional[record.OutputRecorder],
             input_size: Tuple[int, int]) -> Dict[str, object]:
    """Play, collect, then score the collected depth with the same accumulator as offline."""
    scratch = Path(tempfile.mkdtemp(prefix='treeaspp_live_'))
    try:
        collected = _play_and_collect(args, inputs, recorder, input_size, scratch)
        return _score(args, inputs, acc, collected, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _play_and_collect(args, inputs, recorder, input_size, scratch: Path) -> Dict[str, object]:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
    from treeaspp_depth_ros.node import dds

    attach = args.attach
    namespace = '/' + (attach or f'treeaspp_bag_eval_{os.getpid()}').strip('/')
    domain = args.domain_id if args.domain_id is not None else (
        int(os.environ.get('ROS_DOMAIN_ID', '0') or 0) if attach else default_domain_id())
    env = dds.large_data_env()
    env['ROS_DOMAIN_ID'] = str(domain)
    if not attach:
        env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
        if getattr(args, 'node_threads', None):
            env['OMP_NUM_THREADS'] = str(int(args.node_threads))
    own_env = {k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
                                   'FASTDDS_DEFAULT_PROFILES_FILE') if k in env}
    node_proc = None
    if not attach:
        node_proc = NodeProcess(namespace, args.weights, input_size, args.precision,
                                args.device, args.clock, args.node_param, env,
                                scratch / 'node.log')
    context = rclpy.Context()
    # The DDS participant is created with the first node, so the environment (domain,
    # discovery range, large shared-memory profile for sending images) must hold until then.
    with _temporary_env(own_env):
        rclpy.init(context=context, domain_id=domain)
        node = rclpy.create_node(f'bag_eval_player_{os.getpid()}', context=context)
    executor = None
    spin_thread = None
    try:
        image_type = Image if inputs.image_type == bagio.IMAGE else CompressedImage
        image_topic = f'{namespace}/image' + ('/compressed' if image_type is CompressedImage
                                              else '')
        pub_qos = _qos_profile(args, inputs.reader.offered_qos(inputs.image_topic))
        image_pub = node.create_publisher(image_type, image_topic, pub_qos)
        info_pub = node.create_publisher(CameraInfo, f'{namespace}/camera_info', pub_qos)
        clock_pub = node.create_publisher(Clock, '/clock', 10) if args.clock else None
        received: Deque[Tuple[float, str, bytes]] = collections.deque()

        def collector(key: str):
            def callback(data: bytes) -> None:
                received.append((time.monotonic(), key, data))
            return callback

        subscriptions = [node.create_subscription(
            Image, f'{namespace}/depth/image', collector('depth'), _output_qos(50), raw=True)]
        if recorder is not None:
            subscriptions.append(node.create_subscription(
                CameraInfo, f'{namespace}/depth/camera_info', collector('depth_camera_info'),
                _output_qos(50), raw=True))
            subscriptions.append(node.create_subscription(
                PointCloud2, f'{namespace}/points', collector('points'), _output_qos(10),
                raw=True))
        info_topic = inputs.camera_info_topic
        topics = [inputs.image_topic] + ([info_topic] if info_topic else [])
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        spin_thread = threading.Thread(target=executor.spin, name='bag_eval_spin', daemon=True)
        spin_thread.start()

        _wait_for_node(node, node_proc, image_pub, info_pub if info_topic else image_pub,
                       namespace, args.node_timeout, attach)
        if image_type is CompressedImage and node_proc is not None:
            raise CommandError('live mode with CompressedImage needs the node started with '
                               'use_compressed; start it yourself and pass --attach')
        pairs = {p.stamp_ns: p for p in inputs.pairs}
        pred_dir = scratch / 'pred'
        pred_dir.mkdir()
        state = {'published': {}, 'latency': {}, 'outputs': 0, 'last_rx': time.monotonic(),
                 'warm': set()}

        def drain() -> None:
            while received:
                rx_time, key, data = received.popleft()
                state['last_rx'] = rx_time
                msgtype = {'depth': bagio.IMAGE, 'depth_camera_info': bagio.CAMERA_INFO,
                           'points': bagio.POINTCLOUD2}[key]
                msg = bagio.deserialize(data, msgtype)
                stamp = bagio.stamp_ns(msg)
                if key == 'depth' and stamp < 10**9:
                    state['warm'].add(stamp)
                if stamp not in pairs or stamp not in state['published']:
                    continue  # warm-up frames and frames outside the evaluation
                if recorder is not None:
                    recorder.write_output(key, stamp, data)
                if key == 'depth':
                    from treeaspp_depth_ros.conversions.image import depth_image_msg_to_array
                    np.save(pred_dir / f'{stamp}.npy', depth_image_msg_to_array(msg))
                    state['latency'][stamp] = 1000.0 * (rx_time - state['published'][stamp])
                    state['outputs'] += 1

        stop_ns = inputs.pairs[-1].bag_time_ns if args.max_frames is not None else None
        frame_ids: Dict[int, str] = {}
        last_info: Optional[bytes] = None
        # Warm-up: the first frame again and again with stamps outside the bag (1 ns, 2 ns,
        # ...) until depth comes back (DDS drops samples sent before both ends have matched),
        # then a few more, so that one-off costs (shared-memory segments, the first
        # convolutions) are not counted as latency or drops.
        first = next(_playback(inputs.reader, topics, info_topic or '', None))
        warm = list(_playback(inputs.reader, topics, info_topic or '', first[0]))
        warm_stamp = 0
        deadline = time.monotonic() + args.node_timeout
        while not state['warm'] or len(state['warm']) < WARMUP_FRAMES:
            if time.monotonic() > deadline:
                tail = f':\n{node_proc.log_tail()}' if node_proc is not None else ''
                raise CommandError(f'the depth node in {namespace} published no depth for '
                                   f'warm-up frames within {args.node_timeout:g} s{tail}')
            warm_stamp += 1
            for _, topic, raw in warm:
                pub = image_pub if topic == inputs.image_topic else info_pub
                msgtype = inputs.image_type if topic == inputs.image_topic else bagio.CAMERA_INFO
                pub.publish(_restamped(raw, msgtype, warm_stamp))
            wait_until = time.monotonic() + (5.0 if state['warm'] else 0.5)
            while warm_stamp not in state['warm'] and time.monotonic() < wait_until:
                _sleep_until(time.monotonic() + 0.01, drain)
        _sleep_until(time.monotonic() + 0.1, drain)
        received.clear()

        started = time.monotonic()
        bag_start: Optional[int] = None
        for timestamp, topic, raw in _playback(inputs.reader, topics, info_topic or '', stop_ns):
            if bag_start is None:
                bag_start = timestamp
            _sleep_until(started + (timestamp - bag_start) * 1e-9 / args.rate, drain)
            if clock_pub is not None:
                clock_pub.publish(_clock(timestamp))
            if topic == info_topic:
                info_pub.publish(raw)
                last_info = raw
                continue
            msg = bagio.deserialize(raw, inputs.image_type)
            stamp = bagio.stamp_ns(msg)
            frame_ids[stamp] = str(msg.header.frame_id)
            state['published'][stamp] = time.monotonic()
            image_pub.publish(raw)
            if recorder is not None and stamp in pairs:
                recorder.write_input(stamp, raw, _matching_info(last_info, stamp),
                                     frame_ids[stamp])
        playback_s = time.monotonic() - started
        expected = {s for s in state['published'] if s in pairs}
        last = max(expected) if expected else None
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            drain()
            # The node publishes in input order and drops older frames for newer ones, so once
            # the last frame's depth is in, whatever is missing was dropped.
            if expected <= set(state['latency']) or last in state['latency']:
                break
            time.sleep(0.02)
        time.sleep(0.2)
        drain()
        if node_proc is not None and not node_proc.alive() and not state['latency']:
            raise CommandError(f'the depth node exited during playback:\n{node_proc.log_tail()}')
        return {'pred_dir': pred_dir, 'latency': state['latency'], 'playback_s': playback_s,
                'published': len(expected), 'namespace': namespace, 'domain_id': domain,
                'node_log': node_proc.log_tail(5) if node_proc is not None else None}
    finally:
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        rclpy.try_shutdown(context=context)
        if spin_thread is not None:
            spin_thread.join(timeout=2.0)
        if node_proc is not None:
            node_proc.stop()


def _matching_info(raw: Optional[bytes], stamp: int) -> Optional[bytes]:
    """Return the last camera_info, restamped to the image if its stamp differs (exact sync)."""
    if raw is None:
        return None
    msg = bagio.deserialize(raw, bagio.CAMERA_INFO)
    return raw if bagio.stamp_ns(msg) == stamp else _restamped(raw, bagio.CAMERA_INFO, stamp)


def _clock(timestamp: int):
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock
    return Clock(clock=Time(sec=int(timestamp // 10**9), nanosec=int(timestamp % 10**9)))


def _sleep_until(target: float, drain) -> None:
    while True:
        drain()
        remaining = target - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(remaining, 0.005))


def _wait_for_node(node, node_proc: Optional[NodeProcess], image_pub, info_pub, namespace: str,
                   timeout: float, attach: Optional[str]) -> None:
    """Until the node subscribes to our image topic and publishes depth to us."""
    deadline = time.monotonic() + timeout
    depth_topic = f'{namespace}/depth/image'
    while time.monotonic() < deadline:
        if node_proc is not None and not node_proc.alive():
            raise CommandError(
                f'the depth node exited with status {node_proc.process.returncode} before it '
                f'was ready:\n{node_proc.log_tail()}')
        if image_pub.get_subscription_count() > 0 and info_pub.get_subscription_count() > 0 \
                and node.count_publishers(depth_topic) > 0:
            time.sleep(0.5)  # let the remaining endpoints (camera_info, outputs) match
            return
        time.sleep(0.05)
    where = f'attached namespace {namespace}' if attach else 'the node started here'
    tail = f':\n{node_proc.log_tail()}' if node_proc is not None else ''
    raise CommandError(f'no depth node in {where} subscribed to {namespace}/image within '
                       f'{timeout:g} s{tail}')


def _score(args, inputs: evaluation.EvalInputs, acc: evaluation.MetricAccumulator,
           collected: Dict[str, object], scratch: Path) -> Dict[str, object]:
    wanted = set(evaluation.sample_indices(len(inputs.pairs), args.samples))
    samples: List[Dict[str, object]] = []
    latency: Dict[int, float] = collected['latency']
    dropped = []
    for frame in evaluation.iter_frames(inputs):
        path = collected['pred_dir'] / f'{frame.pair.stamp_ns}.npy'
        if not path.is_file():
            dropped.append(frame.pair.index)
            continue
        pred = np.load(path)
        gt = evaluation.decode_depth(inputs, frame)
        acc.add(frame.pair, pred, gt, {'latency_ms': latency.get(frame.pair.stamp_ns)})
        if frame.pair.index in wanted:
            samples.append({'index': frame.pair.index,
                            'rgb': evaluation.decode_rgb(inputs, frame).copy(),
                            'pred': evaluation.fit_to(pred, gt.shape), 'gt': gt})
    values = np.array(list(latency.values()), dtype=np.float64)
    received = len(latency)
    out: Dict[str, object] = {
        'fps': received / collected['playback_s'] if collected['playback_s'] > 0 else 0.0,
        'rate': args.rate,
        'published': collected['published'],
        'received': received,
        'dropped': len(dropped),
        'dropped_indices': dropped,
        'drop_rate': len(dropped) / max(len(inputs.pairs), 1),
        'playback_s': collected['playback_s'],
        'namespace': collected['namespace'],
        'domain_id': collected['domain_id'],
        'clock': bool(args.clock),
        'samples': samples,
    }
    if values.size:
        out['latency_ms'] = {'mean': float(values.mean()), 'p50': float(np.percentile(values, 50)),
                             'p95': float(np.percentile(values, 95)),
                             'max': float(values.max())}
    if received == 0:
        raise CommandError(
            f'the depth node published no depth for any of the {len(inputs.pairs)} frames '
            f'played from {inputs.bag}' + (f':\n{collected["node_log"]}'
                                           if collected.get('node_log') else ''))
    return out
