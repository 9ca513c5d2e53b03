"""
Input size against time, for 4:3 cameras (640x480): what each size costs to run and to train.

    python -m benchmarks.input_sizes [--sizes 64x64 96x64 128x96 160x128 192x160 256x192]
        [--output benchmarks/results/input_sizes.json]

Per variant and size: the depth network's batch-1 CPU forward time (what the node pays per
frame before upsampling to the camera's resolution) and one training step (batch 8, 3-frame
snippets, the real_video recipe's loss), both as medians in one run, with the ratio to 128x96
(the default weights' size) so machines compare. A 2048x2048 float32 matmul rate is stated too.
"""

import argparse
from pathlib import Path
import sys
import time
from typing import Any, Dict, List, Optional

import torch
from treeaspp_depth_ros.model import DepthNet, PoseNet
from treeaspp_depth_ros.sizes import parse_input_size
from treeaspp_depth_training.config import load_config
from treeaspp_depth_training.trainer import Trainer

from .common import (add_output_option, machine_info, percentile, resolve_output,
                     time_calls, write_json)

SIZES = ('64x64', '96x64', '128x96', '160x128', '192x160', '256x192')
REFERENCE = (128, 96)


def matmul_gflops(n: int = 2048, runs: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = min(time_calls(lambda: a @ b, runs, warmup=1))
    return 2 * n ** 3 / (best / 1e3) / 1e9


def forward_ms(variant: str, size, runs: int) -> float:
    net = DepthNet(variant).eval()
    x = torch.randn(1, 3, size[1], size[0])
    with torch.inference_mode():
        return percentile(time_calls(lambda: net(x), runs), 50)


def train_step_s(variant: str, size, steps: int, scratch: Path) -> float:
    """Median seconds of one real_video training step on synthetic rooms at `size`."""
    config = load_config('real_video', {
        'model.variant': variant, 'data.format': 'synthetic', 'data.add_synthetic': False,
        'data.width': size[0], 'data.height': size[1], 'val.format': 'none',
        'data.synthetic': {'sequences': 6, 'frames': 16, 'trajectory': 'forward', 'seed': 0,
                           'supersample': 1},
        'train.output_dir': str(scratch), 'train.tensorboard': False})
    trainer = Trainer(config)
    try:
        batches = iter(trainer.loader)
        times = []
        for _ in range(steps + 1):
            batch = next(batches)
            start = time.perf_counter()
            trainer.train_step(batch)
            times.append(time.perf_counter() - start)
        return percentile(times[1:], 50)
    finally:
        trainer.close()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', nargs='+', default=list(SIZES))
    parser.add_argument('--variants', nargs='+', default=['baseline', 'tree_aspp'])
    parser.add_argument('--runs', type=int, default=10, help='timed forward passes')
    parser.add_argument('--steps', type=int, default=3, help='timed training steps')
    parser.add_argument('--scratch', type=Path, default=Path('/tmp/input_sizes'))
    add_output_option(parser, 'input_sizes.json')
    args = parser.parse_args(argv)
    args.output = resolve_output(args.output, 'input_sizes.json')
    sizes = [parse_input_size(text) for text in args.sizes]
    result: Dict[str, Any] = {'benchmark': 'input_sizes', 'machine': machine_info(),
                              'matmul_gflops_2048': round(matmul_gflops(), 1), 'rows': []}
    PoseNet()  # build once so the first timed variant does not pay torch's warm-up
    for variant in args.variants:
        rows = []
        for size in sizes:
            rows.append({'variant': variant, 'input_size': '{}x{}'.format(*size),
                         'forward_ms': round(forward_ms(variant, size, args.runs), 2),
                         'train_step_s': round(train_step_s(variant, size, args.steps,
                                                            args.scratch), 3)})
            print(rows[-1], flush=True)
        reference = next((r for r in rows if r['input_size'] == '{}x{}'.format(*REFERENCE)),
                         None)
        for row in rows:
            if reference is not None:
                row['forward_vs_128x96'] = round(row['forward_ms'] / reference['forward_ms'], 2)
                row['train_step_vs_128x96'] = round(
                    row['train_step_s'] / reference['train_step_s'], 2)
        result['rows'].extend(rows)
        write_json(result, args.output, echo=False)
    return 0


if __name__ == '__main__':
    sys.exit(main())
