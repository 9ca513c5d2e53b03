"""Colour-mapped depth for humans (RViz/rqt ``depth/image_colored``, demo side-by-side images)."""

from typing import Optional

import cv2
import numpy as np


def colorize_depth(depth: np.ndarray, min_depth: Optional[float] = None,
                   max_depth: Optional[float] = None, invalid_rgb=(0, 0, 0)) -> np.ndarray:
    """
    Map HxW metres to HxWx3 uint8 RGB with OpenCV's TURBO map, near = red, far = blue.

    Inverse depth is mapped linearly between ``1/max_depth`` and ``1/min_depth`` (defaults: the
    2nd/98th percentiles of the valid depth) because that spreads indoor scenes' nearby
    structure over most of the colour range. NaN or non-positive depth is ``invalid_rgb``.
    """
    depth = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    if not valid.any():
        out = np.empty(depth.shape + (3,), np.uint8)
        out[:] = invalid_rgb
        return out
    if min_depth is None or max_depth is None:
        # percentiles of a 1-in-16 subsample: the same range for a fraction of the time
        sample = depth[::4, ::4][valid[::4, ::4]]
        lo, hi = np.percentile(sample if sample.size else depth[valid], [2.0, 98.0])
        min_depth = float(lo) if min_depth is None else min_depth
        max_depth = float(hi) if max_depth is None else max_depth
    near, far = 1.0 / max(float(min_depth), 1e-6), 1.0 / max(float(max_depth), 1e-6)
    span = max(near - far, 1e-12)
    with np.errstate(divide='ignore', invalid='ignore'):
        level = (1.0 / depth - far) * (255.0 / span)
    level = np.clip(np.nan_to_num(level, nan=0.0, posinf=255.0, neginf=0.0), 0, 255)
    rgb = cv2.cvtColor(cv2.applyColorMap(level.astype(np.uint8), cv2.COLORMAP_TURBO),
                       cv2.COLOR_BGR2RGB)
    rgb[~valid] = invalid_rgb
    return rgb
