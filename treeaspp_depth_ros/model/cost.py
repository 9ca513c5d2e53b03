"""
What a network costs: parameters, stored size, forward FLOPs and CPU latency.

The measurements of `treeaspp-depth info`'s model cards, and of the benchmarks that relate a
backend's speed to the work of one forward pass.
"""

import time
from typing import Any, Callable, Dict, List

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def state_size_mb(module: torch.nn.Module) -> float:
    """Size of the fp32 weights and buffers as stored in a checkpoint (MB = 1e6 bytes)."""
    return sum(t.numel() * t.element_size() for t in module.state_dict().values()) / 1e6


def gflops(module: torch.nn.Module, width: int = 320, height: int = 256) -> float:
    """
    Forward FLOPs (multiply and add counted separately) for one image.

    Counted on the meta device (the module's weights as shapes only): the count is the same
    and nothing is computed, so `info` does not spend seconds per network on a busy CPU.
    """
    from torch.func import functional_call
    tensors = {name: torch.empty_like(t, device='meta')
               for name, t in [*module.named_parameters(), *module.named_buffers()]}
    x = torch.zeros(1, 3, height, width, device='meta')
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        functional_call(module, tensors, (x,))
    return counter.get_total_flops() / 1e9


def interleaved_times_ms(calls: Dict[str, Callable[[], Any]], rounds: int, warmup: int = 1
                         ) -> Dict[str, List[float]]:
    """
    Wall times (ms) of each call, timed in `rounds` interleaved rounds after `warmup` calls.

    One call of each per round: a shared machine's drift (another job, a CPU clock change)
    hits every candidate alike, so their ratios hold even when the absolute times do not.
    Timing one candidate's runs back to back instead let the load of the moment decide.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    times: Dict[str, List[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            call()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def cpu_latency_ms(modules: Dict[str, torch.nn.Module], width: int = 320, height: int = 256,
                   rounds: int = 10) -> Dict[str, float]:
    """Median batch-1 CPU forward time of each network, in interleaved rounds after warm-up."""
    x = torch.randn(1, 3, height, width)

    def forward(module: torch.nn.Module) -> Callable[[], Any]:
        return lambda: module(x)
    with torch.inference_mode():
        times = interleaved_times_ms({name: forward(m) for name, m in modules.items()}, rounds)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}
