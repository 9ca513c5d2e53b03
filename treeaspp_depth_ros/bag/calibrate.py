"""
`treeaspp-depth calibrate-scale`: store one metric scale so the node publishes metres.

Self-supervised monocular depth is correct only up to scale. The scale that maps the network's
depth to metres is the median over frames of median(gt) / median(pred); its spread over the
sequence (reported) says how far a single scale can be trusted. The scale goes into the
checkpoint as `depth_scale` (written atomically), or into a `<weights>.scale.yaml` sidecar.
"""

import argparse
import json
from pathlib import Path
import time
from typing import Callable, Dict, Iterator, Optional, Tuple

import numpy as np

from treeaspp_depth_ros.bag import evaluation
from treeaspp_depth_ros.bag.bag_eval import make_estimator
from treeaspp_depth_ros.cli import CommandError
from treeaspp_depth_ros.data.layouts import FORMATS, load_dataset
from treeaspp_depth_ros.sizes import add_input_size_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--weights', required=True, help='checkpoint to calibrate')
    source = parser.add_argument_group('source (a bag or a dataset folder)')
    source.add_argument('--bag', type=Path, help='rosbag2 with images and ground-truth depth')
    source.add_argument('--image-topic', help='colour topic in --bag')
    source.add_argument('--depth-topic', help='ground-truth depth topic in --bag')
    source.add_argument('--dataset', type=Path, help='dataset folder instead of a bag')
    source.add_argument('--format', choices=FORMATS, help='layout of --dataset')
    source.add_argument('--depth-dir', type=Path, help='--format folder: ground-truth depth')
    source.add_argument('--depth-unit', type=float, help='metres per PNG depth unit')
    parser.add_argument('--output', type=Path,
                        help='checkpoint to write (default: update --weights in place, '
                             'atomically)')
    parser.add_argument('--sidecar', action='store_true',
                        help='write WEIGHTS.scale.yaml next to the checkpoint instead of '
                             'changing it (the node, predict and bag-eval read it; it '
                             'overrides the scale stored in the checkpoint)')
    parser.add_argument('--report', type=Path, help='also write the calibration as JSON here')
    parser.add_argument('--dry-run', action='store_true', help='compute and print only')
    parser.add_argument('--device', default='cpu')
    add_input_size_option(parser, what='; use the size the node will run at: the scale '
                          'depends on it')
    parser.add_argument('--min-depth', type=float, default=0.1)
    parser.add_argument('--max-depth', type=float, default=10.0)
    parser.add_argument('--max-dt', type=float, default=0.02)
    parser.add_argument('--allow-unmatched', action='store_true')
    parser.add_argument('--max-frames', type=int)


FrameIterator = Iterator[Tuple[evaluation.Pair, np.ndarray, np.ndarray]]


def _bag_frames(args) -> Tuple[FrameIterator, str, Callable[[], None]]:
    if not args.image_topic or not args.depth_topic:
        raise CommandError('--bag needs --image-topic and --depth-topic')
    inputs = evaluation.open_inputs(args.bag, args.image_topic, args.depth_topic, None,
                                    max_dt=args.max_dt, allow_unmatched=args.allow_unmatched,
                                    max_frames=args.max_frames, auto_camera_info=False)

    def frames():
        for frame in evaluation.iter_frames(inputs):
            yield (frame.pair, evaluation.decode_rgb(inputs, frame),
                   evaluation.decode_depth(inputs, frame))
    return frames(), f'bag {args.bag} ({args.image_topic}, {args.depth_topic})', \
        inputs.reader.close


def _dataset_frames(args) -> Tuple[FrameIterator, str, Callable[[], None]]:
    if not args.format:
        raise CommandError('--dataset needs --format')
    dataset = load_dataset(args.format, args.dataset, depth_dir=args.depth_dir,
                           depth_unit=args.depth_unit, need_intrinsics=False,
                           max_difference=args.max_dt)
    if not dataset.has_depth:
        raise CommandError(f'dataset {args.dataset} ({args.format}) has no ground-truth depth')
    count = len(dataset) if args.max_frames is None else min(len(dataset), args.max_frames)

    def frames():
        for i in range(count):
            frame = dataset.frames[i]
            pair = evaluation.Pair(index=i, image_ordinal=i, depth_ordinal=i,
                                   stamp_ns=frame.stamp_ns,
                                   depth_stamp_ns=frame.depth_stamp_ns or frame.stamp_ns,
                                   bag_time_ns=frame.stamp_ns)
            yield pair, dataset.rgb(i), dataset.depth(i)
    return frames(), f'{args.format} dataset {args.dataset}', lambda: None


def calibrate(estimator, frames, min_depth: float, max_depth: float
              ) -> Dict[str, object]:
    """Median of per-frame median ratios of ground truth to raw network depth, with spread."""
    started = time.perf_counter()
    with evaluation.MetricAccumulator(min_depth, max_depth) as acc:
        for pair, rgb, gt in frames:
            acc.add(pair, estimator.predict(rgb), gt)
        if not acc.frames:
            raise CommandError('no frame had valid ground-truth depth in '
                               f'[{min_depth}, {max_depth}] m; cannot calibrate')
        results = acc.finish()
    results['seconds'] = time.perf_counter() - started
    return results


def write_sidecar(weights: Path, info: Dict[str, object]) -> Path:
    """`<weights>.scale.yaml`, written atomically."""
    import yaml
    path = Path(str(weights) + '.scale.yaml')
    text = yaml.safe_dump(info, sort_keys=False)
    tmp = path.with_name(f'.{path.name}.tmp')
    tmp.write_text(text)
    tmp.replace(path)
    return path


def run(args: argparse.Namespace) -> int:
    from treeaspp_depth_ros.checkpoint import atomic_torch_save, CheckpointError, load_checkpoint
    if (args.bag is None) == (args.dataset is None):
        raise CommandError('give exactly one source: --bag BAG or --dataset SRC --format F')
    if args.sidecar and args.output is not None:
        raise CommandError('--sidecar and --output exclude each other')
    weights = Path(args.weights)
    try:
        checkpoint = load_checkpoint(weights) if weights.is_file() else None
    except CheckpointError as error:
        raise CommandError(str(error)) from None
    if checkpoint is None:
        raise CommandError(f'weights file not found: {weights}')
    previous = checkpoint.get('depth_scale')
    # depth_scale=1.0: raw network depth, whatever scale the checkpoint stores already.
    estimator = make_estimator(str(weights), args.device, args.input_size, 'fp32',
                               depth_scale=1.0)
    print(f'[calibrate-scale] {estimator.describe()}', flush=True)
    frames, source, close = _bag_frames(args) if args.bag is not None else _dataset_frames(args)
    try:
        results = calibrate(estimator, frames, args.min_depth, args.max_depth)
    finally:
        close()
    scale = float(results['global_scale'])
    info: Dict[str, object] = {
        'depth_scale': scale,
        'source': source,
        'frames': int(results['frames']),
        'input_size': list(estimator.input_size),
        'depth_range': [args.min_depth, args.max_depth],
        'scale_ratio_cv': float(results['scale_ratio_cv']),
        'scale_ratio_p5': float(results['scale_ratio_p5']),
        'scale_ratio_p95': float(results['scale_ratio_p95']),
        'scale_ratio_min': float(results['scale_ratio_min']),
        'scale_ratio_max': float(results['scale_ratio_max']),
        'abs_rel_global_scaled': float(results['global_scaled']['abs_rel']),
        'abs_rel_median_scaled': float(results['median_scaled']['abs_rel']),
    }
    target: Optional[Path] = None
    if not args.dry_run:
        if args.sidecar:
            target = write_sidecar(weights, info)
        else:
            target = Path(args.output) if args.output is not None else weights
            if target.exists() and target.is_dir():
                raise CommandError(f'--output {target} is a directory')
            checkpoint['depth_scale'] = scale
            checkpoint['depth_scale_calibration'] = {
                k: v for k, v in info.items() if k != 'depth_scale'}
            atomic_torch_save(checkpoint, target)
    if args.report is not None:
        report = dict(info, previous_depth_scale=previous, written=str(target) if target else None,
                      median_scaled=results['median_scaled'],
                      global_scaled=results['global_scaled'])
        args.report.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.report.with_name(f'.{args.report.name}.tmp')
        tmp.write_text(json.dumps(report, indent=2) + '\n')
        tmp.replace(args.report)
    spread = (f'CV {info["scale_ratio_cv"]:.4f}, p5..p95 {info["scale_ratio_p5"]:.4g}..'
              f'{info["scale_ratio_p95"]:.4g}')
    print(f'depth_scale = {scale:.6g} from {info["frames"]} frames of {source} ({spread}); '
          f'AbsRel with it {info["abs_rel_global_scaled"]:.4f} '
          f'(per-frame median scaling {info["abs_rel_median_scaled"]:.4f})')
    if previous is not None:
        print(f'previous depth_scale: {float(previous):.6g}')
    if target is not None:
        print(f'wrote {target}')
    return 0
