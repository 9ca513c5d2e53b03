"""Depth error metrics (paper eq. 5-8 plus the usual SqRel / RMSE-log) and NYU protocols."""

from typing import Dict, Iterable, Optional, Union

import numpy as np

METRIC_NAMES = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10', 'a1', 'a2', 'a3')
NYU_DEPTH_RANGE = (0.1, 10.0)
#: Eigen crop for NYUv2 at 480x640: rows 45:471, cols 41:601
EIGEN_CROP_480x640 = (45, 471, 41, 601)
#: the evaluation crops `valid_mask` knows (None: the whole image)
CROPS = (None, 'eigen')


def eigen_crop_mask(height: int, width: int) -> np.ndarray:
    """Boolean mask of the Eigen NYU crop, scaled from 480x640 to the given size."""
    top, bottom, left, right = EIGEN_CROP_480x640
    sy, sx = height / 480.0, width / 640.0
    mask = np.zeros((height, width), dtype=bool)
    mask[int(round(top * sy)):int(round(bottom * sy)),
         int(round(left * sx)):int(round(right * sx))] = True
    return mask


def valid_mask(gt: np.ndarray, min_depth: float, max_depth: float,
               crop: Optional[str] = None) -> np.ndarray:
    """Pixels with usable ground truth (finite, inside the range, inside the crop)."""
    with np.errstate(invalid='ignore'):
        mask = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth)
    if crop == 'eigen':
        mask &= eigen_crop_mask(*gt.shape)
    elif crop is not None:
        raise ValueError(f'unknown crop {crop!r} (use None or "eigen")')
    return mask


def median_scale(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """Per-image scale ratio median(gt) / median(pred): monocular depth is up to scale."""
    return float(np.median(gt[mask]) / np.median(pred[mask]))


def compute_depth_metrics(pred: np.ndarray, gt: np.ndarray,
                          min_depth: float = NYU_DEPTH_RANGE[0],
                          max_depth: float = NYU_DEPTH_RANGE[1],
                          crop: Optional[str] = None,
                          scale: Union[str, float] = 'median') -> Dict[str, float]:
    """
    Errors of `pred` against `gt` (same HxW, metres) after scaling `pred`.

    `scale='median'` is the paper's per-image protocol; a number applies one global scale (what a
    robot uses). Scaled predictions are clipped to the depth range, as in SC-SfMLearner's eval.
    Returns the metrics, the scale used and the number of valid pixels.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f'prediction {pred.shape} and ground truth {gt.shape} differ in size')
    mask = valid_mask(gt, min_depth, max_depth, crop) & np.isfinite(pred) & (pred > 0)
    if not mask.any():
        raise ValueError('no valid ground-truth pixels inside the depth range / crop')
    factor = median_scale(pred, gt, mask) if scale == 'median' else float(scale)
    p = np.clip(pred[mask] * factor, min_depth, max_depth)
    g = gt[mask]
    thresh = np.maximum(g / p, p / g)
    return {
        'abs_rel': float(np.mean(np.abs(g - p) / g)),
        'sq_rel': float(np.mean((g - p) ** 2 / g)),
        'rmse': float(np.sqrt(np.mean((g - p) ** 2))),
        'rmse_log': float(np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2))),
        'log10': float(np.mean(np.abs(np.log10(g) - np.log10(p)))),
        'a1': float(np.mean(thresh < 1.25)),
        'a2': float(np.mean(thresh < 1.25 ** 2)),
        'a3': float(np.mean(thresh < 1.25 ** 3)),
        'scale': factor,
        'valid_pixels': int(mask.sum()),
    }


def aggregate_metrics(per_image: Iterable[Dict[str, float]]) -> Dict[str, float]:
    """Mean of each metric over images (the standard NYU / KITTI averaging)."""
    rows = list(per_image)
    if not rows:
        raise ValueError('no images to aggregate')
    return {name: float(np.mean([row[name] for row in rows])) for name in METRIC_NAMES}
