"""PyTorch eager: the reference backend, and the only one that needs no export."""

import torch

from .base import Runner
from ..compute import torch_dtype


class TorchRunner(Runner):
    """A `DepthNet` in eval mode; fp16 / bf16 autocast on CUDA, optional channels_last."""

    name = 'torch'

    def __init__(self, net: torch.nn.Module, device: torch.device, precision: str = 'fp32',
                 channels_last: bool = False) -> None:
        super().__init__(device)
        self.precision = precision
        self.channels_last = channels_last
        self.net = self._place(net, device)

    def _place(self, net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        net = net.eval().to(device)
        return net.to(memory_format=torch.channels_last) if self.channels_last else net

    @torch.inference_mode()
    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        dtype = torch_dtype(self.precision)
        use_autocast = self.device.type == 'cuda' and dtype != torch.float32
        with torch.autocast(self.device.type, dtype=dtype, enabled=use_autocast):
            disparity = self.net(batch)
        return 1.0 / disparity.float()

    def describe(self) -> str:
        layout = ', channels_last' if self.channels_last else ''
        return f'torch ({self.device}{layout})'

    def fall_back_to_cpu(self) -> 'Runner':
        self.net = self._place(self.net, torch.device('cpu'))
        self.device = torch.device('cpu')
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return self
