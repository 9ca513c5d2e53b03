"""
Model latency per variant at 320x256, batch 1 (CPU here; GPU with fp16/bf16 when present).

Baseline for the ratios: the `baseline` variant (SC-SfMLearner's DispResNet) measured in the same
run. Usage: python -m benchmarks.bench_model [--runs N] [--output benchmarks/results/model.json]
"""

import argparse

from benchmarks.common import (add_output_option, machine_info, percentile, resolve_output,
                               time_calls, write_json)
import torch
from treeaspp_depth_ros.model import DepthNet, VARIANTS


def measure(variant: str, device: torch.device, dtype: torch.dtype, runs: int) -> dict:
    net = DepthNet(variant).eval().to(device)
    x = torch.randn(1, 3, 256, 320, device=device)
    autocast = device.type == 'cuda' and dtype != torch.float32

    def forward():
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=autocast):
            net(x)

    times = time_calls(forward, runs)
    return {'variant': variant, 'device': str(device), 'dtype': str(dtype).replace('torch.', ''),
            'p50_ms': round(percentile(times, 50), 2), 'p95_ms': round(percentile(times, 95), 2),
            'fps': round(1000.0 / percentile(times, 50), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--runs', type=int, default=20)
    add_output_option(parser, 'model.json')
    args = parser.parse_args()
    args.output = resolve_output(args.output, 'model.json')
    configs = [(torch.device('cpu'), torch.float32)]
    if torch.cuda.is_available():
        dtypes = (torch.float32, torch.float16, torch.bfloat16)
        configs += [(torch.device('cuda'), dtype) for dtype in dtypes]
    rows = [measure(v, d, t, args.runs) for d, t in configs for v in VARIANTS]
    for row in rows:
        base = next(r for r in rows if r['variant'] == 'baseline' and r['device'] == row['device']
                    and r['dtype'] == row['dtype'])
        row['latency_vs_baseline'] = round(row['p50_ms'] / base['p50_ms'], 3)
    write_json({'benchmark': 'model_latency_320x256_batch1', 'machine': machine_info(),
                'results': rows}, args.output)


if __name__ == '__main__':
    main()
