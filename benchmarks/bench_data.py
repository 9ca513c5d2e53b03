"""
Data pipeline throughput against the training step rate measured in the same run.

* the synthetic generator: frames per second at 320x256 (64-frame forward video);
* the training loader on the SC-Depth layout (JPEG frames at 640x480 decoded, resized to
  320x256, scale-crop + flip, batch 16) with 0, 1 and 2 worker processes;
* baseline: samples/s of one training step (baseline variant, batch 16, 320x256) on this
  machine. The loader must deliver more samples/s than training consumes, or the GPU waits;
  `workers_for_gpu_rate` extrapolates the per-worker rate to a given GPU rate (default: the
  paper's RTX 3090, 50 epochs x 67K samples in 15 h ~ 62 samples/s).

Usage: python -m benchmarks.bench_data [--output benchmarks/results/data.json]
"""

import argparse
import math
from pathlib import Path
import tempfile
import time
from typing import Any, Dict

from benchmarks.bench_training import measure as measure_training
from benchmarks.common import add_output_option, machine_info, resolve_output, write_json
import torch
from torch.utils.data import DataLoader
from treeaspp_depth_ros.data.synthetic import generate_sequence, save_sequence
from treeaspp_depth_training.data.augment import FrameTransform
from treeaspp_depth_training.data.datasets import SequenceDataset
from treeaspp_depth_training.data.scenes import load_sc_depth


PAPER_GPU_SAMPLES_PER_S = 50 * 67_000 / (15 * 3600)


def bench_generator(frames: int) -> Dict[str, Any]:
    rows = {}
    for supersample in (1, 2):
        start = time.perf_counter()
        generate_sequence(0, frames, 320, 256, 'forward', supersample=supersample)
        seconds = time.perf_counter() - start
        rows[f'supersample_{supersample}'] = {'frames': frames, 'seconds': round(seconds, 2),
                                              'frames_per_s': round(frames / seconds, 1)}
    return rows


def make_layout(root: Path, frames: int) -> Path:
    training = root / 'nyu' / 'training'
    for index in range(2):
        sequence = generate_sequence(index, frames, 640, 480, 'forward')
        save_sequence(sequence, training / f'scene_{index}')
    (training / 'train.txt').write_text('scene_0\nscene_1\n')
    return root / 'nyu'


def bench_loader(root: Path, workers: int, batches: int) -> Dict[str, Any]:
    dataset = SequenceDataset(load_sc_depth(root), FrameTransform(320, 256))
    loader = DataLoader(dataset, batch_size=16, shuffle=True, num_workers=workers,
                        drop_last=True)
    count = 0
    start = None
    while count < batches:
        for _ in loader:
            if start is None:  # exclude worker start-up and the first batch
                start = time.perf_counter()
                continue
            count += 1
            if count >= batches:
                break
    seconds = time.perf_counter() - start
    rate = 16 * count / seconds
    return {'workers': workers, 'batches': count, 'samples_per_s': round(rate, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--frames', type=int, default=64)
    parser.add_argument('--batches', type=int, default=6)
    parser.add_argument('--gpu-samples-per-s', type=float, default=PAPER_GPU_SAMPLES_PER_S)
    add_output_option(parser, 'data.json')
    args = parser.parse_args()
    args.output = resolve_output(args.output, 'data.json')
    generator = bench_generator(args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_layout(Path(tmp), args.frames)
        loaders = [bench_loader(root, w, args.batches) for w in (0, 1, 2)]
        train = measure_training('baseline', 16, 1, 'cuda' if torch.cuda.is_available()
                                 else 'cpu', 'none', False, Path(tmp) / 'run')
    per_worker = loaders[1]['samples_per_s']
    for row in loaders:
        row['vs_training_step_rate'] = round(row['samples_per_s'] / train['samples_per_s'], 2)
    write_json({
        'benchmark': 'data_pipeline', 'machine': machine_info(),
        'synthetic_generator_320x256': generator,
        'loader_sc_depth_640x480_jpeg_to_320x256_batch16': loaders,
        'baseline_training_step': train,
        'gpu_samples_per_s_assumed': round(args.gpu_samples_per_s, 1),
        'workers_for_gpu_rate': math.ceil(args.gpu_samples_per_s / per_worker),
    }, args.output)


if __name__ == '__main__':
    main()
