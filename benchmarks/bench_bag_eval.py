"""
Offline `bag-eval` throughput (frames/s) on CPU versus model-only throughput, in one run.

The bag is the shared 7-Scenes video (50 frames, 640x480) when present, else a synthetic
640x480 sequence. Measured in the same process, same weights and input size:

- `model_only`: the network forward on a preprocessed batch-1 tensor (the baseline);
- `estimator_predict`: `DepthEstimator.predict` on a 640x480 frame (resize, normalise, forward,
  resize back), i.e. what the node and offline evaluation run per frame;
- `bag_eval_offline`: the whole `bag-eval` (bag reading, decoding, prediction, metrics under
  both scalings, report and plots) divided by the frames;
- `bag_eval_offline_record`: the same with `--record-out` (depth, camera_info, xyzrgb cloud).

Usage: python -m benchmarks.bench_bag_eval [--weights W] [--input-size 320x256] [--runs N]
"""

import argparse
import json
import os
from pathlib import Path
import tempfile
import time

from benchmarks.common import (add_output_option, machine_info, percentile, resolve_output,
                               time_calls, write_json)
import numpy as np
import torch
from treeaspp_depth_ros.bag.dataset_writer import write_dataset_bag
from treeaspp_depth_ros.checkpoint import save_checkpoint
from treeaspp_depth_ros.cli import main as cli_main
from treeaspp_depth_ros.data.layouts import load_dataset
from treeaspp_depth_ros.data.records import from_arrays
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.model import DepthNet

KITCHEN = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / '7scenes-redkitchen'
TOPICS = ['--image-topic', '/camera/image_raw', '--depth-topic', '/camera/depth_gt']


def build_bag(folder: Path) -> tuple:
    if KITCHEN.is_dir():
        dataset, name = load_dataset('7scenes', KITCHEN), '7scenes-redkitchen (50 frames)'
    else:
        from treeaspp_depth_ros.data.synthetic import generate_sequence
        seq = generate_sequence(seed=0, num_frames=30, width=640, height=480)
        dataset = from_arrays(seq.images, seq.intrinsics, seq.depths)
        name = 'synthetic 640x480 (30 frames)'
    bag = folder / 'bag'
    write_dataset_bag(dataset, bag)
    return bag, name, dataset


def bag_eval_fps(bag: Path, weights: Path, size: str, folder: Path, runs: int,
                 record: bool) -> dict:
    values, reported = [], []
    for run in range(runs):
        out = folder / f'report_{record}_{run}'
        argv = ['bag-eval', str(bag), *TOPICS, '--weights', str(weights), '--input-size', size,
                '--output', str(out)]
        if record:
            argv += ['--record-out', str(folder / f'rec_{run}')]
        started = time.perf_counter()
        assert cli_main(argv) == 0
        elapsed = time.perf_counter() - started
        report = json.loads((out / 'report.json').read_text())
        values.append(report['frames'] / elapsed)
        reported.append(report['fps'])
    return {'fps_end_to_end_p50': round(percentile(values, 50), 2),
            'fps_evaluation_loop_p50': round(percentile(reported, 50), 2),
            'runs': runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--weights', type=Path, help='checkpoint (default: random tree_aspp)')
    parser.add_argument('--input-size', default='320x256')
    parser.add_argument('--runs', type=int, default=3)
    add_output_option(parser, 'bag_eval.json')
    args = parser.parse_args()
    args.output = resolve_output(args.output, 'bag_eval.json')
    width, height = (int(v) for v in args.input_size.split('x'))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        weights = args.weights
        if weights is None:
            torch.manual_seed(0)
            weights = folder / 'random_tree_aspp.pt'
            save_checkpoint(weights, DepthNet('tree_aspp'))
        bag, bag_name, dataset = build_bag(folder)
        estimator = DepthEstimator(weights, device='cpu', input_size=(width, height))
        rgb = dataset.rgb(0)
        batch = estimator.preprocess([rgb])

        def forward():
            with torch.inference_mode():
                estimator.net(batch)

        model_ms = time_calls(forward, 20)
        predict_ms = time_calls(lambda: estimator.predict(rgb), 20)
        offline = bag_eval_fps(bag, weights, args.input_size, folder, args.runs, False)
        offline_record = bag_eval_fps(bag, weights, args.input_size, folder, 1, True)
    model_fps = 1000.0 / percentile(model_ms, 50)
    result = {
        'benchmark': 'bag_eval_offline_throughput_cpu',
        'machine': machine_info(),
        'bag': bag_name,
        'image_size': [int(rgb.shape[1]), int(rgb.shape[0])],
        'input_size': [width, height],
        'variant': estimator.variant,
        'weights': str(args.weights) if args.weights else 'random tree_aspp',
        'model_only': {'p50_ms': round(percentile(model_ms, 50), 2),
                       'p95_ms': round(percentile(model_ms, 95), 2),
                       'fps': round(model_fps, 2)},
        'estimator_predict': {'p50_ms': round(percentile(predict_ms, 50), 2),
                              'fps': round(1000.0 / percentile(predict_ms, 50), 2)},
        'bag_eval_offline': offline,
        'bag_eval_offline_record': offline_record,
        # Other jobs on the machine slow torch's threads down a lot; readers can judge.
        'load_average_1min_before_after': [round(load_before[0], 2),
                                           round(os.getloadavg()[0], 2)],
        'ratio_offline_eval_to_model_only': round(
            offline['fps_end_to_end_p50'] / model_fps, 3),
        'note': 'fps_end_to_end includes process-internal startup (model load, bag pairing '
                'pass, report/plots); fps_evaluation_loop is the per-frame loop only. Same '
                'process, same weights, same input size as the model-only baseline.',
    }
    assert np.isfinite(result['ratio_offline_eval_to_model_only'])
    write_json(result, args.output)


if __name__ == '__main__':
    main()
