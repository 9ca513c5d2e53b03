"""
One inference path for every consumer: the ROS node, `predict`, the demo and bag evaluation.

Keeping preprocessing (resize, normalisation), precision handling and the resize back to the
camera resolution in one place is what makes offline and live evaluation agree.
"""

from pathlib import Path
from typing import List, Optional, Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import yaml

from .checkpoint import load_depth_net, training_input_size
from .geometry import normalize_image
from .model import DepthNet
from .sizes import check_input_size, DEFAULT_INPUT_SIZE

PRECISIONS = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def scale_sidecar_path(weights: Union[str, Path]) -> Path:
    """`<weights>.scale.yaml`: a metric scale kept next to a checkpoint (calibrate-scale)."""
    return Path(str(weights) + '.scale.yaml')


def read_scale_sidecar(weights: Union[str, Path]) -> Optional[float]:
    """Return the sidecar's `depth_scale`, or None when there is no sidecar."""
    path = scale_sidecar_path(weights)
    if not path.is_file():
        return None
    try:
        value = float(yaml.safe_load(path.read_text())['depth_scale'])
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f'{path}: expected a YAML mapping with a numeric depth_scale '
                         f'({error})') from None
    return value


def resolve_device(device: str = 'auto') -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without one is an error, not a fallback."""
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    resolved = torch.device(device)
    if resolved.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(f'device {device!r} requested but CUDA is not available '
                           '(use device auto or cpu)')
    return resolved


class DepthEstimator:
    """Turn RGB frames into depth maps (metres when a calibrated scale is known)."""

    def __init__(self, weights: Union[str, Path, DepthNet], device: str = 'auto',
                 input_size: Optional[Sequence[int]] = None, precision: str = 'fp32',
                 depth_scale: Optional[float] = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {sorted(PRECISIONS)}, got {precision!r}')
        if input_size is not None:
            input_size = check_input_size(input_size)  # a bad size fails before the load
        self.device = resolve_device(device)
        self.checkpoint: dict = {}
        if isinstance(weights, DepthNet):
            self.net = weights.eval().to(self.device)
        else:
            self.net, self.checkpoint = load_depth_net(weights, self.device)
            sidecar_scale = read_scale_sidecar(weights)
            if sidecar_scale is not None:  # the sidecar overrides the checkpoint's own scale
                self.checkpoint['depth_scale'] = sidecar_scale
        # A network is only right at the size it was trained at: default to that, say which.
        trained = training_input_size(self.checkpoint)
        if input_size is not None:
            self.input_size, self.input_size_source = input_size, 'requested'
        elif trained is not None:
            self.input_size, self.input_size_source = check_input_size(trained), 'checkpoint'
        else:
            self.input_size, self.input_size_source = DEFAULT_INPUT_SIZE, 'default'
        self.variant = self.net.variant
        stored_scale = self.checkpoint.get('depth_scale')
        self.scale_is_metric = depth_scale is not None or stored_scale is not None
        chosen = depth_scale if depth_scale is not None else stored_scale
        self.depth_scale = float(chosen) if chosen is not None else 1.0
        if not np.isfinite(self.depth_scale) or self.depth_scale <= 0:
            raise ValueError(f'depth_scale must be a positive number, got {self.depth_scale}')
        self.precision = precision
        self._autocast_dtype = PRECISIONS[precision]

    @property
    def input_size_text(self) -> str:
        """Describe the size in use and where it came from (logs, diagnostics, reports)."""
        width, height = self.input_size
        origin = {'requested': 'requested', 'checkpoint': "the checkpoint's training size",
                  'default': 'default: the checkpoint names no training size'}
        return f'{width}x{height} ({origin[self.input_size_source]})'

    def describe(self) -> str:
        """One line for the start of every command: network, input size, device."""
        return (f'{self.variant} network, input {self.input_size_text}, {self.device}, '
                f'{torch.get_num_threads()} CPU threads')

    def fall_back_to_cpu(self) -> None:
        """Continue on the CPU after a GPU failure (out of memory, device lost)."""
        self.net = self.net.to('cpu')
        self.device = torch.device('cpu')
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _to_batch(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        width, height = self.input_size
        resized = []
        for rgb in images:
            if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
                raise ValueError(f'expected an HxWx3 uint8 RGB image, got {rgb.shape} '
                                 f'{rgb.dtype}')
            if rgb.shape[:2] != (height, width):
                shrink = rgb.shape[0] > height
                rgb = cv2.resize(rgb, (width, height),
                                 interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            resized.append(rgb)
        batch = torch.from_numpy(np.stack(resized)).to(self.device, non_blocking=True)
        return normalize_image(batch.permute(0, 3, 1, 2)).contiguous()

    @torch.inference_mode()
    def predict_batch(self, images: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Depth (float32, each at its own image's resolution) for RGB uint8 images."""
        if not images:
            return []
        batch = self._to_batch(images)
        use_autocast = self.device.type == 'cuda' and self._autocast_dtype != torch.float32
        with torch.autocast(self.device.type, dtype=self._autocast_dtype, enabled=use_autocast):
            disparity = self.net(batch)
        depth = (self.depth_scale / disparity.float())
        outputs = []
        for index, rgb in enumerate(images):
            d = depth[index:index + 1]
            if d.shape[-2:] != rgb.shape[:2]:
                d = F.interpolate(d, size=rgb.shape[:2], mode='bilinear', align_corners=False)
            outputs.append(d[0, 0].cpu().numpy())
        return outputs

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """Depth (float32 HxW) for one HxWx3 uint8 RGB image."""
        return self.predict_batch([rgb])[0]
