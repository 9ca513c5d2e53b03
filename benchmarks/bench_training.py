"""
Training throughput per Table 1 variant: full optimiser steps at 320x256, batch 16.

One step = depth for target + 2 references, poses both ways, the SC-SfMLearner loss, backward
and Adam, through `treeaspp_depth_training.trainer.Trainer.train_step` (the real loop).
Baseline for the ratios:
the `baseline` variant measured in the same run, in rounds that interleave the variants. On a
GPU the script also measures bf16 / fp16 autocast and channels_last. Usage::

    python -m benchmarks.bench_training [--batch-size 16] [--steps 5]
        [--output benchmarks/results/training.json]
"""

import argparse
from pathlib import Path
import statistics
import tempfile
import time
from typing import Any, Dict, List, Sequence

from benchmarks.common import add_output_option, machine_info, resolve_output, write_json
import torch
from treeaspp_depth_ros.model import VARIANTS
from treeaspp_depth_training.config import load_config
from treeaspp_depth_training.trainer import Trainer


def _trainer(variant: str, batch_size: int, device: str, amp: str, channels_last: bool,
             out: Path) -> Trainer:
    config = load_config('synthetic_tiny', {
        'model.variant': variant, 'data.width': 320, 'data.height': 256,
        'data.synthetic.sequences': 1, 'data.synthetic.frames': batch_size + 2,
        'optim.batch_size': batch_size, 'train.device': device, 'train.amp': amp,
        'train.channels_last': channels_last, 'train.tensorboard': False,
        'train.threads': 0, 'val.format': 'none', 'train.output_dir': str(out / variant)})
    return Trainer(config)


def _timed_step(trainer: Trainer, batch: Dict[str, torch.Tensor]) -> float:
    if trainer.device.type == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.train_step(batch)
    if trainer.device.type == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure_variants(variants: Sequence[str], batch_size: int, steps: int, device: str,
                     amp: str, channels_last: bool, out: Path) -> List[Dict[str, Any]]:
    """Median step time per variant; rounds interleave the variants, so load drift hits all."""
    trainers = {v: _trainer(v, batch_size, device, amp, channels_last, out) for v in variants}
    batches = {v: next(iter(trainer.loader)) for v, trainer in trainers.items()}
    for variant, trainer in trainers.items():
        trainer.train_step(batches[variant])  # warm-up: allocator, cuDNN / oneDNN kernels
    times: Dict[str, List[float]] = {v: [] for v in variants}
    for _ in range(steps):
        for variant, trainer in trainers.items():
            times[variant].append(_timed_step(trainer, batches[variant]))
    rows = []
    for variant in variants:
        step_s = statistics.median(times[variant])
        rows.append({'variant': variant, 'device': str(trainers[variant].device), 'amp': amp,
                     'channels_last': channels_last, 'batch_size': batch_size,
                     'step_s': round(step_s, 4), 'step_s_all': [round(t, 4) for t in
                                                                times[variant]],
                     'samples_per_s': round(batch_size / step_s, 2),
                     'frames_per_s': round(3 * batch_size / step_s, 2)})
    return rows


def measure(variant: str, batch_size: int, steps: int, device: str, amp: str,
            channels_last: bool, out: Path) -> Dict[str, Any]:
    """Step rate of one variant (the data benchmark's reference)."""
    return measure_variants([variant], batch_size, steps, device, amp, channels_last, out)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: default)')
    add_output_option(parser, 'training.json')
    args = parser.parse_args()
    args.output = resolve_output(args.output, 'training.json')
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = [('cpu', 'none', False)]
    if torch.cuda.is_available():
        settings = [('cuda', 'none', False), ('cuda', 'bf16', False), ('cuda', 'bf16', True),
                    ('cuda', 'fp16', True)]
    out = Path(tempfile.mkdtemp(prefix='bench_training_'))
    rows = [row for device, amp, cl in settings
            for row in measure_variants(VARIANTS, args.batch_size, args.steps, device, amp, cl,
                                        out)]
    for row in rows:
        base = next(r for r in rows if r['variant'] == 'baseline' and r['device'] == row['device']
                    and r['amp'] == row['amp'] and r['channels_last'] == row['channels_last'])
        row['speed_vs_baseline'] = round(row['samples_per_s'] / base['samples_per_s'], 3)
    write_json({'benchmark': 'training_step_320x256', 'unit': 'samples (target + 2 refs) / s',
                'machine': machine_info(), 'results': rows}, args.output)


if __name__ == '__main__':
    main()
