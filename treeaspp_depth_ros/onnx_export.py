"""
ONNX export of the depth network, its metadata, and INT8 post-training quantisation.

The graph is what every non-PyTorch backend runs (ONNX Runtime, OpenVINO, TensorRT), so it
holds only the network: input ``image`` is the *normalised* float32 NCHW batch of one frame
(``(rgb / 255 - IMAGE_MEAN) / IMAGE_STD``, the same `normalize_image` the PyTorch path uses) and
output ``depth`` is depth in network units (``1 / disparity``). Resizing, normalisation, the
metric scale and the resize back stay in `DepthEstimator`, shared by all backends, which is what
keeps their outputs equal. The shape is static (batch 1, the export's input size): TensorRT and
OpenVINO compile fastest and best for one shape, and a robot runs one camera size.
"""

from dataclasses import dataclass
import hashlib
import json
from pathlib import Path
import tempfile
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Sequence, Tuple, Union
import warnings

import numpy as np
import torch

from . import __version__
from .checkpoint import (CheckpointError, depth_net_from_checkpoint, load_checkpoint,
                         read_scale_sidecar, scale_provenance, sidecar_provenance,
                         training_input_size)
from .data.images import read_rgb
from .files import atomic_write_bytes
from .sizes import check_input_size, DEFAULT_INPUT_SIZE
from .view_synthesis import IMAGE_MEAN, IMAGE_STD

PathLike = Union[str, Path]
#: metadata_props['format'] of this project's ONNX files
ONNX_FORMAT = 'treeaspp_depth_ros.onnx/1'
OPSET = 17
INPUT_NAME = 'image'
OUTPUT_NAME = 'depth'
ONNX_INSTALL = 'python3 -m pip install onnx'


class OnnxModelError(CheckpointError):
    """An ONNX file that cannot be used here (corrupt, foreign, other variant or size)."""


def is_onnx_path(path: Any) -> bool:
    """Say whether `path` names an ONNX file (by suffix: checkpoints are .pt / .pth / .ckpt)."""
    return isinstance(path, (str, Path)) and str(path).lower().endswith('.onnx')


def file_sha256(path: PathLike) -> str:
    """Hex sha256 of a file, read in chunks (checkpoints are tens of MB)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class OnnxModelInfo:
    """What a consumer of an exported file needs, read from its metadata."""

    path: Path
    variant: str
    input_size: Tuple[int, int]  # (width, height)
    depth_scale: Optional[float]  # metres per network unit; None = up to scale
    precision: str  # fp32 | int8
    checkpoint_sha256: str
    package_version: str
    sha256: str  # of the .onnx file itself (TensorRT engine cache key)
    trained_on: str = ''  # what the checkpoint says it learnt from, and its licence
    licence: str = ''
    scale_origin: str = ''  # which data and method gave depth_scale (checkpoint.py)
    scale_synthetic: bool = False  # ... procedural rooms: applied, but not metric

    def describe(self) -> str:
        """One line for logs: file, variant, size, precision."""
        width, height = self.input_size
        return f'{self.path.name} ({self.variant}, {width}x{height}, {self.precision})'


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(f'ONNX support needs the onnx package: {ONNX_INSTALL}') from None
    return onnx


class _DepthGraph(torch.nn.Module):
    """The exported function: normalised image -> depth in network units (1 / disparity)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return 1.0 / self.net(image)


def _metadata(ckpt: Dict[str, Any], input_size: Tuple[int, int], sha: str,
              depth_scale: Optional[float], precision: str,
              scale_origin: Tuple[str, bool] = ('', False)) -> Dict[str, str]:
    width, height = input_size
    return {
        'format': ONNX_FORMAT,
        'variant': ckpt['variant'],
        'model_config': json.dumps(ckpt.get('model_config', {'variant': ckpt['variant']})),
        'input_width': str(width), 'input_height': str(height),
        'input': f'{INPUT_NAME}: float32 [1,3,{height},{width}] RGB, (rgb/255 - mean) / std',
        'normalization_mean': str(IMAGE_MEAN), 'normalization_std': str(IMAGE_STD),
        'output': f'{OUTPUT_NAME}: float32 [1,1,{height},{width}] depth in network units '
                  '(1/disparity); metres = depth * depth_scale',
        'depth_scale': '' if depth_scale is None else repr(float(depth_scale)),
        'depth_scale_origin': scale_origin[0] if depth_scale is not None else '',
        'depth_scale_synthetic': str(bool(scale_origin[1] and depth_scale is not None)).lower(),
        'precision': precision,
        'checkpoint_sha256': sha,
        'package_version': __version__,
        'trained_on': str(ckpt.get('trained_on') or ''),
        'licence': str(ckpt.get('licence') or ''),
    }


def _set_metadata(model: Any, metadata: Dict[str, str]) -> None:
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = 'treeaspp_depth_ros'
    model.producer_version = __version__


def save_onnx_model(model: Any, output: PathLike) -> Path:
    """Check `model` with onnx.checker, then write it atomically (never half a file)."""
    onnx = _require_onnx()
    onnx.checker.check_model(model, full_check=True)
    return atomic_write_bytes(model.SerializeToString(), output)


def export_onnx(weights: PathLike, output: PathLike,
                input_size: Optional[Tuple[int, int]] = None, opset: int = OPSET,
                depth_scale: Optional[float] = None) -> Path:
    """
    Export a checkpoint's depth network to a static-shape ONNX file with metadata.

    `input_size` (width, height) defaults to the checkpoint's training size, else 320x256;
    `depth_scale` defaults to the checkpoint's calibrated scale (its `.scale.yaml` sidecar
    first), stored so that the file alone gives metric depth.
    """
    onnx = _require_onnx()
    if opset < 17:
        raise ValueError(f'opset must be >= 17, got {opset}')
    ckpt = load_checkpoint(weights)
    size = check_input_size(input_size or training_input_size(ckpt) or DEFAULT_INPUT_SIZE)
    origin = ('parameter', False)
    if depth_scale is None:
        depth_scale = read_scale_sidecar(weights)
        origin = sidecar_provenance(weights) if depth_scale is not None else origin
    if depth_scale is None and ckpt.get('depth_scale') is not None:
        depth_scale, origin = float(ckpt['depth_scale']), scale_provenance(ckpt)
    net = depth_net_from_checkpoint(ckpt).float().eval()
    graph = _DepthGraph(net).eval()
    width, height = size
    example = torch.zeros(1, 3, height, width)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        # The TorchScript exporter: 3x faster here than the dynamo one and needs no onnxscript.
        warnings.simplefilter('ignore')
        raw = Path(folder) / 'raw.onnx'
        with torch.no_grad():
            torch.onnx.export(graph, (example,), str(raw), dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              do_constant_folding=True)
        model = onnx.load(str(raw))
    # The exporter leaves the output's dims symbolic after the decoder's upsampling; they are
    # static, and consumers (TensorRT bindings, the metadata check) read them.
    for dim, value in zip(model.graph.output[0].type.tensor_type.shape.dim,
                          (1, 1, height, width)):
        dim.Clear()
        dim.dim_value = value
    _set_metadata(model, _metadata(ckpt, size, file_sha256(weights), depth_scale, 'fp32',
                                   origin))
    return save_onnx_model(model, output)


def read_onnx_info(path: PathLike) -> OnnxModelInfo:
    """Read and validate an exported file's metadata; OnnxModelError says what is wrong."""
    onnx = _require_onnx()
    path = Path(path)
    if not path.is_file():
        raise OnnxModelError(f'ONNX file not found: {path}')
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # noqa: B902 - protobuf raises several types for bad bytes
        raise OnnxModelError(f'cannot read {path}: not a readable ONNX model (truncated or '
                             f'corrupt?): {type(error).__name__}: {error}') from None
    meta = {entry.key: entry.value for entry in model.metadata_props}
    if meta.get('format') != ONNX_FORMAT:
        raise OnnxModelError(f'{path} has no {ONNX_FORMAT!r} metadata: truncated, or not '
                             'exported by treeaspp-depth; export the checkpoint with '
                             '`treeaspp-depth export --weights CKPT --format onnx`')
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] \
        if len(model.graph.input) == 1 else []
    try:
        size = check_input_size((int(meta['input_width']), int(meta['input_height'])))
        if shape != [1, 3, size[1], size[0]]:
            raise ValueError(f'the graph input is {shape}, not [1, 3, {size[1]}, {size[0]}]')
        scale = float(meta['depth_scale']) if meta.get('depth_scale') else None
        return OnnxModelInfo(path=path, variant=meta['variant'], input_size=size,
                             depth_scale=scale, precision=meta.get('precision', 'fp32'),
                             checkpoint_sha256=meta.get('checkpoint_sha256', ''),
                             package_version=meta.get('package_version', ''),
                             sha256=file_sha256(path), trained_on=meta.get('trained_on', ''),
                             licence=meta.get('licence', ''),
                             scale_origin=meta.get('depth_scale_origin', ''),
                             scale_synthetic=meta.get('depth_scale_synthetic') == 'true')
    except (KeyError, ValueError) as error:
        raise OnnxModelError(f'{path}: metadata incomplete or not matching the graph '
                             f'({error})') from None


def check_onnx_matches(info: OnnxModelInfo, variant: Optional[str] = None,
                       input_size: Optional[Tuple[int, int]] = None) -> None:
    """Refuse an exported file for another variant or input size than the one requested."""
    if variant and variant != info.variant:
        raise OnnxModelError(f'wrong variant: {info.path} holds a {info.variant!r} network but '
                             f'{variant!r} was requested')
    if input_size is not None and tuple(input_size) != info.input_size:
        width, height = info.input_size
        raise OnnxModelError(
            f'{info.path} was exported for input {width}x{height}, not '
            f'{input_size[0]}x{input_size[1]} (ONNX graphs have a static shape): drop the '
            f'input size to use {width}x{height}, or export again with --input-size')


def quantize_int8(source: PathLike, output: PathLike,
                  calibration: Iterable[np.ndarray]) -> Path:
    """
    Quantise to static INT8 (QDQ, per-channel weights) with ONNX Runtime's quantiser.

    `calibration` yields normalised float32 [1,3,H,W] inputs. QDQ graphs run INT8 kernels in
    ONNX Runtime and OpenVINO alike; the metadata is kept, with precision ``int8``.
    """
    onnx = _require_onnx()
    try:
        from onnxruntime import quantization
    except ImportError:
        raise ImportError('INT8 quantisation needs onnxruntime: '
                          'python3 -m pip install onnxruntime') from None
    info = read_onnx_info(source)
    batches = [np.ascontiguousarray(x, dtype=np.float32) for x in calibration]
    if not batches:
        raise ValueError('INT8 quantisation needs at least one calibration frame')

    class _Reader(quantization.CalibrationDataReader):

        def __init__(self) -> None:
            self._items = iter({INPUT_NAME: x} for x in batches)

        def get_next(self) -> Optional[Dict[str, np.ndarray]]:
            return next(self._items, None)

    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder) / 'int8.onnx'
        quantization.quantize_static(
            str(info.path), str(raw), _Reader(), quant_format=quantization.QuantFormat.QDQ,
            per_channel=True, activation_type=quantization.QuantType.QUInt8,
            weight_type=quantization.QuantType.QInt8,
            calibrate_method=quantization.CalibrationMethod.MinMax)
        model = onnx.load(str(raw))
    source_meta = {entry.key: entry.value for entry in onnx.load(
        str(info.path), load_external_data=False).metadata_props}
    source_meta['precision'] = 'int8'
    source_meta['calibration_frames'] = str(len(batches))
    _set_metadata(model, source_meta)
    return save_onnx_model(model, output)


def calibration_inputs(frames: Sequence[PathLike],
                       preprocess: Callable[[np.ndarray], np.ndarray]) -> Iterator[np.ndarray]:
    """
    Normalised inputs from colour frame files (:func:`.data.layouts.color_frames` finds them).

    The files come from a layout's own reader, never a folder's every image: a depth map read
    as colour would calibrate the INT8 ranges on grey noise.
    """
    for path in frames:
        yield preprocess(read_rgb(path))
