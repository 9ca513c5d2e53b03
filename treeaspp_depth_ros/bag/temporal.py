"""
`bag-eval` over time: the pose network's odometry, the confidence, and how steady depth is.

What SLAM users read before they trust a depth stream, measured offline on a bag:

- **odometry**: the node's visual odometry (:class:`..motion.VisualOdometry`, the node's scale)
  against the bag's pose topic: ATE after a similarity and after a rigid alignment, RPE;
- **confidence**: its sparsification curve, per-frame median-scaled AbsRel of what is left
  after dropping the least confident pixels, against the oracle (dropping the worst pixels)
  and random order (which leaves the mean as it is); AUSE is the area to each;
- **scale drift**: the per-frame ratio to the ground truth, its spread and its linear trend
  per 100 frames;
- **flicker**: the mean relative change of depth between consecutive frames at the same 3D
  points, for ours (at the one global scale) and for the sensor's depth, warped with the
  recorded pose where the bag has one, else with the pose network's.
"""

from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from treeaspp_depth_ros.motion import MotionFrame, relative_change, VisualOdometry
from treeaspp_depth_ros.pinhole import scale_intrinsics
from treeaspp_depth_ros.trajectory import trajectory_errors

#: fractions of pixels removed along the sparsification curve
SPARSIFICATION_STEPS = tuple(round(0.05 * k, 2) for k in range(20))
#: flicker is measured on depth maps this wide (height keeps the aspect): cheap, exact enough
FLICKER_WIDTH = 160


def _sparsification(order: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Mean error of what remains after removing, in `order`, each step's fraction."""
    ranked = errors[order]
    remaining = np.cumsum(ranked[::-1])[::-1]  # sum of the errors from position k on
    count = len(ranked)
    starts = np.minimum((np.array(SPARSIFICATION_STEPS) * count).astype(int), count - 1)
    return remaining[starts] / (count - starts)


def trend_per_100(values: np.ndarray, index: np.ndarray) -> float:
    """Slope of a line fit to `values / median` against `index`, per 100 frames."""
    if len(values) < 3 or np.ptp(index) == 0:
        return float('nan')
    return float(np.polyfit(index, values / np.median(values), 1)[0] * 100.0)


def nearest_poses(stamps: np.ndarray, poses: np.ndarray, wanted: np.ndarray,
                  max_dt: float) -> Tuple[np.ndarray, np.ndarray]:
    """Poses nearest each wanted stamp, and which wanted stamps have one within `max_dt` s."""
    if not len(stamps):
        return np.zeros((len(wanted), 4, 4)), np.zeros(len(wanted), bool)
    right = np.clip(np.searchsorted(stamps, wanted), 1, len(stamps) - 1) \
        if len(stamps) > 1 else np.zeros(len(wanted), int)
    left = np.maximum(right - 1, 0)
    pick = np.where(np.abs(stamps[left] - wanted) <= np.abs(stamps[right] - wanted), left, right)
    found = np.abs(stamps[pick] - wanted) <= max_dt * 1e9
    return poses[pick], found


class TemporalEvaluation:
    """Collects what the report's "over time" section needs, one frame at a time."""

    def __init__(self, odometry: Optional[VisualOdometry],
                 truth: Optional[Tuple[np.ndarray, np.ndarray]], max_dt: float,
                 min_depth: float, max_depth: float) -> None:
        self.odometry = odometry
        self.truth, self.max_dt = truth, max_dt
        self.min_depth, self.max_depth = min_depth, max_depth
        self.stamps: List[int] = []
        self.indices: List[int] = []
        self.path: List[np.ndarray] = []
        self.relative: List[Optional[np.ndarray]] = []  # pose network, current in previous
        self.curves: Dict[str, List[np.ndarray]] = {'confidence': [], 'oracle': []}
        self.small: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # ours, sensor, K

    def add(self, index: int, stamp_ns: int, prediction, gt: np.ndarray, K: np.ndarray,
            scale: float, ratio: Optional[float]) -> None:
        """
        One evaluated frame: `prediction` from ``DepthEstimator.predict_frame``, `gt` metres.

        `K` is the image's camera matrix, `scale` the estimator's metres per network unit,
        `ratio` the frame's median(gt) / median(pred) (None: no valid ground truth).
        """
        height, width = prediction.depth.shape
        relative = None
        if self.odometry is not None:
            result = self.odometry.step(
                MotionFrame(prediction.network_input, prediction.network_depth, stamp_ns,
                            (width, height), K), scale, want_pose=True, want_confidence=True)
            relative = result.relative
            if result.confidence is not None and ratio is not None:
                self._add_sparsification(prediction.depth, result.confidence, gt, ratio)
            self.path.append(self.odometry.pose.copy())
        self.stamps.append(stamp_ns)
        self.indices.append(index)
        self.relative.append(relative)
        small_width = min(FLICKER_WIDTH, gt.shape[1])
        small_size = (small_width, max(1, round(small_width * gt.shape[0] / gt.shape[1])))
        self.small.append((
            cv2.resize(prediction.depth, small_size, interpolation=cv2.INTER_AREA),
            gt if gt.shape[::-1] == small_size else
            cv2.resize(gt, small_size, interpolation=cv2.INTER_NEAREST),  # holes stay holes
            scale_intrinsics(K, small_size[0] / width, small_size[1] / height)))

    def _add_sparsification(self, pred: np.ndarray, confidence: np.ndarray, gt: np.ndarray,
                            ratio: float) -> None:
        confidence = cv2.resize(confidence, (gt.shape[1], gt.shape[0]),
                                interpolation=cv2.INTER_LINEAR)
        if pred.shape != gt.shape:
            pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
        with np.errstate(invalid='ignore'):
            valid = np.isfinite(gt) & (gt > self.min_depth) & (gt < self.max_depth) & \
                np.isfinite(pred) & (pred > 0)
        if valid.sum() < 100:
            return
        errors = np.abs(ratio * pred[valid] - gt[valid]) / gt[valid]
        self.curves['confidence'].append(
            _sparsification(np.argsort(confidence[valid], kind='stable'), errors))
        self.curves['oracle'].append(_sparsification(np.argsort(-errors), errors))

    def finish(self, global_scale: float, ratios: Dict[int, float]) -> Dict[str, object]:
        """Return the report's section: odometry, confidence, scale drift and flicker."""
        section: Dict[str, object] = {}
        truth, has_truth = self._truth()
        if self.odometry is not None:
            section['odometry'] = self._odometry_errors(truth, has_truth)
        if self.curves['confidence']:
            section['confidence'] = self._confidence_summary()
        frames = sorted(ratios)
        values = np.array([ratios[i] for i in frames])
        if len(values):
            section['scale_drift'] = {
                'frames': len(values),
                'ratio_cv': float(np.std(values) / np.mean(values)),
                'ratio_p95_p5': float(np.percentile(values, 95) / np.percentile(values, 5)),
                'trend_per_100_frames': trend_per_100(values, np.array(frames, float)),
                'sensor': 'the reference: its ratio is 1 by definition'}
        section['flicker'] = self._flicker(global_scale, truth, has_truth)
        return section

    def _truth(self) -> Tuple[Optional[np.ndarray], np.ndarray]:
        if self.truth is None:
            return None, np.zeros(len(self.stamps), bool)
        stamps, poses = self.truth
        return nearest_poses(stamps, poses, np.array(self.stamps, np.int64), self.max_dt)

    def _odometry_errors(self, truth: Optional[np.ndarray], has_truth: np.ndarray
                         ) -> Dict[str, object]:
        resets = dict(self.odometry.resets)
        summary: Dict[str, object] = {
            'pairs': self.odometry.pairs, 'resets': resets,
            'pose_ms_mean': 1000.0 * self.odometry.pose_seconds / max(self.odometry.pairs, 1)}
        if truth is not None and has_truth.sum() >= 3:
            path = np.array(self.path)[has_truth]
            summary.update(trajectory_errors(path, truth[has_truth]))
        else:
            summary['note'] = 'no pose topic with poses at the frames: no ATE/RPE'
        return summary

    def _confidence_summary(self) -> Dict[str, object]:
        confidence = np.mean(self.curves['confidence'], axis=0)
        oracle = np.mean(self.curves['oracle'], axis=0)
        random = np.full_like(confidence, confidence[0])  # random order keeps the mean
        at_20 = SPARSIFICATION_STEPS.index(0.2)
        oracle_gain = confidence[0] - oracle[at_20]
        return {
            'frames': len(self.curves['confidence']),
            'removed_fraction': list(SPARSIFICATION_STEPS),
            'abs_rel_confidence_order': confidence.tolist(),
            'abs_rel_oracle_order': oracle.tolist(),
            'ause_vs_oracle': float(np.mean(confidence - oracle)),
            'ause_random_vs_oracle': float(np.mean(random - oracle)),
            'gain_at_20pct_vs_oracle': float((confidence[0] - confidence[at_20]) / oracle_gain)
            if oracle_gain > 0 else float('nan'),
        }

    def _flicker(self, global_scale: float, truth: Optional[np.ndarray],
                 has_truth: np.ndarray) -> Dict[str, object]:
        ours, sensor, source = [], [], None
        for k in range(1, len(self.small)):
            if truth is not None and has_truth[k] and has_truth[k - 1]:
                moved, source = np.linalg.inv(truth[k - 1]) @ truth[k], 'recorded poses'
            elif self.relative[k] is not None:
                moved, source = self.relative[k], source or 'pose network'
            else:
                continue
            (pred, gt, K), (previous_pred, previous_gt, _) = self.small[k], self.small[k - 1]
            ours.append(relative_change(global_scale * pred, global_scale * previous_pred,
                                        moved, K)[0])
            sensor.append(relative_change(gt, previous_gt, moved, K)[0])
        if not ours:
            return {'note': 'no consecutive pair with a known motion (no pose topic and no '
                            'pose network)'}
        return {'pairs': len(ours), 'warped_with': source,
                'ours_mean_relative_change': float(np.nanmean(ours)),
                'sensor_mean_relative_change': float(np.nanmean(sensor)),
                'ours_per_pair': ours, 'sensor_per_pair': sensor}
