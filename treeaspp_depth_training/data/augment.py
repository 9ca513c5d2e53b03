"""
SC-SfMLearner's training augmentation: random scale-crop and horizontal flip, K kept exact.

All frames of one sample (target and references) get the same transform, and the intrinsics
follow it, so view synthesis stays geometrically correct. Resizing to the network size and the
random up-scaling are done in one `cv2.resize` per frame.
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from treeaspp_depth_ros.data import DataError
from treeaspp_depth_ros.pinhole import scale_intrinsics


def resize_frame(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area filter when shrinking (no aliasing), bilinear when enlarging."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrink = width < image.shape[1] and height < image.shape[0]
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


@dataclass(frozen=True)
class FrameTransform:
    """Resize frames to (width, height); with an RNG also scale-crop and flip them."""

    width: int
    height: int
    flip: bool = True
    scale_range: Tuple[float, float] = (1.0, 1.15)

    def __call__(self, frames: Sequence[np.ndarray], K: np.ndarray,
                 rng: Optional[np.random.Generator] = None
                 ) -> Tuple[List[np.ndarray], np.ndarray]:
        """Transform frames and intrinsics together; `rng=None` only resizes (validation)."""
        h0, w0 = frames[0].shape[:2]
        for frame in frames[1:]:
            if frame.shape[:2] != (h0, w0):
                raise DataError(f'frames of one sample differ in size: {frame.shape[:2]} vs '
                                f'{(h0, w0)}')
        sx = sy = 1.0
        if rng is not None and self.scale_range[1] > 1.0:
            sx, sy = rng.uniform(self.scale_range[0], self.scale_range[1], 2)
        scaled_w = max(self.width, int(round(self.width * sx)))
        scaled_h = max(self.height, int(round(self.height * sy)))
        K = scale_intrinsics(np.asarray(K, np.float64), scaled_w / w0, scaled_h / h0)
        out = [resize_frame(frame, scaled_w, scaled_h) for frame in frames]
        if scaled_w > self.width or scaled_h > self.height:
            x0 = int(rng.integers(0, scaled_w - self.width + 1))
            y0 = int(rng.integers(0, scaled_h - self.height + 1))
            out = [frame[y0:y0 + self.height, x0:x0 + self.width] for frame in out]
            K[0, 2] -= x0
            K[1, 2] -= y0
        if rng is not None and self.flip and rng.random() < 0.5:
            out = [frame[:, ::-1] for frame in out]
            K[0, 2] = self.width - 1 - K[0, 2]
        return [np.ascontiguousarray(frame) for frame in out], K
