"""
What a network costs: parameters, stored size, forward FLOPs and CPU latency.

The measurements of `treeaspp-depth info`'s model cards, and of the benchmarks that relate a
backend's speed to the work of one forward pass.
"""

import time

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def state_size_mb(module: torch.nn.Module) -> float:
    """Size of the fp32 weights and buffers as stored in a checkpoint (MB = 1e6 bytes)."""
    return sum(t.numel() * t.element_size() for t in module.state_dict().values()) / 1e6


def gflops(module: torch.nn.Module, width: int = 320, height: int = 256) -> float:
    """Forward FLOPs (multiply and add counted separately) for one image."""
    x = torch.zeros(1, 3, height, width)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() / 1e9


def cpu_latency_ms(module: torch.nn.Module, width: int = 320, height: int = 256,
                   runs: int = 10) -> float:
    """Median batch-1 forward time on the CPU after warm-up."""
    x = torch.randn(1, 3, height, width)
    times = []
    with torch.inference_mode():
        for _ in range(2):
            module(x)
        for _ in range(runs):
            start = time.perf_counter()
            module(x)
            times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]
