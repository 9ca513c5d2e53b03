"""
Depth node end to end at 640x480 on CPU versus model-only inference, in one run.

Measured with the same weights and network input size:

- ``model_only``: ``DepthEstimator.predict`` on a 640x480 RGB frame in this process (resize,
  normalise, network, resize back): the baseline the node is compared with;
- ``node_depth_only`` / ``node_all_outputs``: the depth node as its own process, fed by the
  demo camera (another process) streaming 640x480 rgb8 best effort faster than the node can
  keep up (so it is always busy), received here over DDS: output frames per second and latency
  from image stamp to arrival here (p50/p95); plus the node's own per-frame timings from its
  diagnostics (inference versus the worker's whole time on a frame);
- ``pointcloud``: building an organised 640x480 PointCloud2 (xyz and xyzrgb) with the cached
  builder versus rebuilding rays and buffers every frame (the baseline).

All processes share this machine's cores, so the end-to-end figures include the camera's and
this receiver's CPU use; ``node_internal_overhead`` isolates the node's own cost.

Usage: python -m benchmarks.bench_node [--weights W] [--input-size 320x256] [--seconds 20]
"""

import argparse
import os
from pathlib import Path
import sys
import tempfile
import time

from benchmarks.common import (add_output_option, machine_info, percentile, resolve_output,
                               time_calls, write_json)
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
import torch
from treeaspp_depth_ros.checkpoint import save_checkpoint
from treeaspp_depth_ros.conversions.pointcloud import PointCloudBuilder
from treeaspp_depth_ros.conversions.stamps import header_stamp_ns
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.model import DepthNet
from treeaspp_depth_ros.node.description import describe_depth_node
from treeaspp_depth_ros.node_launcher import isolated_env, NodeProcess, Probe


KITCHEN = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / '7scenes-redkitchen'
K = np.array([[585.0, 0.0, 320.0], [0.0, 585.0, 240.0], [0.0, 0.0, 1.0]])


def frames_source() -> tuple:
    if KITCHEN.is_dir():
        import cv2
        rgb = cv2.cvtColor(cv2.imread(str(KITCHEN / 'frame-000150.color.png')),
                           cv2.COLOR_BGR2RGB)
        return str(KITCHEN), rgb, '7scenes-redkitchen 640x480'
    from treeaspp_depth_ros.data.synthetic import generate_sequence
    return 'synthetic', generate_sequence(7, 1, 640, 480).images[0], 'synthetic 640x480'


def model_only(weights: Path, size, rgb: np.ndarray, runs: int) -> dict:
    estimator = DepthEstimator(weights, device='cpu', input_size=size)
    times = time_calls(lambda: estimator.predict(rgb), runs, warmup=3)
    return {'p50_ms': round(percentile(times, 50), 2), 'p95_ms': round(percentile(times, 95), 2),
            'fps': round(1000.0 / float(np.mean(times)), 2), 'runs': runs}


def node_run(weights: Path, size, source: str, rate: float, seconds: float, all_outputs: bool,
             workdir: Path, domain: int, threads: int) -> dict:
    namespace = f'/bench_{os.getpid()}_{"all" if all_outputs else "depth"}'
    description = describe_depth_node(namespace=namespace, weights=str(weights), device='cpu',
                                      parameters={'input_width': size[0],
                                                  'input_height': size[1],
                                                  'cpu_threads': threads})
    probe = Probe(domain, 'bench_probe')
    node = NodeProcess.depth_node(description, isolated_env(domain),
                                  workdir / f'{namespace[1:]}.log')
    depth = probe.subscribe(Image, f'{namespace}/depth/image')
    diagnostics = probe.subscribe(DiagnosticArray, f'{namespace}/diagnostics')
    if all_outputs:
        for kind, topic in ((CameraInfo, 'depth/camera_info'), (PointCloud2, 'points'),
                            (Image, 'depth/image_colored')):
            probe.subscribe(kind, f'{namespace}/{topic}', maxlen=2)
    camera = NodeProcess(
        [sys.executable, '-m', 'treeaspp_depth_ros.demo.camera', '--source', source,
         '--rate', str(rate), '--loop', '--ros-args', '-r', f'__ns:={namespace}'],
        isolated_env(domain), workdir / f'{namespace[1:]}_camera.log')
    try:
        if not probe.wait_for(lambda: len(depth.messages()) >= 3, 120):
            raise RuntimeError('no depth from the node:\n' + node.log_text()[-2000:])
        time.sleep(2.0)  # settle after start-up
        depth.clear()
        start = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - start
        arrivals = depth.arrivals()
        diag = {kv.key: kv.value for kv in diagnostics.latest().status[0].values}
    finally:
        camera.stop()
        node.stop()
        probe.close()
    latencies = [(arrived - header_stamp_ns(m)) * 1e-6 for arrived, m in arrivals]
    inference, work = float(diag['inference_ms_p50']), float(diag['work_ms_p50'])
    return {
        'outputs': 'depth, camera_info, xyzrgb points, colored' if all_outputs else 'depth',
        'camera_rate_hz': rate,
        'fps': round(len(arrivals) / elapsed, 2),
        'latency_ms_p50': round(percentile(latencies, 50), 1),
        'latency_ms_p95': round(percentile(latencies, 95), 1),
        'frames_received_by_node': int(diag['frames_received']),
        'frames_dropped_by_node': int(diag['frames_dropped']),
        'node_inference_ms_p50': inference,
        'node_work_ms_p50': work,
        'node_internal_overhead': round(work / inference - 1.0, 3),
    }


def pointcloud(runs: int) -> dict:
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 5.0, (480, 640)).astype(np.float32)
    depth[rng.random((480, 640)) < 0.1] = np.nan
    rgb = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    header = Header(frame_id='camera')
    out = {}
    for name, with_rgb in (('xyz', False), ('xyzrgb', True)):
        builder = PointCloudBuilder(with_rgb)
        colour = rgb if with_rgb else None
        cached = time_calls(lambda: builder.build(depth, K, header, colour), runs)
        fresh = time_calls(lambda: PointCloudBuilder(with_rgb).build(depth, K, header, colour),
                           runs)
        out[name] = {'cached_p50_ms': round(percentile(cached, 50), 2),
                     'rebuilt_every_frame_p50_ms': round(percentile(fresh, 50), 2),
                     'bytes': 480 * 640 * builder.point_step}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--weights', type=Path, help='checkpoint (default: random tree_aspp; '
                        'timing does not depend on the weight values)')
    parser.add_argument('--input-size', default='320x256')
    parser.add_argument('--seconds', type=float, default=20.0)
    parser.add_argument('--rate', type=float, default=15.0,
                        help='camera frame rate; above the node rate so it is always busy')
    parser.add_argument('--threads', type=int, default=0,
                        help='PyTorch CPU threads for the model-only runs and the node '
                             '(0: PyTorch default)')
    parser.add_argument('--runs', type=int, default=30)
    add_output_option(parser, 'node.json')
    args = parser.parse_args()
    args.output = resolve_output(args.output, 'node.json')
    size = tuple(int(v) for v in args.input_size.split('x'))
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    source, rgb, source_name = frames_source()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        weights = args.weights or save_checkpoint(workdir / 'tree_aspp.pt', DepthNet('tree_aspp'))
        load_before = os.getloadavg()
        domain = 1 + (os.getpid() + 17) % 100
        # Model-only runs before, between and after the node runs: on a shared machine the
        # load drifts, so each node run is compared with the model runs on either side of it.
        models = [model_only(weights, size, rgb, args.runs)]
        depth_only = node_run(weights, size, source, args.rate, args.seconds, False, workdir,
                              domain, args.threads)
        models.append(model_only(weights, size, rgb, args.runs))
        everything = node_run(weights, size, source, args.rate, args.seconds, True, workdir,
                              domain, args.threads)
        models.append(model_only(weights, size, rgb, args.runs))
        clouds = pointcloud(args.runs)
    baseline_depth = (models[0]['fps'] + models[1]['fps']) / 2
    baseline_all = (models[1]['fps'] + models[2]['fps']) / 2
    result = {
        'benchmark': 'depth_node_640x480_cpu',
        'machine': machine_info(),
        'load_average_before': [round(v, 2) for v in load_before],
        'load_average_after': [round(v, 2) for v in os.getloadavg()],
        'weights': str(args.weights) if args.weights else 'random tree_aspp',
        'input_size': f'{size[0]}x{size[1]}',
        'torch_threads': torch.get_num_threads(),
        'frames': source_name,
        'model_only_runs': models,
        'node_depth_only': depth_only,
        'node_all_outputs': everything,
        'node_fps_vs_adjacent_model_fps': {
            'depth_only': round(depth_only['fps'] / baseline_depth, 3),
            'all_outputs': round(everything['fps'] / baseline_all, 3)},
        'pointcloud_640x480': clouds,
    }
    write_json(result, args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
