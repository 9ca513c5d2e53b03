"""Colour-mapped depth for people: predict PNGs, the node's depth/image_colored, reports."""

from typing import Optional, Tuple

import cv2
import numpy as np


def depth_range(depth: np.ndarray, percentiles: Tuple[float, float] = (2.0, 98.0)
                ) -> Tuple[float, float]:
    """Robust display range of the finite, positive depths."""
    valid = depth[np.isfinite(depth) & (depth > 0)]
    if valid.size == 0:
        return 0.1, 10.0
    low, high = np.percentile(valid, percentiles)
    return float(low), float(max(high, low * 1.0001 + 1e-6))


def colorize_depth(depth: np.ndarray, vmin: Optional[float] = None,
                   vmax: Optional[float] = None, colormap: int = cv2.COLORMAP_MAGMA
                   ) -> np.ndarray:
    """HxWx3 uint8 RGB: near is bright, far is dark (inverse depth), invalid pixels black."""
    depth = np.asarray(depth, dtype=np.float32)
    if vmin is None or vmax is None:
        low, high = depth_range(depth)
        vmin = low if vmin is None else vmin
        vmax = high if vmax is None else vmax
    valid = np.isfinite(depth) & (depth > 0)
    inverse = np.zeros_like(depth)
    np.divide(1.0, depth, out=inverse, where=valid)
    lo, hi = 1.0 / vmax, 1.0 / max(vmin, 1e-6)
    scaled = np.clip((inverse - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    bgr = cv2.applyColorMap((scaled * 255).astype(np.uint8), colormap)
    bgr[~valid] = 0
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
