"""OpenVINO on the CPU, fp32 precision pinned, compiled model cached between starts."""

from pathlib import Path
from typing import Optional

import torch

from .base import run_per_frame, Runner
from ..onnx_export import OnnxModelInfo


class OpenVinoRunner(Runner):
    """A compiled model over an exported file (static batch 1, latency hint)."""

    name = 'openvino'

    def __init__(self, info: OnnxModelInfo, threads: Optional[int] = None,
                 cache_dir: Optional[Path] = None) -> None:
        super().__init__(torch.device('cpu'))
        import openvino
        self.info = info
        self.threads = threads
        core = openvino.Core()
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            core.set_property({'CACHE_DIR': str(cache_dir)})
        # f32 pinned: on CPUs with bf16 units OpenVINO would otherwise run bf16 silently.
        config = {'INFERENCE_PRECISION_HINT': 'f32', 'PERFORMANCE_HINT': 'LATENCY'}
        if threads:
            config['INFERENCE_NUM_THREADS'] = int(threads)
        self.compiled = core.compile_model(str(info.path), 'CPU', config)
        self.request = self.compiled.create_infer_request()

    def _run_one(self, frame: torch.Tensor) -> torch.Tensor:
        array = frame.detach().cpu().contiguous().numpy()
        self.request.infer({0: array})
        return torch.from_numpy(self.request.get_output_tensor(0).data.copy())

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return run_per_frame(batch, self._run_one)

    def describe(self) -> str:
        threads = f', {self.threads} threads' if self.threads else ''
        return f'openvino (CPU{threads}, {self.info.describe()})'

    def fall_back_to_cpu(self) -> 'Runner':
        return self
