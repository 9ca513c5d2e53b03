"""
GPU check of the model code only (no ROS): latency per backend, fp16 agreement, training rate.

Run by ``benchmarks/gpu_check.sh`` on an NVIDIA machine whose Python and torch may differ from
the development environment: tree_aspp at 320x256, batch 1 - torch CUDA fp32 and fp16
(autocast) latency, TensorRT FP16 through this package's engine cache and runner when
tensorrt and onnx import, fp16 (and TensorRT) depth against fp32, and one training figure
(img/s at 320x256, batch 16, bf16 autocast + channels_last; the paper's RTX 3090: about 62
img/s). Every part that cannot run records why instead of failing the whole check.

Usage: python -m benchmarks.gpu_check [--output benchmarks/results/gpu_check.json]
"""

import argparse
import importlib.util
import os
from pathlib import Path
import sys
import tempfile
import time
import traceback
from typing import Any, Callable, Dict, List

from benchmarks.common import (add_output_option, machine_info, percentile, resolve_output,
                               write_json)
import torch
from treeaspp_depth_ros.model import DepthNet, PoseNet

SIZE = (320, 256)  # width, height


def _cuda_times(fn: Callable[[], Any], runs: int, warmup: int = 10) -> List[float]:
    """Milliseconds per call, synchronised, after warm-up."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _summary(times: List[float]) -> Dict[str, float]:
    return {'p50_ms': round(percentile(times, 50), 3), 'p95_ms': round(percentile(times, 95), 3),
            'runs': len(times)}


def _relative_error(depth: torch.Tensor, reference: torch.Tensor) -> Dict[str, float]:
    error = ((depth.float() - reference.float()).abs() / reference.float().abs())
    return {'max_rel': float(error.max()), 'mean_rel': float(error.mean())}


def torch_latency(net: DepthNet, x: torch.Tensor, runs: int) -> Dict[str, Any]:
    """fp32 and fp16-autocast latency (NCHW and channels_last) and fp16 against fp32 depth."""
    out: Dict[str, Any] = {}
    with torch.no_grad():
        reference = 1.0 / net(x).float()
    for name, dtype, layout in (('fp32', torch.float32, False), ('fp16', torch.float16, False),
                                ('fp16_channels_last', torch.float16, True)):
        model = net.to(memory_format=torch.channels_last if layout else torch.contiguous_format)
        data = x.contiguous(memory_format=torch.channels_last) if layout else x

        def call():
            with torch.no_grad(), torch.autocast('cuda', dtype=dtype,
                                                 enabled=dtype != torch.float32):
                return model(data)
        out[name] = _summary(_cuda_times(call, runs))
        out[name]['vs_fp32'] = _relative_error(1.0 / call().float(), reference)
    net.to(memory_format=torch.contiguous_format)
    return out


def tensorrt_latency(net: DepthNet, x: torch.Tensor, runs: int, folder: Path) -> Dict[str, Any]:
    """Export, build (or load) the FP16 engine through the package's cache, time the runner."""
    for package in ('tensorrt', 'onnx'):
        if importlib.util.find_spec(package) is None:
            return {'skipped': f'{package} is not installed here'}
    import tensorrt
    from treeaspp_depth_ros.backends.engine_cache import EngineCache
    from treeaspp_depth_ros.backends.tensorrt_runner import TensorRtRunner
    from treeaspp_depth_ros.checkpoint import save_checkpoint
    from treeaspp_depth_ros.onnx_export import export_onnx, read_onnx_info
    weights = save_checkpoint(folder / 'tree_aspp.pt', net.cpu())
    net.cuda()
    start = time.perf_counter()
    info = read_onnx_info(export_onnx(weights, folder / 'tree_aspp.onnx', SIZE, depth_scale=1.0))
    export_s = time.perf_counter() - start
    cache = EngineCache(folder / 'engines')
    start = time.perf_counter()
    runner = TensorRtRunner(info, torch.device('cuda'), cache)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    cached = TensorRtRunner(info, torch.device('cuda'), cache)  # second start: from the cache
    load_s = time.perf_counter() - start
    with torch.inference_mode():
        reference = 1.0 / net(x).float()
        depth = runner(x)
    result = {'tensorrt': tensorrt.__version__, 'export_s': round(export_s, 1),
              'engine_build_s': round(build_s, 1), 'engine_status': runner.cache_status,
              'second_start_s': round(load_s, 2), 'second_start_status': cached.cache_status,
              'vs_torch_fp32': _relative_error(depth, reference)}
    result.update(_summary(_cuda_times(lambda: runner(x), runs)))
    return result


def training_rate(steps: int, batch: int = 16) -> Dict[str, Any]:
    """img/s of full training steps (3 frames per sample) with bf16 autocast + channels_last."""
    try:  # the real loop when the training package's dependencies are installed here
        from benchmarks.bench_training import _timed_step, _trainer
        with tempfile.TemporaryDirectory() as folder:
            trainer = _trainer('tree_aspp', batch, 'cuda', 'bf16', True, Path(folder))
            data = next(iter(trainer.loader))
            for _ in range(3):
                trainer.train_step(data)
            times = [_timed_step(trainer, data) for _ in range(steps)]
        how = 'treeaspp_depth_training Trainer.train_step (synthetic rooms)'
    except ImportError as error:  # model + loss only, the same computation without the loader
        how = f'model + SelfSupervisedLoss step (training package unavailable: {error})'
        times = _bare_training_steps(steps, batch)
    step_s = percentile(times, 50)
    return {'variant': 'tree_aspp', 'batch': batch, 'size': f'{SIZE[0]}x{SIZE[1]}',
            'amp': 'bf16', 'channels_last': True, 'how': how, 'step_s_p50': round(step_s, 4),
            'img_per_s': round(batch / step_s, 1), 'paper_rtx3090_img_per_s': 62}


def _bare_training_steps(steps: int, batch: int) -> List[float]:
    from treeaspp_depth_ros.losses import SelfSupervisedLoss
    device = torch.device('cuda')
    depth_net = DepthNet('tree_aspp').to(device).to(memory_format=torch.channels_last).train()
    pose_net = PoseNet().to(device).to(memory_format=torch.channels_last).train()
    params = list(depth_net.parameters()) + list(pose_net.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-4)
    loss_fn = SelfSupervisedLoss()
    width, height = SIZE
    frames = [torch.randn(batch, 3, height, width, device=device).contiguous(
        memory_format=torch.channels_last) for _ in range(3)]
    K = torch.tensor([[250.0, 0, width / 2], [0, 250.0, height / 2], [0, 0, 1]],
                     device=device).expand(batch, 3, 3)

    def step() -> None:
        tgt, refs = frames[0], frames[1:]
        with torch.autocast('cuda', dtype=torch.bfloat16):
            tgt_depths = [1.0 / d.float() for d in depth_net(tgt)]
            ref_depths = [[1.0 / d.float() for d in depth_net(ref)] for ref in refs]
            poses = [pose_net(tgt, ref).float() for ref in refs]
            poses_inv = [pose_net(ref, tgt).float() for ref in refs]
        total, _ = loss_fn(tgt, refs, K, tgt_depths, ref_depths, poses, poses_inv)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
    for _ in range(3):
        step()
    return [t / 1e3 for t in _cuda_times(step, steps, warmup=0)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--runs', type=int, default=200)
    parser.add_argument('--train-steps', type=int, default=20)
    add_output_option(parser, 'gpu_check.json')
    args = parser.parse_args()
    args.output = resolve_output(args.output, 'gpu_check.json')
    result: Dict[str, Any] = {'benchmark': 'gpu_check_tree_aspp_320x256_batch1',
                              'machine': machine_info()}
    if not torch.cuda.is_available():
        result['error'] = 'no CUDA device visible to torch'
        write_json(result, args.output)
        return 1
    torch.backends.cudnn.benchmark = True
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = DepthNet('tree_aspp').eval()
    net = net.cuda()
    width, height = SIZE
    x = torch.randn(1, 3, height, width, device='cuda')
    os.environ.setdefault('TREEASPP_DEPTH_CACHE', tempfile.mkdtemp(prefix='treeaspp_gpu_'))
    parts = (('torch_cuda', lambda: torch_latency(net, x, args.runs)),
             ('tensorrt_fp16', lambda: tensorrt_latency(
                 net, x, args.runs, Path(os.environ['TREEASPP_DEPTH_CACHE']))),
             ('training', lambda: training_rate(args.train_steps)))
    for name, run in parts:
        start = time.perf_counter()
        try:
            result[name] = run()
        except Exception as error:  # noqa: B902 - record what failed, keep the other parts
            result[name] = {'error': f'{type(error).__name__}: {error}',
                            'traceback': traceback.format_exc()[-2000:]}
        result[name]['wall_s'] = round(time.perf_counter() - start, 1)
        print(f'[gpu_check] {name} done in {result[name]["wall_s"]} s', file=sys.stderr,
              flush=True)
        write_json(result, args.output, echo=False)  # what is done survives a timeout
    trt = result.get('tensorrt_fp16', {})
    if 'p50_ms' in trt:
        result['target_tensorrt_fp16_le_2ms'] = trt['p50_ms'] <= 2.0
    write_json(result, args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
