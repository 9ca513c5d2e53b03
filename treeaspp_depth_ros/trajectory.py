"""
Trajectory errors of a camera path against the truth: ATE after an alignment, and RPE.

One implementation for `bag-eval`'s odometry report and the SLAM benchmarks. Poses are 4x4
camera-to-world matrices, one per frame, in the same order as the truth's.
"""

from typing import Dict, Tuple

import numpy as np


def align(estimate: np.ndarray, truth: np.ndarray, with_scale: bool
          ) -> Tuple[np.ndarray, np.ndarray, float]:
    """
    Rotation, translation and scale that best map `estimate` points `[N, 3]` onto `truth`.

    Umeyama's least-squares solution; `with_scale` False keeps the scale at 1, which is the
    honest test of a path that claims metres (a metric depth must give a metric motion).
    """
    mu_e, mu_t = estimate.mean(0), truth.mean(0)
    centred_e, centred_t = estimate - mu_e, truth - mu_t
    U, singular, Vt = np.linalg.svd(centred_t.T @ centred_e / len(estimate))
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    R = U @ D @ Vt
    scale = 1.0
    if with_scale:
        variance = float((centred_e ** 2).sum() / len(estimate))
        scale = float(np.trace(np.diag(singular) @ D) / variance) if variance > 0 else 1.0
    return R, mu_t - scale * R @ mu_e, scale


def path_length(poses: np.ndarray) -> float:
    """Length (sum of the steps) of the camera path of `[N, 4, 4]` poses."""
    return float(np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1).sum())


def _ate(poses: np.ndarray, truth: np.ndarray, with_scale: bool) -> Dict[str, float]:
    R, t, scale = align(poses[:, :3, 3], truth[:, :3, 3], with_scale)
    aligned = scale * poses[:, :3, 3] @ R.T + t
    error = np.linalg.norm(aligned - truth[:, :3, 3], axis=1)
    return {'rmse_m': float(np.sqrt(np.mean(error ** 2))), 'max_m': float(error.max()),
            'scale': scale}


def relative_errors(poses: np.ndarray, truth: np.ndarray) -> Dict[str, float]:
    """
    Frame-to-frame errors: translation (m) and rotation (deg) per step, RMSE.

    `translation_error_ratio` is the mean translation error over the mean true step, the
    figure that says whether each measured motion is right to within a fraction of itself.
    """
    moved = np.linalg.inv(poses[:-1]) @ poses[1:]
    real = np.linalg.inv(truth[:-1]) @ truth[1:]
    error = np.linalg.inv(real) @ moved
    trans = np.linalg.norm(error[:, :3, 3], axis=1)
    cosine = np.clip((np.trace(error[:, :3, :3], axis1=1, axis2=2) - 1) / 2, -1.0, 1.0)
    steps = np.linalg.norm(real[:, :3, 3], axis=1)
    return {'trans_rmse_m': float(np.sqrt(np.mean(trans ** 2))),
            'rot_rmse_deg': float(np.sqrt(np.mean(np.degrees(np.arccos(cosine)) ** 2))),
            'translation_error_ratio': float(trans.mean() / steps.mean())
            if steps.mean() > 0 else float('nan')}


def trajectory_errors(poses: np.ndarray, truth: np.ndarray) -> Dict[str, object]:
    """
    ATE after a similarity alignment (shape of the path) and after a rigid one (its metres).

    Also the RPE per frame, as measured and with the similarity's scale (for a path whose
    metres are not known), both path lengths and `ate_sim_over_length`, the similarity ATE as
    a fraction of the true path's length.
    """
    poses, truth = np.asarray(poses, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if poses.shape != truth.shape or poses.ndim != 3 or len(poses) < 3:
        raise ValueError(f'need two [N, 4, 4] paths of the same length N >= 3, got '
                         f'{poses.shape} and {truth.shape}')
    length = path_length(truth)
    similarity = _ate(poses, truth, with_scale=True)
    rescaled = poses.copy()
    rescaled[:, :3, 3] *= similarity['scale']
    return {
        'frames': len(poses),
        'ate_similarity': similarity,
        'ate_rigid': _ate(poses, truth, with_scale=False),
        'rpe': relative_errors(poses, truth),
        'rpe_similarity': relative_errors(rescaled, truth),
        'trajectory_length_m': length,
        'estimated_length_m': path_length(poses),
        'ate_sim_over_length': similarity['rmse_m'] / length if length > 0 else float('nan'),
    }
