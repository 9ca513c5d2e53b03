"""
What the pose network gives the node: odometry, confidence and steadiness, measured.

Every figure comes from ``bag-eval`` (the node's own odometry and confidence code) on a bag
made here:

1. **synthetic walks** (``--weights``, a ``demo_odometry`` checkpoint: its pose network
   measures motion): procedural rooms the generator knows exactly, seeds 30000+ (never used
   in training, which takes 100-131 and validates on 10000+), 100 frames each, the demo's
   64x64 at 10 frames/s;
2. **the real kitchen** (``--real-weights``, default the shipped weights): 7-Scenes
   redkitchen frames 800-999 (held out from the default weights' training, 0-799), every
   ``--stride``-th frame, beside Open3D's RGB-D odometry on the Kinect depth and on ours
   (``bench_slam.run_open3d``; needs ``pip install open3d``);
3. **cost**: depth alone against depth + pose network (+ confidence), interleaved rounds in
   one process after a warm-up, at the real weights' input size.

Usage: python -m benchmarks.motion --weights runs/demo_odometry/best.pth [--output JSON]
"""

import argparse
import json
from pathlib import Path
import sys
import tempfile
import time
from typing import Dict, List, Optional

from benchmarks.common import add_output_option, machine_info, resolve_output, write_json
import numpy as np
from treeaspp_depth_ros.bag.dataset_writer import write_dataset_bag
from treeaspp_depth_ros.cli import main as cli
from treeaspp_depth_ros.data.records import from_arrays
from treeaspp_depth_ros.weights import DEFAULT_WEIGHTS

VIDEO = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / \
    '7scenes-redkitchen-1000'
TOPICS = ['--image-topic', '/camera/image_raw', '--depth-topic', '/camera/depth_gt']
#: the held-out part of the kitchen video (the default weights trained on 0-799)
HELD_OUT = (800, 1000)


def evaluate(bag: Path, weights: Path, out: Path) -> Dict[str, object]:
    """Run bag-eval offline and return its report."""
    if cli(['bag-eval', str(bag), *TOPICS, '--weights', str(weights), '--output', str(out)]):
        raise SystemExit(f'bag-eval failed on {bag}')
    return json.loads((out / 'report.json').read_text())


def headline(report: Dict[str, object]) -> Dict[str, object]:
    """Pick the figures the issue asks for from one report."""
    over = report['over_time']
    odometry, confidence = over.get('odometry', {}), over.get('confidence', {})
    flicker = {k: v for k, v in over.get('flicker', {}).items() if not k.endswith('per_pair')}
    return {
        'frames': report['frames'], 'abs_rel_median_scaled': report['median_scaled']['abs_rel'],
        'ate_similarity_m': odometry.get('ate_similarity', {}).get('rmse_m'),
        'ate_rigid_m': odometry.get('ate_rigid', {}).get('rmse_m'),
        'ate_sim_over_length': odometry.get('ate_sim_over_length'),
        'path_length_m': odometry.get('trajectory_length_m'),
        'estimated_length_m': odometry.get('estimated_length_m'),
        'rpe': odometry.get('rpe'), 'rpe_similarity': odometry.get('rpe_similarity'),
        'resets': odometry.get('resets'),
        'sparsification_gain_at_20pct_vs_oracle': confidence.get('gain_at_20pct_vs_oracle'),
        'ause_vs_oracle': confidence.get('ause_vs_oracle'),
        'ause_random_vs_oracle': confidence.get('ause_random_vs_oracle'),
        'sparsification': {k: confidence.get(k) for k in (
            'removed_fraction', 'abs_rel_confidence_order', 'abs_rel_oracle_order')},
        'scale_drift': over.get('scale_drift'), 'flicker': flicker,
    }


def synthetic(weights: Path, seeds: List[int], scratch: Path) -> Dict[str, object]:
    from treeaspp_depth_ros.data.synthetic import generate_sequence
    walks = {}
    for seed in seeds:
        walk = generate_sequence(seed=seed, num_frames=100, width=64, height=64,
                                 trajectory='forward')
        bag = scratch / f'walk_{seed}'
        write_dataset_bag(from_arrays(walk.images, walk.intrinsics, walk.depths, walk.poses,
                                      fps=10.0), bag)
        walks[str(seed)] = headline(evaluate(bag, weights, scratch / f'walk_{seed}_eval'))
        print(f'walk {seed}:', {k: walks[str(seed)][k] for k in (
            'ate_sim_over_length', 'sparsification_gain_at_20pct_vs_oracle')}, flush=True)
    keys = ('ate_sim_over_length', 'sparsification_gain_at_20pct_vs_oracle', 'ause_vs_oracle',
            'ause_random_vs_oracle')
    mean = {k: float(np.mean([w[k] for w in walks.values()])) for k in keys}
    for kind in ('rpe', 'rpe_similarity'):
        mean[f'{kind}_translation_error_ratio'] = float(np.mean(
            [w[kind]['translation_error_ratio'] for w in walks.values()]))
    return {'walks': walks, 'mean': mean}


def real_video(weights: Path, stride: int, scratch: Path) -> Dict[str, object]:
    from treeaspp_depth_ros.data.seven_scenes import load_seven_scenes
    dataset = load_seven_scenes(VIDEO)
    keep = list(range(HELD_OUT[0], HELD_OUT[1], stride))
    images = np.stack([dataset.rgb(i) for i in keep])
    depths = np.stack([dataset.depth(i) for i in keep])
    poses = np.stack([dataset.frames[i].pose for i in keep])
    bag = scratch / 'kitchen'
    write_dataset_bag(from_arrays(images, dataset.K, depths, poses, fps=30.0 / stride), bag)
    result = {'frames': f'{HELD_OUT[0]}-{HELD_OUT[1] - 1} every {stride}',
              'ours': headline(evaluate(bag, weights, scratch / 'kitchen_eval'))}
    from benchmarks.bench_slam import run_open3d
    from treeaspp_depth_ros.inference import DepthEstimator
    from treeaspp_depth_ros.trajectory import trajectory_errors
    estimator = DepthEstimator(weights, device='cpu')
    ours = [estimator.predict(rgb) for rgb in images]
    for name, frames in (('kinect_depth', list(depths)), ('our_depth', ours)):
        try:
            path, _, _, failures = run_open3d(list(images), frames, dataset.K)
        except ImportError as error:
            result['open3d'] = f'not run: {error} (pip install open3d)'
            break
        result[f'open3d_{name}'] = dict(trajectory_errors(path, poses), failures=failures)
    return result


def cost(weights: Path, rounds: int) -> Dict[str, object]:
    """Per-frame time of depth alone, + pose network, + confidence, in interleaved rounds."""
    import torch
    from treeaspp_depth_ros.checkpoint import load_pose_net
    from treeaspp_depth_ros.data.seven_scenes import load_seven_scenes
    from treeaspp_depth_ros.inference import DepthEstimator
    from treeaspp_depth_ros.motion import MotionFrame, VisualOdometry
    dataset = load_seven_scenes(VIDEO)
    estimator = DepthEstimator(weights, device='cpu')
    motion = VisualOdometry(load_pose_net(estimator.checkpoint), estimator.device, 1.0, 100.0,
                            100.0, 0.2)
    frames = [dataset.rgb(i) for i in range(HELD_OUT[0], HELD_OUT[0] + 8)]
    times: Dict[str, List[float]] = {'depth': [], 'depth_pose': [], 'depth_pose_confidence': []}
    stamp = [0]

    def run(kind: str, rgb: np.ndarray) -> None:
        prediction = estimator.predict_frame(rgb)
        if kind != 'depth':
            stamp[0] += 33_000_000
            motion.step(MotionFrame(prediction.network_input, prediction.network_depth,
                                    stamp[0], (rgb.shape[1], rgb.shape[0]), dataset.K),
                        estimator.depth_scale, True, kind == 'depth_pose_confidence')
    for warm in range(3):
        for kind in times:
            run(kind, frames[warm])
    for index in range(rounds):
        for kind in times:
            started = time.perf_counter()
            run(kind, frames[index % len(frames)])
            times[kind].append(1000.0 * (time.perf_counter() - started))
    median = {k: float(np.median(v)) for k, v in times.items()}
    return {'input_size': list(estimator.input_size), 'torch_threads': torch.get_num_threads(),
            'rounds': rounds, 'median_ms': median,
            'ratio_to_depth_only': {k: v / median['depth'] for k, v in median.items()}}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--weights', type=Path, required=True,
                        help='demo_odometry checkpoint for the synthetic walks')
    parser.add_argument('--real-weights', type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument('--seeds', type=int, nargs='+', default=[30000, 30001, 30002])
    parser.add_argument('--stride', type=int, default=3,
                        help='real video: every n-th frame (3: 10 Hz, a CPU node rate)')
    parser.add_argument('--rounds', type=int, default=30)
    parser.add_argument('--skip', nargs='*', default=[], choices=('synthetic', 'real', 'cost'))
    add_output_option(parser, 'motion.json')
    args = parser.parse_args(argv)
    for path in (args.weights, args.real_weights):
        if not path.is_file():
            parser.error(f'weights not found: {path}')
    if 'real' not in args.skip and not VIDEO.is_dir():
        parser.error(f'{VIDEO} not present (pass --skip real cost)')
    output = resolve_output(args.output, 'motion.json')
    scratch = Path(tempfile.mkdtemp(prefix='bench_motion_'))
    result: Dict[str, object] = {'benchmark': 'motion', 'machine': machine_info(),
                                 'weights': str(args.weights),
                                 'real_weights': str(args.real_weights)}
    started = time.perf_counter()
    if 'cost' not in args.skip:
        result['cost'] = cost(args.real_weights, args.rounds)
        write_json(result, output)
    if 'synthetic' not in args.skip:
        result['synthetic'] = synthetic(args.weights, args.seeds, scratch)
        write_json(result, output)
    if 'real' not in args.skip:
        result['real_kitchen'] = real_video(args.real_weights, args.stride, scratch)
    result['seconds'] = round(time.perf_counter() - started, 1)
    write_json(result, output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
