"""
`treeaspp-depth calibrate-scale`: store one metric scale so the node publishes metres.

Self-supervised monocular depth is correct only up to scale. Three ways to find the scale, for
robots with and without a depth sensor:

- ``ground-truth`` (default): median over frames of median(gt) / median(pred), from a bag or
  dataset with depth;
- ``camera-height``: the floor plane fitted to each frame's predicted points lies ``h``
  network units below the camera (:mod:`treeaspp_depth_ros.floor`); the scale is
  camera_height / h, median over the frames that show a floor, each counted by its inliers;
- ``odometry``: the median over frame pairs with enough motion of the odometry's translation
  over the pose network's (SC-SfMLearner trains pose and depth to one consistent scale).

Each reports the spread of its per-frame (per-pair) ratios, which says how far one scale can be
trusted. The scale goes into the checkpoint as `depth_scale` (written atomically), or into a
`<weights>.scale.yaml` sidecar, whichever the method. The methods themselves are
:mod:`.metric_scale`'s (training scripts and benchmarks call them too); this module reads the
command line and the source, and writes and reports the result.
"""

import argparse
import json
from pathlib import Path
import sys
from typing import Callable, Dict, Iterator, Optional, Tuple

import numpy as np

from treeaspp_depth_ros.bag import evaluation
from treeaspp_depth_ros.bag.bag_eval import make_estimator
from treeaspp_depth_ros.bag.metric_scale import (calibrate, calibrate_camera_height,
                                                 calibrate_odometry, FloorFrame, scale_interval)
from treeaspp_depth_ros.cli import CommandError
from treeaspp_depth_ros.cli_options import (add_backend_option, add_input_size_option,
                                            add_weights_option, backend_for)
from treeaspp_depth_ros.data.layouts import FORMATS, load_dataset
from treeaspp_depth_ros.data.records import Dataset
from treeaspp_depth_ros.files import atomic_write_text
from treeaspp_depth_ros.floor import down_direction, FloorOptions
from treeaspp_depth_ros.progress import track
from treeaspp_depth_ros.weights import is_shipped


METHODS = ('ground-truth', 'camera-height', 'odometry')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_weights_option(parser, 'checkpoint to calibrate')
    parser.add_argument('--method', choices=METHODS, default='ground-truth',
                        help='ground-truth: depth recorded next to the images (default); '
                             'camera-height: the floor and --camera-height; odometry: '
                             "--odom-topic and the checkpoint's pose network")
    source = parser.add_argument_group('source (a bag or a dataset folder)')
    source.add_argument('--bag', type=Path, help='rosbag2 with images and ground-truth depth')
    source.add_argument('--image-topic', help='colour topic in --bag')
    source.add_argument('--depth-topic', help='ground-truth depth topic in --bag')
    source.add_argument('--dataset', type=Path, help='dataset folder instead of a bag')
    source.add_argument('--format', choices=FORMATS, help='layout of --dataset')
    source.add_argument('--depth-dir', type=Path, help='--format folder: ground-truth depth')
    source.add_argument('--depth-unit', type=float, help='metres per PNG depth unit')
    source.add_argument('--intrinsics', metavar='FX,FY,CX,CY|FILE',
                        help='camera-height: intrinsics when the bag has no camera_info or '
                             'the folder no intrinsics file')
    floor = parser.add_argument_group('--method camera-height (no depth sensor needed)')
    floor.add_argument('--camera-height', type=float, metavar='H',
                       help='height of the camera above the floor in metres (URDF)')
    floor.add_argument('--camera-pitch', type=float, default=0.0, metavar='DEG',
                       help='degrees the camera looks down (URDF; default 0): the floor '
                            'height is measured along this down direction')
    floor.add_argument('--max-tilt', type=float, default=FloorOptions.max_tilt_deg,
                       metavar='DEG', help='largest angle between the fitted floor normal and '
                       'the down direction (default %(default)s)')
    floor.add_argument('--floor-fraction', type=float, default=FloorOptions.lower_fraction,
                       help='lower part of the image searched for the floor (default '
                            '%(default)s)')
    odometry = parser.add_argument_group('--method odometry (needs a pose network)')
    odometry.add_argument('--odom-topic', metavar='TOPIC',
                          help='nav_msgs/Odometry or geometry_msgs/PoseStamped topic in --bag '
                               '(e.g. /camera/pose_gt from make-bag); a --dataset uses its '
                               'own poses')
    odometry.add_argument('--min-translation', type=float, default=0.05, metavar='M',
                          help='pairs move at least this far by odometry (default %(default)s)')
    odometry.add_argument('--max-translation', type=float, default=0.5, metavar='M',
                          help='... and at most this far (default %(default)s)')
    odometry.add_argument('--max-gap', type=int, default=15, metavar='N',
                          help='largest frame distance within a pair (default %(default)s)')
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
    add_backend_option(parser, from_weights=True)
    add_input_size_option(parser, what='; use the size the node will run at: the scale '
                          'depends on it')
    parser.add_argument('--min-depth', type=float, default=0.1)
    parser.add_argument('--max-depth', type=float, default=10.0)
    parser.add_argument('--max-dt', type=float, default=0.02)
    parser.add_argument('--allow-unmatched', action='store_true')
    parser.add_argument('--max-frames', type=int)


FrameIterator = Iterator[Tuple[evaluation.Pair, np.ndarray, np.ndarray]]


PROGRESS = '[calibrate-scale] predicting depth'


def _bag_frames(args) -> Tuple[FrameIterator, str, Callable[[], None]]:
    if not args.image_topic or not args.depth_topic:
        raise CommandError('--bag needs --image-topic and --depth-topic')
    inputs = evaluation.open_inputs(args.bag, args.image_topic, args.depth_topic, None,
                                    max_dt=args.max_dt, allow_unmatched=args.allow_unmatched,
                                    max_frames=args.max_frames, auto_camera_info=False)

    def frames():
        for frame in track(evaluation.iter_frames(inputs), len(inputs.pairs), PROGRESS,
                           'frames'):
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
        for i in track(range(count), count, PROGRESS, 'frames'):
            frame = dataset.frames[i]
            pair = evaluation.Pair(index=i, image_ordinal=i, depth_ordinal=i,
                                   stamp_ns=frame.stamp_ns,
                                   depth_stamp_ns=frame.depth_stamp_ns or frame.stamp_ns,
                                   bag_time_ns=frame.stamp_ns)
            yield pair, dataset.rgb(i), dataset.depth(i)
    return frames(), f'{args.format} dataset {args.dataset}', lambda: None


#: the scale's 90% interval is wider than +-this fraction of it: calibrate-scale warns
UNCERTAIN_SCALE = 0.10


def _sequence(args: argparse.Namespace, poses: bool) -> Tuple[Dataset, str]:
    """Images, intrinsics and (for odometry) poses of the bag or dataset, up to --max-frames."""
    from treeaspp_depth_ros.data.bag_dataset import DEFAULT_IMAGE_TOPIC, load_bag
    if args.bag is not None:
        topic = args.image_topic or DEFAULT_IMAGE_TOPIC
        sequence = load_bag(args.bag, image_topic=topic, intrinsics=args.intrinsics,
                            pose_topic=args.odom_topic if poses else None, max_dt=args.max_dt)
        source = f'bag {args.bag} ({topic}' + (f', {args.odom_topic})' if poses else ')')
    else:
        if not args.format:
            raise CommandError('--dataset needs --format')
        sequence = load_dataset(args.format, args.dataset, intrinsics=args.intrinsics,
                                max_difference=args.max_dt)
        source = f'{args.format} dataset {args.dataset}'
        if poses and not sequence.has_pose:
            raise CommandError(f'dataset {args.dataset} ({args.format}) has no poses; '
                               '--method odometry needs them (or a bag with --odom-topic)')
    if args.max_frames is not None:
        sequence.frames = sequence.frames[:max(0, args.max_frames)]
    if not len(sequence):
        raise CommandError(f'{source} has no frames')
    return sequence, source


def _floor_frames(sequence: Dataset, height: float, down: np.ndarray
                  ) -> Iterator[FloorFrame]:
    for i in range(len(sequence)):
        yield sequence.rgb(i), sequence.K, height, down


def _calibrate(args: argparse.Namespace, estimator, checkpoint: dict
               ) -> Tuple[Dict[str, object], Dict[str, object], Dict[str, object]]:
    """Run the chosen method: (results, info for checkpoint and report, report extras)."""
    if args.method == 'ground-truth':
        frames, source, close = (_bag_frames(args) if args.bag is not None
                                 else _dataset_frames(args))
        try:
            results = calibrate(estimator, frames, args.min_depth, args.max_depth)
        finally:
            close()
        info = {'source': source, 'frames': int(results['frames']),
                'depth_range': [args.min_depth, args.max_depth]}
        extras = {'median_scaled': results['median_scaled'],
                  'global_scaled': results['global_scaled']}
        info.update({k: float(results[k]) for k in (
            'scale_ratio_cv', 'scale_ratio_p5', 'scale_ratio_p95', 'scale_ratio_min',
            'scale_ratio_max')})
        info['abs_rel_global_scaled'] = float(results['global_scaled']['abs_rel'])
        info['abs_rel_median_scaled'] = float(results['median_scaled']['abs_rel'])
        return results, info, extras
    if args.method == 'camera-height':
        options = FloorOptions(lower_fraction=args.floor_fraction, max_tilt_deg=args.max_tilt)
        sequence, source = _sequence(args, poses=False)
        down = down_direction(args.camera_pitch)
        results = calibrate_camera_height(
            estimator, _floor_frames(sequence, args.camera_height, down), options)
        info = {'source': source, 'frames': int(results['frames']),
                'frames_without_floor': int(results['frames_without_floor']),
                'camera_height': args.camera_height, 'camera_pitch_deg': args.camera_pitch,
                'unweighted_median_scale': results['unweighted_median_scale']}
    else:
        from treeaspp_depth_ros.checkpoint import CheckpointError, load_pose_net
        try:
            pose_net = load_pose_net(checkpoint)
        except CheckpointError as error:
            raise CommandError(f'--method odometry needs a pose network: {args.weights}: '
                               f'{error}; use a training checkpoint (runs/NAME/best.pth or '
                               'last.pth) or another method') from None
        sequence, source = _sequence(args, poses=True)
        results = calibrate_odometry(estimator, pose_net, sequence, args.min_translation,
                                     args.max_translation, args.max_gap)
        info = {'source': source, 'frames': int(results['frames']),
                'pairs': int(results['pairs']),
                'translation_range': [args.min_translation, args.max_translation],
                'odometry_translation_median': results['odometry_translation_median'],
                'network_translation_median': results['network_translation_median']}
    info.update({k: float(results[k]) for k in (
        'scale_ratio_cv', 'scale_ratio_p5', 'scale_ratio_p95', 'scale_ratio_min',
        'scale_ratio_max')})
    extras = {'ratios': [float(r) for r in results['ratios']]}
    if 'inliers' in results:
        extras['floor_inliers'] = [int(n) for n in results['inliers']]
    return results, info, extras


def run(args: argparse.Namespace) -> int:
    from treeaspp_depth_ros.checkpoint import (atomic_torch_save, CheckpointError,
                                               load_checkpoint, scale_origin_entries,
                                               write_scale_sidecar)
    if (args.bag is None) == (args.dataset is None):
        raise CommandError('give exactly one source: --bag BAG or --dataset SRC --format F')
    if args.sidecar and args.output is not None:
        raise CommandError('--sidecar and --output exclude each other')
    if not (args.dry_run or args.sidecar or args.output is not None) and is_shipped(args.weights):
        raise CommandError(f'--weights {args.weights} is a file shipped with the package: write '
                           f'the calibrated copy with --output FILE (or --sidecar, or --dry-run)')
    if args.method == 'camera-height' and not (args.camera_height or 0) > 0:
        raise CommandError('--method camera-height needs --camera-height H (metres from the '
                           'floor to the camera, > 0)')
    if args.method == 'odometry' and args.bag is not None and not args.odom_topic:
        raise CommandError('--method odometry with --bag needs --odom-topic (a '
                           'nav_msgs/Odometry or geometry_msgs/PoseStamped topic)')
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
                               depth_scale=1.0,
                               backend=backend_for(args.weights, args.backend))
    print(f'[calibrate-scale] {estimator.describe()}', flush=True)
    results, details, extras = _calibrate(args, estimator, checkpoint)
    scale = float(results['global_scale'])
    info: Dict[str, object] = {'depth_scale': scale, 'method': args.method}
    info.update(details)
    low, high = scale_interval(results['ratios'], results.get('inliers'))
    info['depth_scale_ci90'] = [low, high]
    info['input_size'] = list(estimator.input_size)
    # which data and method: replaces an inherited or synthetic-rooms origin
    origin = scale_origin_entries(info)
    info['origin'] = origin['depth_scale_origin']
    target: Optional[Path] = None
    if not args.dry_run:
        if args.sidecar:
            target = write_scale_sidecar(weights, info)
        else:
            target = Path(args.output) if args.output is not None else weights
            if target.exists() and target.is_dir():
                raise CommandError(f'--output {target} is a directory')
            checkpoint['depth_scale'] = scale
            checkpoint['depth_scale_calibration'] = {
                k: v for k, v in info.items() if k != 'depth_scale'}
            checkpoint.update(origin)
            checkpoint.pop('depth_scale_inherited', None)  # calibrated now, not inherited
            atomic_torch_save(checkpoint, target)
    if args.report is not None:
        report = dict(info, previous_depth_scale=previous, written=str(target) if target else None,
                      **extras)
        atomic_write_text(json.dumps(report, indent=2) + '\n', args.report)
    what = 'frame pairs' if args.method == 'odometry' else 'frames'
    spread = (f'CV {info["scale_ratio_cv"]:.4f}, p5..p95 {info["scale_ratio_p5"]:.4g}..'
              f'{info["scale_ratio_p95"]:.4g}')
    if args.method == 'ground-truth':
        print(f'depth_scale = {scale:.6g} from {info["frames"]} frames of {info["source"]} '
              f'({spread}); AbsRel with it {info["abs_rel_global_scaled"]:.4f} '
              f'(per-frame median scaling {info["abs_rel_median_scaled"]:.4f})')
    elif args.method == 'camera-height':
        print(f'depth_scale = {scale:.6g} from the floor in {info["frames"]} frames of '
              f'{info["source"]} ({spread}); {info["frames_without_floor"]} frames without a '
              'usable floor')
    else:
        print(f'depth_scale = {scale:.6g} from {info["pairs"]} frame pairs of {info["source"]} '
              f'({spread}); median translation {info["odometry_translation_median"]:.4g} m by '
              f'odometry, {info["network_translation_median"]:.4g} by the pose network')
    print(f'90% interval of the scale (bootstrap over the {what}): {low:.4g}..{high:.4g}',
          flush=True)
    if (high - low) / 2.0 > UNCERTAIN_SCALE * scale:
        print(f'warning: the scale is uncertain by more than {UNCERTAIN_SCALE:.0%} '
              f'(+-{(high - low) / 2.0 / scale:.0%}): the {what} disagree too much for one '
              'scale to be trusted; record more (and more varied) frames, or check it against '
              "another method ('ground-truth' on a recording with depth)", file=sys.stderr)
    if previous is not None:
        print(f'previous depth_scale: {float(previous):.6g}')
    if target is not None:
        print(f'wrote {target}')
    return 0
