"""
Depth evaluation shared by per-epoch validation and `treeaspp_depth_training.evaluate`.

Predictions go through `treeaspp_depth_ros.inference.DepthEstimator`, the same path the ROS node
uses, so offline numbers describe the deployed model. Two scale protocols:

* ``median``: each prediction scaled by median(gt) / median(pred) (the paper's protocol);
* ``global``: one scale for the whole test set, the median of the per-image ratios (what a robot
  with one calibrated scale gets); its spread shows how scale-consistent the network is.
"""

import time
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader

from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.metrics import aggregate_metrics, compute_depth_metrics
from treeaspp_depth_ros.progress import track

from .data.datasets import collate_test, DepthTestSet


def _loader(test_set: DepthTestSet, batch_size: int, num_workers: int) -> DataLoader:
    return DataLoader(test_set, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=collate_test)


def _predict(estimator: DepthEstimator, rgbs: List[np.ndarray]) -> List[np.ndarray]:
    preds = estimator.predict_batch(rgbs)
    if estimator.device.type == 'cuda':
        torch.cuda.synchronize(estimator.device)
    return preds


def evaluate_depth(estimator: DepthEstimator, test_set: DepthTestSet, min_depth: float = 0.1,
                   max_depth: float = 10.0, crop: Optional[str] = 'eigen',
                   global_scale: bool = True, batch_size: int = 8, num_workers: int = 0,
                   progress: Optional[str] = None) -> Dict[str, Any]:
    """
    Mean metrics under median scaling (and, optionally, one global scale).

    `progress` names the step in progress output (batches); None (validation during
    training) prints nothing.
    """
    options = {'min_depth': min_depth, 'max_depth': max_depth, 'crop': crop}
    per_image: List[Dict[str, float]] = []
    infer_time = 0.0
    loader = _loader(test_set, batch_size, num_workers)
    batches = track(loader, len(loader), progress or '', 'batches', enabled=bool(progress))
    for rgbs, gts, _ in batches:
        start = time.perf_counter()
        preds = _predict(estimator, rgbs)
        infer_time += time.perf_counter() - start
        per_image.extend(compute_depth_metrics(p, g, scale='median', **options)
                         for p, g in zip(preds, gts))
    ratios = np.array([m['scale'] for m in per_image])
    result: Dict[str, Any] = {
        'median': aggregate_metrics(per_image),
        'num_images': len(per_image),
        'test_time_s': infer_time,
        'protocol': {'min_depth': min_depth, 'max_depth': max_depth, 'crop': crop},
        'scale_ratio': {'median': float(np.median(ratios)),
                        'std_over_median': float(np.std(ratios) / np.median(ratios))},
    }
    if global_scale:
        scale = float(np.median(ratios))
        rows = []
        loader = _loader(test_set, batch_size, num_workers)
        for rgbs, gts, _ in track(loader, len(loader), f'{progress} (global scale)',
                                  'batches', enabled=bool(progress)):
            rows.extend(compute_depth_metrics(p, g, scale=scale, **options)
                        for p, g in zip(_predict(estimator, rgbs), gts))
        result['global'] = dict(aggregate_metrics(rows), scale=scale)
    return result
