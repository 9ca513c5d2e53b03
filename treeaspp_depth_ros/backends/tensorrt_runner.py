"""
TensorRT: an FP16 engine built from the exported ONNX on the target, cached per GPU and version.

Buffers are torch CUDA tensors (no pycuda); the engine runs on torch's current stream.
"""

from typing import Optional

import torch

from .base import BackendUnavailable, run_per_frame, Runner
from .engine_cache import EngineCache, EngineKey
from ..onnx_export import INPUT_NAME, OnnxModelInfo, OUTPUT_NAME


def engine_key(info: OnnxModelInfo, device: torch.device, trt_version: str,
               precision: str = 'fp16') -> EngineKey:
    """Key the engine cache by this file, this GPU and this TensorRT."""
    name = torch.cuda.get_device_name(device)
    major, minor = torch.cuda.get_device_capability(device)
    return EngineKey(gpu=f'{name} sm_{major}{minor}', tensorrt=trt_version,
                     input_size=info.input_size, onnx_sha256=info.sha256, precision=precision)


def build_engine(onnx_path: str, fp16: bool = True, workspace_gib: float = 2.0) -> bytes:
    """Parse the ONNX and build a serialised engine (minutes on a Jetson, seconds on x86)."""
    import tensorrt as trt
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, 'EXPLICIT_BATCH'):  # TensorRT < 10
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, 'rb') as handle:
        if not parser.parse(handle.read()):
            errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendUnavailable(f'TensorRT cannot parse {onnx_path}: {errors}')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if fp16 and getattr(builder, 'platform_has_fast_fp16', True):  # deprecated in TRT 10
        config.set_flag(trt.BuilderFlag.FP16)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailable(f'TensorRT failed to build an engine for {onnx_path}')
    return bytes(serialized)


class TensorRtRunner(Runner):
    """An FP16 engine (built or loaded from `EngineCache`), batch 1, fed frame by frame."""

    name = 'tensorrt'

    def __init__(self, info: OnnxModelInfo, device: torch.device, cache: EngineCache,
                 rebuild: bool = False, fp16: bool = True) -> None:
        if device.type != 'cuda' or not torch.cuda.is_available():
            raise BackendUnavailable('backend tensorrt needs a CUDA GPU (use device auto or '
                                     'cuda, or another backend on the CPU)')
        super().__init__(device)
        import tensorrt as trt
        self.info = info
        self.precision = 'fp16' if fp16 else 'fp32'
        key = engine_key(info, device, trt.__version__, self.precision)
        with torch.cuda.device(device):
            engine_bytes, self.cache_status = cache.get_or_build(
                key, lambda: build_engine(str(info.path), fp16=fp16), rebuild=rebuild)
            self.engine_path = cache.path_for(key)
            self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
            if self.engine is None:
                raise BackendUnavailable(f'TensorRT could not load {self.engine_path}; '
                                         'rebuild it with engine_rebuild')
            self.context = self.engine.create_execution_context()
        width, height = info.input_size
        self._output = torch.empty((1, 1, height, width), dtype=torch.float32, device=device)
        self._fallback: Optional[Runner] = None

    def _run_one(self, frame: torch.Tensor) -> torch.Tensor:
        frame = frame.to(self.device, torch.float32).contiguous()
        self.context.set_tensor_address(INPUT_NAME, frame.data_ptr())
        self.context.set_tensor_address(OUTPUT_NAME, self._output.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError('TensorRT execution failed')
        return self._output.clone()

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return run_per_frame(batch, self._run_one)

    def describe(self) -> str:
        return (f'tensorrt ({self.device}, {self.precision} engine {self.cache_status}, '
                f'{self.info.describe()})')

    def fall_back_to_cpu(self) -> Runner:
        from . import is_installed
        if not is_installed('onnxruntime'):
            raise BackendUnavailable('TensorRT failed and no CPU backend can run the ONNX: '
                                     'python3 -m pip install onnxruntime')
        from .onnxruntime_runner import OnnxRuntimeRunner
        return OnnxRuntimeRunner(self.info, torch.device('cpu'))
