"""Build a runner for a backend name: the ONNX backends get an exported file (cached)."""

import hashlib
from pathlib import Path
from typing import Optional, Tuple, Union

import torch

from . import cache_root
from .base import BackendUnavailable, Runner
from .. import __version__
from ..onnx_export import export_onnx, file_sha256, OnnxModelInfo, OPSET, read_onnx_info


def cached_export(weights: Union[str, Path], input_size: Tuple[int, int],
                  folder: Optional[Path] = None) -> OnnxModelInfo:
    """
    Export the checkpoint at `input_size` once, keep it in the cache, and return its info.

    Keyed by the checkpoint's sha256, the size, opset, torch and package versions, so a changed
    checkpoint or exporter never reuses an old graph.
    """
    width, height = input_size
    fields = f'{file_sha256(weights)} {width}x{height} {OPSET} {torch.__version__} {__version__}'
    digest = hashlib.sha256(fields.encode()).hexdigest()[:16]
    folder = folder or cache_root() / 'onnx'
    path = folder / f'{Path(weights).stem}_{width}x{height}_{digest}.onnx'
    if not path.is_file():
        export_onnx(weights, path, input_size)  # atomic: a crash leaves no partial file
    return read_onnx_info(path)


def make_onnx_runner(backend: str, info: OnnxModelInfo, device: torch.device,
                     threads: Optional[int] = None, engine_rebuild: bool = False) -> Runner:
    """Build an ONNX Runtime, OpenVINO or TensorRT runner over an exported file."""
    if backend == 'onnxruntime':
        from .onnxruntime_runner import OnnxRuntimeRunner
        return OnnxRuntimeRunner(info, device, threads,
                                 cache_dir=str(cache_root() / 'engines' / 'onnxruntime'))
    if backend == 'openvino':
        if device.type != 'cpu':
            raise BackendUnavailable('backend openvino runs on the CPU here: use device cpu '
                                     '(or auto on a machine without a GPU)')
        from .openvino_runner import OpenVinoRunner
        return OpenVinoRunner(info, threads, cache_dir=cache_root() / 'openvino')
    if backend == 'tensorrt':
        from .engine_cache import EngineCache
        from .tensorrt_runner import TensorRtRunner
        return TensorRtRunner(info, device, EngineCache(cache_root() / 'engines'),
                              rebuild=engine_rebuild)
    raise ValueError(f'{backend!r} does not run ONNX graphs')
