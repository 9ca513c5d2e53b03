"""
One inference path for every consumer: the ROS node, `predict`, the demo and bag evaluation.

Keeping preprocessing (resize, normalisation), precision handling and the resize back to the
camera resolution in one place is what makes offline and live evaluation agree.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .backends import check_backend_name, resolve_backend
from .backends.factory import cached_export, make_onnx_runner
from .backends.torch_runner import TorchRunner
from .checkpoint import (load_depth_net, read_scale_sidecar, scale_provenance,
                         sidecar_provenance, training_input_size, UNRECORDED_ORIGIN)
from .compute import check_precision, resolve_device
from .model import DepthNet
from .onnx_export import check_onnx_matches, is_onnx_path, read_onnx_info
from .sizes import check_input_size, DEFAULT_INPUT_SIZE
from .view_synthesis import normalize_image

#: torch's default memory layout for networks the estimator loads itself: channels_last ran
#: in 0.36-0.88x the NCHW time in interleaved rounds (benchmarks/results/torch_layout.json)
TORCH_CHANNELS_LAST = True

#: `DepthEstimator.scale_origin` when no scale is applied (1.0: depth only up to scale)
NO_SCALE = 'none'


@dataclass
class Prediction:
    """One frame's depth in metres at the image's size, and the network's input and output."""

    depth: np.ndarray
    network_input: torch.Tensor  # [1, 3, h, w] normalised
    network_depth: torch.Tensor  # [1, 1, h, w] network units (before depth_scale)


class DepthEstimator:
    """
    Turn RGB frames into depth maps (metres when a calibrated scale is known).

    `weights`: a checkpoint, a `DepthNet`, or an exported .onnx file (whose metadata gives the
    variant, input size and depth scale). `backend` (`treeaspp_depth_ros.backends`) only
    replaces the network call: preprocessing, scale and resize back are the same for all.
    """

    def __init__(self, weights: Union[str, Path, DepthNet], device: str = 'auto',
                 input_size: Optional[Sequence[int]] = None, precision: str = 'fp32',
                 depth_scale: Optional[float] = None, backend: str = 'torch',
                 cpu_threads: Optional[int] = None, engine_rebuild: bool = False,
                 channels_last: Optional[bool] = None) -> None:
        check_precision(precision)
        if input_size is not None:
            input_size = check_input_size(input_size)  # a bad size fails before the load
        onnx_file = is_onnx_path(weights)
        if check_backend_name(backend) == 'torch' and onnx_file:
            raise ValueError(f'the torch backend needs a checkpoint (.pth), not {weights}: use '
                             'backend onnxruntime, openvino, tensorrt or auto')
        self.device = resolve_device(device)
        self.backend = resolve_backend(backend, self.device.type, onnx_only=onnx_file)
        if self.backend == 'openvino' and device == 'auto':
            self.device = torch.device('cpu')  # OpenVINO runs on the CPU here
        self.checkpoint: dict = {}
        #: (origin, from synthetic rooms) of the weights' own scale (`scale_provenance`)
        self._stored_scale = ('', False)
        self.net: Optional[DepthNet] = None
        self.onnx_info = None
        if isinstance(weights, DepthNet):
            self.net = weights.eval().to(self.device)
        elif onnx_file:
            self.onnx_info = read_onnx_info(weights)
            check_onnx_matches(self.onnx_info, input_size=input_size)
            input_size, self.checkpoint['variant'] = None, self.onnx_info.variant
            self.checkpoint.update(trained_on=self.onnx_info.trained_on,
                                   licence=self.onnx_info.licence)
            if self.onnx_info.depth_scale is not None:
                self.checkpoint['depth_scale'] = self.onnx_info.depth_scale
            self._stored_scale = (self.onnx_info.scale_origin or UNRECORDED_ORIGIN,
                                  self.onnx_info.scale_synthetic)
            sidecar_scale = read_scale_sidecar(weights)
            if sidecar_scale is not None:
                self.checkpoint['depth_scale'] = sidecar_scale
                self._stored_scale = sidecar_provenance(weights)
        else:
            self.net, self.checkpoint = load_depth_net(weights, self.device)
            self._stored_scale = scale_provenance(self.checkpoint)
            sidecar_scale = read_scale_sidecar(weights)
            if sidecar_scale is not None:  # the sidecar overrides the checkpoint's own scale
                self.checkpoint['depth_scale'] = sidecar_scale
                self._stored_scale = sidecar_provenance(weights)
        # A network is only right at the size it was trained at: default to that, say which.
        trained = training_input_size(self.checkpoint)
        if self.onnx_info is not None:
            self.input_size, self.input_size_source = self.onnx_info.input_size, 'onnx'
        elif input_size is not None:
            self.input_size, self.input_size_source = input_size, 'requested'
        elif trained is not None:
            self.input_size, self.input_size_source = check_input_size(trained), 'checkpoint'
        else:
            self.input_size, self.input_size_source = DEFAULT_INPUT_SIZE, 'default'
        self.variant = self.net.variant if self.net is not None else self.onnx_info.variant
        self.use_depth_scale(depth_scale)
        self.precision = precision
        if self.backend == 'torch':
            # a DepthNet passed in (a training network) keeps its layout unless asked
            loaded = not isinstance(weights, DepthNet)
            layout = (TORCH_CHANNELS_LAST and loaded) if channels_last is None else channels_last
            self.runner = TorchRunner(self.net, self.device, precision, channels_last=layout)
        else:
            if self.onnx_info is None:
                if self.net is not None and not isinstance(weights, (str, Path)):
                    raise ValueError(f'backend {self.backend} needs a checkpoint file or an '
                                     'exported .onnx, not a DepthNet object')
                self.onnx_info = cached_export(weights, self.input_size)
            self.runner = make_onnx_runner(self.backend, self.onnx_info, self.device,
                                           cpu_threads, engine_rebuild)
            self.device = self.runner.device

    def use_depth_scale(self, requested: Optional[float] = None, raw: bool = False) -> None:
        """
        Decide the scale of every depth from now on: the one rule, for every consumer.

        `requested` (a positive number: a command's --depth-scale, the node's depth_scale
        parameter) wins; else the weights' own scale (the checkpoint's or ONNX file's
        `depth_scale`, its sidecar first); else 1.0, and `scale_is_metric` is False. `raw`
        gives network units whatever is stored (the node's floor scale multiplies them).
        Sets `depth_scale`, `scale_origin` ('parameter', the weights' record of which data and
        method, or NO_SCALE), `scale_synthetic` and `scale_is_metric`: a scale calibrated on
        procedural rooms is applied but is not metric for a real camera. ValueError for a
        scale that is not positive.
        """
        chosen = requested if requested is not None else self.checkpoint.get('depth_scale')
        self.scale_synthetic = False
        if raw or chosen is None:
            self.depth_scale, self.scale_is_metric, self.scale_origin = 1.0, False, NO_SCALE
            return
        scale = float(chosen)
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f'depth_scale must be a positive number, got {scale}')
        self.scale_origin, self.scale_synthetic = ('parameter', False) if requested is not None \
            else self._stored_scale
        self.depth_scale, self.scale_is_metric = scale, not self.scale_synthetic

    @property
    def has_depth_scale(self) -> bool:
        """Whether a scale is applied (metric or from synthetic rooms), not 1.0 by default."""
        return self.scale_origin != NO_SCALE

    @property
    def input_size_text(self) -> str:
        """Describe the size in use and where it came from (logs, diagnostics, reports)."""
        width, height = self.input_size
        origin = {'requested': 'requested', 'checkpoint': "the checkpoint's training size",
                  'onnx': "the ONNX file's static shape",
                  'default': 'default: the checkpoint names no training size'}
        return f'{width}x{height} ({origin[self.input_size_source]})'

    def describe(self) -> str:
        """One line for the start of every command: network, input size, device, backend."""
        return (f'{self.variant} network, input {self.input_size_text}, {self.device}, '
                f'{torch.get_num_threads()} CPU threads, backend {self.describe_backend()}')

    def describe_backend(self) -> str:
        """Name the backend in use and its settings (diagnostics, `info`, reports)."""
        return self.runner.describe()

    def fall_back_to_cpu(self) -> None:
        """Continue on the CPU after a GPU failure (out of memory, device lost)."""
        self.runner = self.runner.fall_back_to_cpu()
        self.backend, self.device = self.runner.name, self.runner.device
        if self.backend == 'torch':
            self.net = self.runner.net

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Resize and normalise RGB frames into the network's input batch (every backend's)."""
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
        return self._to_images(self.runner(self.preprocess(images)), images)

    def _to_images(self, network_depth: torch.Tensor, images: Sequence[np.ndarray]
                   ) -> List[np.ndarray]:
        """Scale network depth to metres and resize each map back to its image."""
        depth = self.depth_scale * network_depth  # network units -> metres
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

    @torch.inference_mode()
    def predict_frame(self, rgb: np.ndarray) -> Prediction:
        """
        Depth of one image, with the network's input and output kept for the next frame.

        What :class:`..motion.VisualOdometry` pairs with the following frame, so the
        pose network and the confidence need no second depth pass.
        """
        network_input = self.preprocess([rgb])
        network_depth = self.runner(network_input)
        return Prediction(self._to_images(network_depth, [rgb])[0], network_input,
                          network_depth)
