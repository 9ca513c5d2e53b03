"""ONNX Runtime: CPU execution provider; CUDA / TensorRT providers on a GPU when installed."""

from typing import List, Optional

import numpy as np
import torch

from .base import run_per_frame, Runner
from ..onnx_export import INPUT_NAME, OnnxModelInfo


class OnnxRuntimeRunner(Runner):
    """An `InferenceSession` over an exported file (static batch 1, fed frame by frame)."""

    name = 'onnxruntime'

    def __init__(self, info: OnnxModelInfo, device: torch.device,
                 threads: Optional[int] = None, cache_dir: Optional[str] = None) -> None:
        super().__init__(device)
        import onnxruntime
        self.info = info
        self.threads = threads
        self._cache_dir = cache_dir
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self._options = options
        self.session = onnxruntime.InferenceSession(
            str(info.path), sess_options=options, providers=self._providers(onnxruntime))
        self.providers = self.session.get_providers()

    def _providers(self, onnxruntime) -> List:
        available = onnxruntime.get_available_providers()
        chosen: List = []
        if self.device.type == 'cuda':
            index = self.device.index or 0
            if 'TensorrtExecutionProvider' in available and self._cache_dir:
                chosen.append(('TensorrtExecutionProvider', {
                    'device_id': index, 'trt_fp16_enable': True,
                    'trt_engine_cache_enable': True,
                    'trt_engine_cache_path': self._cache_dir}))
            if 'CUDAExecutionProvider' in available:
                chosen.append(('CUDAExecutionProvider', {'device_id': index}))
        chosen.append('CPUExecutionProvider')
        return chosen

    def _run_one(self, frame: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(frame.detach().cpu().numpy(), dtype=np.float32)
        output = self.session.run(None, {INPUT_NAME: array})[0]
        return torch.from_numpy(output).to(self.device)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return run_per_frame(batch, self._run_one)

    def describe(self) -> str:
        provider = self.providers[0].replace('ExecutionProvider', '')
        threads = f', {self.threads} threads' if self.threads else ''
        return f'onnxruntime ({provider}{threads}, {self.info.describe()})'

    def fall_back_to_cpu(self) -> 'Runner':
        self.device = torch.device('cpu')
        import onnxruntime
        self.session = onnxruntime.InferenceSession(
            str(self.info.path), sess_options=self._options,
            providers=['CPUExecutionProvider'])
        self.providers = self.session.get_providers()
        return self
