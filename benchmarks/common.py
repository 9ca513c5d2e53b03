"""Shared benchmark plumbing: machine description and JSON output."""

import json
import os
from pathlib import Path
import platform
import time
from typing import Any, Callable, Dict, List

import torch
from treeaspp_depth_ros.files import atomic_write_text


def machine_info() -> Dict[str, Any]:
    """Describe the machine, so figures are never compared across machines blindly."""
    info = {
        'platform': platform.platform(),
        'python': platform.python_version(),
        'torch': torch.__version__,
        'cpu_count': os.cpu_count(),
        'torch_threads': torch.get_num_threads(),
        'cuda': torch.cuda.is_available(),
    }
    try:
        with open('/proc/cpuinfo') as handle:
            names = [line.split(':', 1)[1].strip() for line in handle if 'model name' in line]
        info['cpu'] = names[0] if names else platform.processor()
    except OSError:
        info['cpu'] = platform.processor()
    if torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
    return info


def time_calls(fn: Callable[[], Any], runs: int, warmup: int = 2) -> List[float]:
    """Wall times in milliseconds of `runs` calls after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))
    return ordered[index]


def write_json(result: Dict[str, Any], path: Path, echo: bool = True) -> None:
    """Write `result` atomically (a reader never sees half a file) and print it when `echo`."""
    text = json.dumps(result, indent=2) + '\n'
    atomic_write_text(text, path)
    if echo:
        print(text, end='')
