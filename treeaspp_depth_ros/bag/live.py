"""
Live `bag-eval`: play a bag into ROS 2 against the depth node and score what it publishes.

The node runs as its own process, started from the same description as the launch file and
the tests (:mod:`..node.description`), or is an already running one (`--attach`). This
process publishes the bag's image and camera_info messages unchanged (same bytes, so the
recorded stamps reach the node) at the recorded timing scaled by `--rate`, optionally with
`/clock`, and collects the node's `depth/image` (and for `--record-out` its camera_info and
points). Outputs are matched to inputs by header stamp; latency is publish -> receive on one
monotonic clock, i.e. the real end-to-end time through DDS, conversion and inference; every
paired frame without an output is a drop.
"""

import argparse
import collections
from dataclasses import dataclass, field
import os
from pathlib import Path
import shutil
import tempfile
import threading
import time
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Set, Tuple

import numpy as np

from treeaspp_depth_ros.bag import bagio, evaluation, record
from treeaspp_depth_ros.cli import CommandError
from treeaspp_depth_ros.conversions.stamps import header_stamp_ns, ns_to_stamp

WARMUP_FRAMES = 3
#: node output key -> message type, for the outputs this process subscribes to
OUTPUT_TYPES = {'depth': bagio.IMAGE, 'depth_camera_info': bagio.CAMERA_INFO,
                'points': bagio.POINTCLOUD2}


def default_domain_id() -> int:
    """Pick a domain id unlikely to collide with the user's (0) or a parallel run (pid based)."""
    return 1 + os.getpid() % 100


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


@dataclass
class LiveResult:
    """What the node published for the played frames (predictions are files in `pred_dir`)."""

    pred_dir: Path
    latency_ms: Dict[int, float]  # image stamp -> publish-to-receive time
    playback_s: float
    published: int  # paired frames played
    namespace: str
    domain_id: int
    node_log: Optional[str] = None  # the tail of the log of a node started here


@dataclass
class _Collected:
    """Outputs received so far (filled from the subscription queue by the playing thread)."""

    published_at: Dict[int, float] = field(default_factory=dict)  # stamp -> monotonic time
    latency_ms: Dict[int, float] = field(default_factory=dict)
    warm: Set[int] = field(default_factory=set)  # warm-up stamps with depth back


class BagPlayer:
    """
    Plays a bag's camera stream into a depth node and collects its outputs.

    A context manager: entering starts the node (unless `--attach`) and this process's own
    rclpy participant, leaving stops both. :meth:`play` does the rest.
    """

    def __init__(self, args: argparse.Namespace, inputs: evaluation.EvalInputs,
                 recorder: Optional[record.OutputRecorder], node_parameters: Dict[str, Any],
                 scratch: Path) -> None:
        self.args, self.inputs, self.recorder = args, inputs, recorder
        self.parameters = dict(node_parameters, **({'use_sim_time': True} if args.clock else {}))
        self.scratch = scratch
        self.namespace = '/' + (args.attach or f'treeaspp_bag_eval_{os.getpid()}').strip('/')
        self.domain = args.domain_id if args.domain_id is not None else (
            int(os.environ.get('ROS_DOMAIN_ID', '0') or 0) if args.attach
            else default_domain_id())
        self.pairs = {p.stamp_ns: p for p in inputs.pairs}
        self.compressed = inputs.image_type != bagio.IMAGE
        self.pred_dir = scratch / 'pred'
        self._received: Deque[Tuple[float, str, bytes]] = collections.deque()
        self._collected = _Collected()
        self._node_process = None  # node_launcher.NodeProcess of a node started here
        self._context = None
        self._executor = None
        self._spin_thread: Optional[threading.Thread] = None

    # ---------------------------------------------------------------- bring-up

    def __enter__(self) -> 'BagPlayer':
        from treeaspp_depth_ros.node import dds
        from treeaspp_depth_ros.node_launcher import isolated_env, temporary_env
        if self.args.attach:
            env = dds.large_data_env()
            env['ROS_DOMAIN_ID'] = str(self.domain)
        else:
            threads = getattr(self.args, 'node_threads', None)
            env = isolated_env(self.domain, extra={'OMP_NUM_THREADS': str(int(threads))}
                               if threads else None)
            self._start_node(env)
        try:
            # the large shared-memory profile for sending images: for the whole process, as
            # Fast DDS reads it once, at the process's first participant
            dds.apply_to_this_process()
            # domain and discovery range for this participant
            with temporary_env({k: env[k] for k in (
                    'ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE') if k in env}):
                self._start_participant()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start_node(self, env: Dict[str, str]) -> None:
        from treeaspp_depth_ros.node.description import describe_depth_node
        from treeaspp_depth_ros.node_launcher import NodeProcess
        description = describe_depth_node(namespace=self.namespace, parameters=self.parameters)
        self._node_process = NodeProcess.depth_node(description, env,
                                                    self.scratch / 'node.log')

    def _start_participant(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
        self._context = rclpy.Context()
        rclpy.init(context=self._context, domain_id=self.domain)
        node = self._node = rclpy.create_node(f'bag_eval_player_{os.getpid()}',
                                              context=self._context)
        ns, inputs = self.namespace, self.inputs
        image_topic = f'{ns}/image' + ('/compressed' if self.compressed else '')
        pub_qos = _qos_profile(self.args, inputs.reader.offered_qos(inputs.image_topic))
        self._image_pub = node.create_publisher(
            CompressedImage if self.compressed else Image, image_topic, pub_qos)
        self._info_pub = node.create_publisher(CameraInfo, f'{ns}/camera_info', pub_qos)
        self._clock_pub = node.create_publisher(Clock, '/clock', 10) if self.args.clock \
            else None
        outputs = {'depth': (Image, 'depth/image', 50)}
        if self.recorder is not None:
            outputs['depth_camera_info'] = (CameraInfo, 'depth/camera_info', 50)
            if self.recorder.records('points'):
                outputs['points'] = (PointCloud2, 'points', 10)
        for key, (msg_type, topic, depth) in outputs.items():
            node.create_subscription(msg_type, f'{ns}/{topic}', self._collector(key),
                                     _output_qos(depth), raw=True)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(node)
        self._spin_thread = threading.Thread(target=self._executor.spin, name='bag_eval_spin',
                                             daemon=True)
        self._spin_thread.start()

    def _collector(self, key: str) -> Callable[[bytes], None]:
        def callback(data: bytes) -> None:
            self._received.append((time.monotonic(), key, data))
        return callback

    def __exit__(self, *exc: Any) -> None:
        import rclpy
        if self._executor is not None:
            self._executor.shutdown(timeout_sec=1.0)
        if self._context is not None:
            rclpy.try_shutdown(context=self._context)
        if self._spin_thread is not None:
            self._spin_thread.join(timeout=2.0)
        if self._node_process is not None:
            self._node_process.stop()

    # ---------------------------------------------------------------- playing

    def play(self) -> LiveResult:
        """Wait for the node, warm it up, play the bag, wait for the last outputs."""
        info_topic = self.inputs.camera_info_topic
        self._wait_for_node(self._info_pub if info_topic else self._image_pub)
        if self.compressed and self._node_process is not None:
            raise CommandError('live mode with CompressedImage needs the node started with '
                               'use_compressed; start it yourself and pass --attach')
        self.pred_dir.mkdir()
        self._warm_up()
        playback_s, played = self._play()
        self._wait_for_outputs(played)
        latency = self._collected.latency_ms
        if self._node_process is not None and not self._node_process.alive() and not latency:
            raise CommandError(
                f'the depth node exited during playback:\n{self._node_process.log_tail()}')
        return LiveResult(
            pred_dir=self.pred_dir, latency_ms=latency, playback_s=playback_s,
            published=len(played), namespace=self.namespace, domain_id=self.domain,
            node_log=self._node_process.log_tail(5) if self._node_process is not None
            else None)

    def _wait_for_node(self, info_pub) -> None:
        """Until the node subscribes to our image topic and publishes depth to us."""
        process, timeout = self._node_process, self.args.node_timeout
        deadline = time.monotonic() + timeout
        depth_topic = f'{self.namespace}/depth/image'
        while time.monotonic() < deadline:
            if process is not None and not process.alive():
                raise CommandError(
                    f'the depth node exited with status {process.process.returncode} before '
                    f'it was ready:\n{process.log_tail()}')
            if self._image_pub.get_subscription_count() > 0 and \
                    info_pub.get_subscription_count() > 0 and \
                    self._node.count_publishers(depth_topic) > 0:
                time.sleep(0.5)  # let the remaining endpoints (camera_info, outputs) match
                return
            time.sleep(0.05)
        where = f'attached namespace {self.namespace}' if self.args.attach \
            else 'the node started here'
        raise CommandError(f'no depth node in {where} subscribed to {self.namespace}/image '
                           f'within {timeout:g} s{self._log_suffix()}')

    def _log_suffix(self) -> str:
        process = self._node_process
        return f':\n{process.log_tail()}' if process is not None else ''

    def _topics(self) -> Tuple[List[str], str]:
        info_topic = self.inputs.camera_info_topic
        return [self.inputs.image_topic] + ([info_topic] if info_topic else []), info_topic or ''

    def _warm_up(self) -> None:
        """
        Send the first frame again and again, stamped outside the bag, until depth comes back.

        Stamps 1 ns, 2 ns, ... are never scored. DDS drops samples sent before both ends have
        matched, and a few more frames after the first keep one-off costs (shared-memory
        segments, the first convolutions) out of the measured latency and drops.
        """
        topics, info_topic = self._topics()
        reader, inputs = self.inputs.reader, self.inputs
        first = next(_playback(reader, topics, info_topic, None))
        frame = list(_playback(reader, topics, info_topic, first[0]))
        warm, stamp = self._collected.warm, 0
        deadline = time.monotonic() + self.args.node_timeout
        while len(warm) < WARMUP_FRAMES:
            if time.monotonic() > deadline:
                raise CommandError(f'the depth node in {self.namespace} published no depth for '
                                   f'warm-up frames within {self.args.node_timeout:g} s'
                                   f'{self._log_suffix()}')
            stamp += 1
            for _, topic, raw in frame:
                is_image = topic == inputs.image_topic
                publisher = self._image_pub if is_image else self._info_pub
                publisher.publish(bagio.restamp(
                    raw, inputs.image_type if is_image else bagio.CAMERA_INFO, stamp))
            wait_until = time.monotonic() + (5.0 if warm else 0.5)
            while stamp not in warm and time.monotonic() < wait_until:
                self._sleep_until(time.monotonic() + 0.01)
        self._sleep_until(time.monotonic() + 0.1)
        self._received.clear()

    def _play(self) -> Tuple[float, Set[int]]:
        """Publish the bag at its timing (scaled by --rate); return seconds and paired stamps."""
        from rosgraph_msgs.msg import Clock
        args, inputs = self.args, self.inputs
        topics, info_topic = self._topics()
        stop_ns = inputs.pairs[-1].bag_time_ns if args.max_frames is not None else None
        published_at = self._collected.published_at
        last_info: Optional[bytes] = None
        started = time.monotonic()
        bag_start: Optional[int] = None
        for timestamp, topic, raw in _playback(inputs.reader, topics, info_topic, stop_ns):
            if bag_start is None:
                bag_start = timestamp
            self._sleep_until(started + (timestamp - bag_start) * 1e-9 / args.rate)
            if self._clock_pub is not None:
                self._clock_pub.publish(Clock(clock=ns_to_stamp(timestamp)))
            if topic == info_topic:
                self._info_pub.publish(raw)
                last_info = raw
                continue
            msg = bagio.deserialize(raw, inputs.image_type)
            stamp = header_stamp_ns(msg)
            published_at[stamp] = time.monotonic()
            self._image_pub.publish(raw)
            if self.recorder is not None and stamp in self.pairs:
                self.recorder.write_input(stamp, raw, last_info, str(msg.header.frame_id))
        return time.monotonic() - started, {s for s in published_at if s in self.pairs}

    def _wait_for_outputs(self, played: Set[int]) -> None:
        """Until the last played frame's depth is in, or --drain-timeout."""
        latency = self._collected.latency_ms
        last = max(played) if played else None
        deadline = time.monotonic() + self.args.drain_timeout
        while time.monotonic() < deadline:
            self._drain()
            # The node publishes in input order and drops older frames for newer ones, so once
            # the last frame's depth is in, whatever is missing was dropped.
            if played <= set(latency) or last in latency:
                break
            time.sleep(0.02)
        time.sleep(0.2)
        self._drain()

    # ---------------------------------------------------------------- collecting

    def _sleep_until(self, target: float) -> None:
        while True:
            self._drain()
            remaining = target - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.005))

    def _drain(self) -> None:
        """Handle the outputs received so far: keep depth, record, measure latency."""
        collected, recorder = self._collected, self.recorder
        while self._received:
            rx_time, key, data = self._received.popleft()
            msg = bagio.deserialize(data, OUTPUT_TYPES[key])
            stamp = header_stamp_ns(msg)
            if key == 'depth' and stamp < 10**9:
                collected.warm.add(stamp)
            if stamp not in self.pairs or stamp not in collected.published_at:
                continue  # warm-up frames and frames outside the evaluation
            if recorder is not None:
                recorder.write_output(key, stamp, data)
                if key == 'depth_camera_info':
                    recorder.note_camera(np.reshape(msg.k, (3, 3)), msg.width, msg.height)
            if key == 'depth':
                from treeaspp_depth_ros.conversions.image import depth_image_msg_to_array
                np.save(self.pred_dir / f'{stamp}.npy', depth_image_msg_to_array(msg))
                collected.latency_ms[stamp] = 1000.0 * (rx_time - collected.published_at[stamp])


def run_live(args: argparse.Namespace, inputs: evaluation.EvalInputs,
             acc: evaluation.MetricAccumulator, recorder: Optional[record.OutputRecorder],
             node_parameters: Dict[str, Any]) -> Dict[str, object]:
    """Play, collect, then score the collected depth with the same accumulator as offline."""
    scratch = Path(tempfile.mkdtemp(prefix='treeaspp_live_'))
    try:
        with BagPlayer(args, inputs, recorder, node_parameters, scratch) as player:
            result = player.play()
        return _score(args, inputs, acc, result)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _score(args, inputs: evaluation.EvalInputs, acc: evaluation.MetricAccumulator,
           result: LiveResult) -> Dict[str, object]:
    wanted = set(evaluation.sample_indices(len(inputs.pairs), args.samples))
    samples: List[Dict[str, object]] = []
    latency = result.latency_ms
    dropped = []
    for frame in evaluation.iter_frames(inputs):
        path = result.pred_dir / f'{frame.pair.stamp_ns}.npy'
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
        'fps': received / result.playback_s if result.playback_s > 0 else 0.0,
        'rate': args.rate,
        'published': result.published,
        'received': received,
        'dropped': len(dropped),
        'dropped_indices': dropped,
        'drop_rate': len(dropped) / max(len(inputs.pairs), 1),
        'playback_s': result.playback_s,
        'namespace': result.namespace,
        'domain_id': result.domain_id,
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
            f'played from {inputs.bag}' + (f':\n{result.node_log}' if result.node_log else ''))
    return out
