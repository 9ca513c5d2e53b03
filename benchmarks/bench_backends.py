"""
Backends side by side: batch-1 network latency per backend and variant at 320x256, in one run.

For every variant (random weights: timing does not depend on their values) and backend (torch
eager NCHW, torch channels_last, ONNX Runtime CPU, OpenVINO CPU, and the INT8 exports on both):
latency p50/p95 of the network call on a prepared normalised input, and the achieved GFLOP/s
(the model's GFLOPs from FlopCounterMode, multiply and add counted separately, over p50) as a
fraction of a 2048x2048 float32 matmul's rate at the same thread count. The backends and the
matmul are timed in interleaved rounds, because a shared machine's speed drifts within a run
(the matmul rate alone also before and after). Then the depth node end to end over DDS with the
fastest CPU backend (INT8 included) against that backend's model-only rate
(`DepthEstimator.predict` on the same 640x480 frame), measured before and after the node run.
INT8 accuracy: the shipped demo weights (trained, metric, 64x64) on the 50 7-Scenes kitchen
frames, median-scaled AbsRel, fp32 against INT8 calibrated on the first 16 frames.

``--torch-layout`` instead compares torch's NCHW and channels_last layouts in interleaved
rounds (so load drift on a shared machine hits both alike) and writes torch_layout.json: the
default layout `inference.TORCH_CHANNELS_LAST` is chosen from it.

Usage: python -m benchmarks.bench_backends [--threads N] [--runs 20] [--seconds 15]
    [--variants tree_aspp ...] [--skip-node] [--skip-int8-accuracy] [--output FILE]
    python -m benchmarks.bench_backends --torch-layout [--rounds 15]
"""

import argparse
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import Dict, List

from benchmarks.bench_node import frames_source
from benchmarks.common import (add_output_option, machine_info, percentile, resolve_output,
                               time_calls, write_json)
import numpy as np
import torch
from treeaspp_depth_ros.backends import is_installed
from treeaspp_depth_ros.checkpoint import save_checkpoint
from treeaspp_depth_ros.data.layouts import color_frames
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.model import DepthNet, VARIANTS
from treeaspp_depth_ros.model.cost import gflops, interleaved_times_ms
from treeaspp_depth_ros.onnx_export import calibration_inputs, export_onnx, quantize_int8

KITCHEN = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / '7scenes-redkitchen'
SIZE = (320, 256)


def matmul_gflops(runs: int = 10) -> float:
    """Rate of a 2048x2048 float32 matmul at the current torch thread count (median)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    times = time_calls(lambda: torch.mm(a, b), runs, warmup=2)
    return 2 * 2048 ** 3 / (percentile(times, 50) * 1e-3) / 1e9


def backend_configs(weights: Path, onnx_path: Path, int8_path: Path, threads: int) -> Dict:
    """Name -> DepthEstimator for each installed backend (the estimators' runners are timed)."""
    configs = {
        'torch': lambda: DepthEstimator(weights, device='cpu', input_size=SIZE,
                                        backend='torch', channels_last=False),
        'torch_channels_last': lambda: DepthEstimator(weights, device='cpu', input_size=SIZE,
                                                      backend='torch', channels_last=True)}
    for backend in ('onnxruntime', 'openvino'):
        if not is_installed(backend):
            continue
        configs[backend] = (lambda b=backend: DepthEstimator(
            onnx_path, device='cpu', backend=b, cpu_threads=threads))
        if int8_path is not None:
            configs[f'{backend}_int8'] = (lambda b=backend: DepthEstimator(
                int8_path, device='cpu', backend=b, cpu_threads=threads))
    return configs


def latency_rows(variant: str, folder: Path, threads: int, runs: int) -> List:
    """Latency and fraction of the matmul rate for every backend on one variant, interleaved."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = DepthNet(variant).eval()
    model_gflops = gflops(net, *SIZE)
    weights = save_checkpoint(folder / f'{variant}.pt', net)
    onnx_path = export_onnx(weights, folder / f'{variant}.onnx', SIZE)
    int8_path = None
    if variant == 'tree_aspp' and KITCHEN.is_dir() and is_installed('onnxruntime'):
        probe = DepthEstimator(weights, device='cpu', input_size=SIZE)
        int8_path = quantize_int8(onnx_path, folder / f'{variant}_int8.onnx', calibration_inputs(
            color_frames(KITCHEN, limit=16)[0], lambda rgb: probe.preprocess([rgb]).numpy()))
    x = torch.randn(1, 3, SIZE[1], SIZE[0])
    estimators = {name: make() for name, make in
                  backend_configs(weights, onnx_path, int8_path, threads).items()}
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    calls = {name: (lambda e=estimator: e.runner(x)) for name, estimator in estimators.items()}
    calls['matmul'] = lambda: torch.mm(a, b)
    # interleaved: a shared machine's drift hits every backend alike
    times = interleaved_times_ms(calls, runs, warmup=3)
    rate = 2 * 2048 ** 3 / (percentile(times.pop('matmul'), 50) * 1e-3) / 1e9
    rows = []
    for name, estimator in estimators.items():
        p50 = percentile(times[name], 50)
        achieved = model_gflops / (p50 * 1e-3)
        rows.append({'variant': variant, 'backend': name, 'runner': estimator.describe_backend(),
                     'p50_ms': round(p50, 2), 'p95_ms': round(percentile(times[name], 95), 2),
                     'model_gflops': round(model_gflops, 2),
                     'achieved_gflops_per_s': round(achieved, 1),
                     'matmul_gflops_same_rounds': round(rate, 1),
                     'fraction_of_matmul_rate': round(achieved / rate, 3)})
        print(rows[-1], flush=True)
    return rows


def torch_layout(rounds: int) -> Dict:
    """NCHW against channels_last, interleaved, per variant at 1 and 2 threads."""
    rows = []
    x = torch.randn(1, 3, SIZE[1], SIZE[0])
    x_last = x.contiguous(memory_format=torch.channels_last)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for variant in VARIANTS:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                nchw = DepthNet(variant).eval()
            last = DepthNet(variant).eval()
            last.load_state_dict(nchw.state_dict())
            last = last.to(memory_format=torch.channels_last)
            times: Dict[str, List[float]] = {'nchw': [], 'channels_last': []}
            with torch.inference_mode():
                for _ in range(2):
                    nchw(x), last(x_last)
                for _ in range(rounds):
                    for name, call in (('nchw', lambda: nchw(x)),
                                       ('channels_last', lambda: last(x_last))):
                        start = time.perf_counter()
                        call()
                        times[name].append((time.perf_counter() - start) * 1e3)
            row = {'variant': variant, 'threads': threads, 'rounds': rounds}
            for name, values in times.items():
                row[f'{name}_p50_ms'] = round(percentile(values, 50), 1)
                row[f'{name}_min_ms'] = round(min(values), 1)
            row['channels_last_over_nchw_p50'] = round(
                row['channels_last_p50_ms'] / row['nchw_p50_ms'], 3)
            rows.append(row)
            print(row, flush=True)
    return {'benchmark': 'torch_cpu_layout_320x256_batch1', 'machine': machine_info(),
            'load_average': [round(v, 2) for v in os.getloadavg()], 'results': rows}


def int8_accuracy(folder: Path) -> Dict:
    """Median-scaled AbsRel of the shipped demo weights on the 7-Scenes frames, fp32 vs INT8."""
    from treeaspp_depth_ros.data.images import read_depth
    from treeaspp_depth_ros.data.seven_scenes import load_seven_scenes
    from treeaspp_depth_ros.weights import DEMO_WEIGHTS
    from treeaspp_depth_ros.metrics import aggregate_metrics, compute_depth_metrics
    dataset = load_seven_scenes(KITCHEN)
    fp32 = export_onnx(DEMO_WEIGHTS, folder / 'demo.onnx')
    probe = DepthEstimator(DEMO_WEIGHTS, device='cpu')
    int8 = quantize_int8(fp32, folder / 'demo_int8.onnx', calibration_inputs(
        color_frames(KITCHEN, limit=16)[0], lambda rgb: probe.preprocess([rgb]).numpy()))
    result = {'weights': 'shipped demo weights (baseline, 64x64, metric)',
              'frames': f'7scenes-redkitchen, {len(dataset)} frames, INT8 calibrated on the '
                        'first 16', 'protocol': 'median-scaled AbsRel, 0.1-10 m'}
    for name, path in (('torch', DEMO_WEIGHTS), ('onnxruntime_fp32', fp32),
                       ('onnxruntime_int8', int8), ('openvino_int8', int8)):
        backend = name.split('_')[0]
        estimator = DepthEstimator(path, device='cpu', backend=backend)
        metrics = []
        for index, frame in enumerate(dataset.frames):
            gt = read_depth(frame.depth_path, dataset.depth_unit, dataset.depth_invalid)
            metrics.append(compute_depth_metrics(estimator.predict(dataset.rgb(index)),
                                                 np.nan_to_num(gt, nan=0.0)))
        result[f'abs_rel_{name}'] = round(aggregate_metrics(metrics)['abs_rel'], 4)
    result['abs_rel_change_int8_vs_fp32'] = round(
        result['abs_rel_onnxruntime_int8'] - result['abs_rel_onnxruntime_fp32'], 4)
    return result


def model_only(estimator: DepthEstimator, rgb: np.ndarray, runs: int) -> Dict:
    times = time_calls(lambda: estimator.predict(rgb), runs, warmup=3)
    return {'p50_ms': round(percentile(times, 50), 2),
            'fps': round(1000.0 / float(np.mean(times)), 2)}


def node_fps(weights: Path, row_backend: str, threads: int, seconds: float,
             folder: Path) -> Dict:
    """Run the node over DDS with a latency row's backend, fed frames faster than it serves."""
    backend = row_backend.split('_')[0]  # torch_channels_last -> torch, openvino_int8 -> openvino
    from sensor_msgs.msg import Image
    from treeaspp_depth_ros.node.description import describe_depth_node
    from treeaspp_depth_ros.node_launcher import isolated_env, NodeProcess, Probe
    source, rgb, source_name = frames_source()
    domain = 1 + (os.getpid() + 29) % 100
    namespace = f'/bench_backends_{os.getpid()}'
    description = describe_depth_node(
        namespace=namespace, weights=str(weights), device='cpu',
        parameters={'input_width': SIZE[0], 'input_height': SIZE[1], 'cpu_threads': threads,
                    'backend': backend, 'publish_points': False, 'publish_colored': False})
    estimator = DepthEstimator(weights, device='cpu', input_size=SIZE, backend=backend,
                               cpu_threads=threads)
    before = model_only(estimator, rgb, 20)
    probe = Probe(domain, 'bench_backends_probe')
    node = NodeProcess.depth_node(description, isolated_env(domain), folder / 'node.log')
    depth = probe.subscribe(Image, f'{namespace}/depth/image')
    camera = NodeProcess(
        [sys.executable, '-m', 'treeaspp_depth_ros.demo.camera', '--source', source,
         '--rate', '30', '--loop', '--ros-args', '-r', f'__ns:={namespace}'],
        isolated_env(domain), folder / 'camera.log')
    try:
        if not probe.wait_for(lambda: len(depth.messages()) >= 3, 180):
            raise RuntimeError('no depth from the node:\n' + node.log_text()[-2000:])
        time.sleep(2.0)
        depth.clear()
        start = time.monotonic()
        time.sleep(seconds)
        fps = len(depth.arrivals()) / (time.monotonic() - start)
    finally:
        camera.stop()
        node.stop()
        probe.close()
    after = model_only(estimator, rgb, 20)
    model_fps = (before['fps'] + after['fps']) / 2
    return {'backend': row_backend, 'weights': weights.name, 'frames': source_name,
            'outputs': 'depth + depth camera_info',
            'node_fps': round(fps, 2), 'model_only_before': before, 'model_only_after': after,
            'node_fps_vs_model_fps': round(fps / model_fps, 3)}


def _weights_for(row_backend: str, folder: Path) -> Path:
    """Return the tree_aspp file a latency row ran: checkpoint, ONNX export or INT8 export."""
    if row_backend.startswith('torch'):
        return folder / 'tree_aspp.pt'
    return folder / ('tree_aspp_int8.onnx' if row_backend.endswith('_int8') else 'tree_aspp.onnx')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--threads', type=int, default=0, help='CPU threads for every backend '
                        '(0: torch default)')
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--seconds', type=float, default=15.0, help='node measurement window')
    parser.add_argument('--variants', nargs='+', choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument('--skip-node', action='store_true', help='no node end-to-end run')
    parser.add_argument('--skip-int8-accuracy', action='store_true')
    parser.add_argument('--torch-layout', action='store_true',
                        help='only compare torch NCHW and channels_last (torch_layout.json)')
    parser.add_argument('--rounds', type=int, default=15, help='--torch-layout rounds')
    add_output_option(parser, 'backends.json')
    args = parser.parse_args()
    args.output = resolve_output(args.output, 'backends.json')
    if args.torch_layout:
        write_json(torch_layout(args.rounds), args.output.with_name('torch_layout.json')
                   if args.output.name == 'backends.json' else args.output)
        return 0
    if 'tree_aspp' not in args.variants:
        parser.error('--variants must include tree_aspp (the targets are stated for it)')
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ['TREEASPP_DEPTH_CACHE'] = str(folder / 'cache')
        rate_before = matmul_gflops()
        rows = []
        for variant in args.variants:
            rows += latency_rows(variant, folder, threads, args.runs)
        rate_after = matmul_gflops()
        tree = [r for r in rows if r['variant'] == 'tree_aspp']
        torch_p50 = next(r['p50_ms'] for r in tree if r['backend'] == 'torch')
        fp32 = [r for r in tree if not r['backend'].endswith('int8')]
        best = min(fp32, key=lambda r: r['p50_ms'])
        fastest = min(tree, key=lambda r: r['p50_ms'])  # INT8 included
        node = None
        if not args.skip_node:
            node = node_fps(_weights_for(fastest['backend'], folder), fastest['backend'],
                            threads, args.seconds, folder)
        accuracy = None
        if KITCHEN.is_dir() and not args.skip_int8_accuracy:
            accuracy = int8_accuracy(folder)
    result = {
        'benchmark': 'backends_320x256_batch1_cpu',
        'machine': machine_info(),
        'threads': threads,
        'load_average_before': [round(v, 2) for v in load_before],
        'load_average_after': [round(v, 2) for v in os.getloadavg()],
        'matmul_2048_fp32_gflops': {'before': round(rate_before, 1),
                                    'after': round(rate_after, 1)},
        'results': rows,
        'tree_aspp_best_fp32_cpu_backend': best['backend'],
        'tree_aspp_speedup_vs_torch_eager': round(torch_p50 / best['p50_ms'], 3),
        'tree_aspp_best_fraction_of_matmul_rate': best['fraction_of_matmul_rate'],
        'tree_aspp_fastest_cpu_backend': fastest['backend'],
        'tree_aspp_fastest_speedup_vs_torch_eager': round(torch_p50 / fastest['p50_ms'], 3),
        'node_end_to_end': node,
        'int8_accuracy': accuracy,
    }
    write_json(result, args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
