"""Colour-mapped depth for humans (RViz/rqt ``depth/image_colored``, demo side-by-side images)."""

from typing import Optional, Tuple

import cv2
import numpy as np

#: depths (metres) a colour bar may label; the ones inside its range are used
NICE_DEPTHS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0,
               20.0, 30.0, 50.0)


def _turbo_levels(depth: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """Colour-map level 0..255 of each depth: linear in inverse depth, near = 255."""
    near, far = 1.0 / max(float(min_depth), 1e-6), 1.0 / max(float(max_depth), 1e-6)
    span = max(near - far, 1e-12)
    with np.errstate(divide='ignore', invalid='ignore'):
        level = (1.0 / depth - far) * (255.0 / span)
    return np.clip(np.nan_to_num(level, nan=0.0, posinf=255.0, neginf=0.0), 0, 255)


def _turbo(level: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.applyColorMap(level.astype(np.uint8), cv2.COLORMAP_TURBO),
                        cv2.COLOR_BGR2RGB)


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
    rgb = _turbo(_turbo_levels(depth, min_depth, max_depth))
    rgb[~valid] = invalid_rgb
    return rgb


def colorbar_width(height: int) -> int:
    """Width of the colour bar beside images of that height (room for its labels)."""
    return max(80, height // 4)


def depth_colorbar(height: int, min_depth: float, max_depth: float, width: int = 96,
                   background: Tuple[int, int, int] = (255, 255, 255),
                   unit: str = 'm') -> np.ndarray:
    """
    HxWx3 RGB legend for `colorize_depth` with the same range: a bar labelled in metres.

    Near is at the top, as red is; a tick sits where its depth's colour is, so the uneven
    spacing shows the inverse-depth mapping. The range's ends are labelled, then round depths
    wherever a label fits. `unit` follows each number ('' for depth up to scale).
    """
    out = np.empty((height, width, 3), np.uint8)
    out[:] = background
    margin = max(6, height // 40)
    top, bottom = margin, height - 1 - margin
    rows = np.arange(top, bottom + 1, dtype=np.float32)
    bar_width = max(8, width // 4)
    out[top:bottom + 1, :bar_width] = _turbo(
        (255.0 * (bottom - rows) / max(bottom - top, 1))[:, None].repeat(bar_width, 1))
    scale = max(0.3, height / 800.0)
    thickness = 1 if height < 600 else 2
    (_, text_h), _ = cv2.getTextSize('0', cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    candidates = [float(min_depth), float(max_depth)]
    candidates += [d for d in NICE_DEPTHS if min_depth < d < max_depth]
    kept_rows = []
    for depth in candidates:
        level = float(_turbo_levels(np.float32(depth), min_depth, max_depth))
        row = int(round(bottom - level / 255.0 * (bottom - top)))
        if any(abs(row - other) < 2 * text_h for other in kept_rows):
            continue
        kept_rows.append(row)
        cv2.line(out, (bar_width, row), (bar_width + 4, row), (0, 0, 0), thickness)
        text_row = int(np.clip(row + text_h // 2, text_h + 1, height - 2))
        label = f'{depth:.2g} {unit}'.rstrip()
        cv2.putText(out, label, (bar_width + 7, text_row), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return out


def depth_with_colorbar(depth: np.ndarray, min_depth: float, max_depth: float,
                        unit: str = 'm') -> np.ndarray:
    """Colour-mapped depth with its colour bar on the right: one image that says its range."""
    bar = depth_colorbar(depth.shape[0], min_depth, max_depth,
                         width=colorbar_width(depth.shape[0]), unit=unit)
    return np.hstack([colorize_depth(depth, min_depth, max_depth), bar])
