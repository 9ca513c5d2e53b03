"""
The metric depth scale of a depth network, three ways: ground truth, the floor, odometry.

Self-supervised monocular depth is correct only up to scale. Each method gives one scale (the
network's raw depth times it is metres) and the spread of its per-frame (per-pair) ratios,
which says how far one scale can be trusted:

- :func:`calibrate`: median over frames of median(gt) / median(pred), for recordings with
  ground-truth depth;
- :func:`calibrate_camera_height`: the floor plane fitted to each frame's predicted points lies
  ``h`` network units below the camera (:mod:`treeaspp_depth_ros.floor`); the scale is
  camera_height / h, median over the frames that show a floor, each counted by its inliers;
- :func:`calibrate_odometry`: the median over frame pairs with enough motion of the odometry's
  translation over the pose network's (SC-SfMLearner trains pose and depth to one consistent
  scale).

:func:`scale_interval` says how far the one scale can be off for the frames there were. The
`calibrate-scale` command (:mod:`.calibrate`) runs these on a bag or a dataset folder and
stores the result; training scripts and benchmarks call them directly. A recording that
gives no scale is a :class:`~treeaspp_depth_ros.data.DataError`.
"""

import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from treeaspp_depth_ros.bag import evaluation
from treeaspp_depth_ros.data import DataError
from treeaspp_depth_ros.data.records import Dataset
from treeaspp_depth_ros.floor import fit_floor, floor_scale, FloorOptions


def calibrate(estimator, frames, min_depth: float, max_depth: float
              ) -> Dict[str, object]:
    """Median of per-frame median ratios of ground truth to raw network depth, with spread."""
    started = time.perf_counter()
    with evaluation.MetricAccumulator(min_depth, max_depth) as acc:
        for pair, rgb, gt in frames:
            acc.add(pair, estimator.predict(rgb), gt)
        if not acc.frames:
            raise DataError('no frame had valid ground-truth depth in '
                            f'[{min_depth}, {max_depth}] m; cannot calibrate')
        results = acc.finish()
        results['ratios'] = [float(f['scale_ratio']) for f in acc.frames]
    results['seconds'] = time.perf_counter() - started
    return results


def ratio_spread(values: Sequence[float]) -> Dict[str, float]:
    """Spread of per-frame (or per-pair) scale ratios, named as the ground-truth method's."""
    values = np.asarray(values, dtype=np.float64)
    return {'scale_ratio_cv': float(values.std() / values.mean()),
            'scale_ratio_p5': float(np.percentile(values, 5)),
            'scale_ratio_p95': float(np.percentile(values, 95)),
            'scale_ratio_min': float(values.min()), 'scale_ratio_max': float(values.max())}


def scale_interval(values: Sequence[float], weights: Optional[Sequence[float]] = None,
                   draws: int = 1000, seed: int = 0) -> Tuple[float, float]:
    """
    90% bootstrap interval of the scale: the median (weighted, as the floor's) of resampled ratios.

    The spread of single ratios says how much frames disagree; this says how far the one
    scale written can be off for the frames (pairs) there were, which shrinks with more of them.
    """
    values = np.asarray(values, dtype=np.float64)
    picks = np.random.default_rng(seed).integers(0, len(values), (draws, len(values)))
    if weights is None:
        medians = np.median(values[picks], axis=1)
    else:
        weights = np.asarray(weights)
        medians = np.array([floor_scale(values[p], weights[p]) for p in picks])
    low, high = np.percentile(medians, [5, 95])
    return float(low), float(high)


FloorFrame = Tuple[np.ndarray, np.ndarray, float, Sequence[float]]


def calibrate_camera_height(estimator, frames: Iterable[FloorFrame],
                            options: FloorOptions = FloorOptions()) -> Dict[str, object]:
    """
    Camera_height / floor distance in raw network depth: :func:`floor.floor_scale` of frames.

    ``frames`` yields (rgb, K at the image's resolution, camera height in metres, the camera's
    down direction in the optical frame); frames without a usable floor are counted.
    """
    started = time.perf_counter()
    scales: List[float] = []
    inliers: List[int] = []
    without = 0
    for rgb, K, height, down in frames:
        fit = fit_floor(estimator.predict(rgb), K, options, down)
        if fit is None:
            without += 1
        else:
            scales.append(fit.scale(height))
            inliers.append(fit.inliers)
    if not scales:
        raise DataError(f'no usable floor in any of {without} frames (RANSAC over the lower '
                        f'{options.lower_fraction:g} of the image, normal within '
                        f'{options.max_tilt_deg:g} deg of the down direction); check '
                        '--camera-pitch, or use another method')
    return {'global_scale': floor_scale(scales, inliers),
            'unweighted_median_scale': float(np.median(scales)), 'frames': len(scales),
            'frames_without_floor': without, 'ratios': scales, 'inliers': inliers,
            **ratio_spread(scales),
            'seconds': time.perf_counter() - started}


def motion_pairs(positions: np.ndarray, min_translation: float, max_translation: float,
                 max_gap: int) -> List[Tuple[int, int, float]]:
    """(i, j, distance): for each frame i the nearest later frame j that moved enough."""
    positions = np.asarray(positions, dtype=np.float64)
    pairs = []
    for i in range(len(positions) - 1):
        ahead = positions[i + 1:i + 1 + max_gap]
        moved = np.linalg.norm(ahead - positions[i], axis=1)
        far = np.nonzero(moved >= min_translation)[0]
        if len(far) and moved[far[0]] <= max_translation:
            pairs.append((i, i + 1 + int(far[0]), float(moved[far[0]])))
    return pairs


def calibrate_odometry(estimator, pose_net, sequence: Dataset, min_translation: float,
                       max_translation: float, max_gap: int) -> Dict[str, object]:
    """
    Median over frame pairs of odometry translation / pose-network translation.

    The pose network sees the pair as the depth network sees single frames (the estimator's
    input size and normalisation), on the estimator's device. Only distances are compared,
    so odometry of the robot body serves for a camera that moves with it (small lever arms).
    """
    import torch
    started = time.perf_counter()
    positions = np.array([frame.pose[:3, 3] for frame in sequence.frames])
    pairs = motion_pairs(positions, min_translation, max_translation, max_gap)
    if not pairs:
        steps = np.linalg.norm(np.diff(positions, axis=0), axis=1) if len(positions) > 1 \
            else np.zeros(1)
        raise DataError(
            f'no frame pair moved between {min_translation:g} and {max_translation:g} m within '
            f'{max_gap} frames by odometry (largest step between frames {steps.max():.4f} m); '
            'record while the robot drives, or change --min-translation / --max-gap')
    pose_net = pose_net.to(estimator.device).eval()
    cache: Dict[int, np.ndarray] = {}

    def rgb(index: int) -> np.ndarray:
        if index not in cache:
            if len(cache) > max_gap + 1:
                cache.pop(min(cache))
            cache[index] = sequence.rgb(index)
        return cache[index]
    ratios, network = [], []
    with torch.inference_mode():
        for i, j, distance in pairs:
            batch = estimator.preprocess([rgb(i), rgb(j)])
            moved = float(torch.linalg.norm(pose_net(batch[:1], batch[1:])[0, :3].float()))
            network.append(moved)
            if moved > 0:
                ratios.append(distance / moved)
    if not ratios:
        raise DataError('the pose network predicts no translation for any pair; is it '
                        'trained?')
    return {'global_scale': float(np.median(ratios)), 'frames': len(sequence),
            'pairs': len(ratios), 'ratios': ratios,
            'odometry_translation_median': float(np.median([d for _, _, d in pairs])),
            'network_translation_median': float(np.median(network)), **ratio_spread(ratios),
            'seconds': time.perf_counter() - started}
