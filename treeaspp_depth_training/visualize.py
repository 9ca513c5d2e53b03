"""Images for humans: the TensorBoard training grid and the paper's Figure 3 comparison."""

from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch

from treeaspp_depth_ros.conversions.colormap import colorize_depth
from treeaspp_depth_ros.view_synthesis import denormalize_image, inverse_warp


def _rgb(x: torch.Tensor) -> np.ndarray:
    return (denormalize_image(x.float()).permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)


@torch.no_grad()
def training_grid(pieces: Dict[str, torch.Tensor]) -> np.ndarray:
    """RGB | depth | self-discovered mask | reference warped into the target, first sample."""
    tgt, ref = pieces['tgt'][:1].float(), pieces['ref'][:1].float()
    depth, ref_depth = pieces['tgt_depth'][:1].float(), pieces['ref_depth'][:1].float()
    warped, valid, projected, computed = inverse_warp(ref, depth, ref_depth,
                                                      pieces['pose'][:1].float(),
                                                      pieces['K'][:1].float())
    diff = ((computed - projected).abs() / (computed + projected)).clamp(0, 1)
    mask = ((1 - diff) * valid)[0, 0].cpu().numpy()
    mask_rgb = np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2)
    depth_rgb = colorize_depth(depth[0, 0].cpu().numpy())
    return np.concatenate([_rgb(tgt[0]), depth_rgb, mask_rgb, _rgb(warped[0])], axis=1)


def _label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    scale = max(0.4, image.shape[1] / 640)
    thickness = max(1, int(round(scale * 2)))
    cv2.putText(out, text, (6, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                thickness + 2, cv2.LINE_AA)
    cv2.putText(out, text, (6, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thickness, cv2.LINE_AA)
    return out


def comparison_figure(rgbs: Sequence[np.ndarray], predictions: Dict[str, List[np.ndarray]],
                      gts: Sequence[np.ndarray], width: Optional[int] = 320) -> np.ndarray:
    """
    Draw the paper's Figure 3: one row per image, RGB | each variant | ground truth.

    Every row shares one colour scale (the ground truth's 2-98 percentile range), so the
    variants are compared by colour directly. Predictions are median-scaled to the ground truth.
    """
    rows = []
    for index, (rgb, gt) in enumerate(zip(rgbs, gts)):
        valid = np.isfinite(gt) & (gt > 0)
        lo, hi = np.percentile(gt[valid], [2.0, 98.0]) if valid.any() else (0.5, 10.0)
        tiles = [_label(rgb, 'RGB')]
        for name, preds in predictions.items():
            pred = preds[index]
            if valid.any():
                pred = pred * (np.median(gt[valid]) / np.median(pred[valid]))
            tiles.append(_label(colorize_depth(pred, lo, hi), name))
        tiles.append(_label(colorize_depth(np.where(valid, gt, np.nan), lo, hi),
                            'ground truth'))
        if width:
            height = int(round(rgb.shape[0] * width / rgb.shape[1]))
            tiles = [cv2.resize(t, (width, height), interpolation=cv2.INTER_AREA)
                     for t in tiles]
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)
