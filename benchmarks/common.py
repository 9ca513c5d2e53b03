"""Shared benchmark plumbing: machine description, where results go, and JSON output."""

import argparse
import json
import os
from pathlib import Path
import platform
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

import torch
from treeaspp_depth_ros.files import atomic_write_text
from treeaspp_depth_ros.model.cost import interleaved_times_ms

#: the committed figures the docs quote: written only when --output names them
RESULTS = Path(__file__).resolve().parent / 'results'
#: a run without --output writes to a fresh folder here (git-ignored, as every `runs/`)
RUNS = Path(__file__).resolve().parent / 'runs'


def add_output_option(parser: argparse.ArgumentParser, name: str, flag: str = '--output'
                      ) -> None:
    """
    Add `flag`, defaulting to a fresh run folder, so a trial run never rewrites a figure.

    `name` is the committed result it would otherwise replace (``model.json``; ``''`` for a
    folder option); regenerating that one is asked for by naming it.
    """
    committed = f'benchmarks/results/{name}' if name else 'benchmarks/results'
    target = name or 'its files'
    parser.add_argument(
        flag, type=Path, default=None,
        help=f'where to write (default: {target} in a fresh folder benchmarks/runs/STAMP/; '
             f'{flag} {committed} regenerates the committed figure)')


def resolve_output(value: Optional[Path], name: str, flag: str = '--output') -> Path:
    """Return the path given, else `name` in a fresh run folder (announced: none was asked)."""
    if value is not None:
        return value
    RUNS.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=time.strftime('%Y%m%d-%H%M%S-'), dir=RUNS))
    path = folder / name if name else folder
    committed = RESULTS / name if name else RESULTS
    print(f'[benchmark] writing to {path} ({flag} {committed} regenerates the committed '
          'figure)', flush=True)
    return path


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
    return interleaved_times_ms({'call': fn}, runs, warmup)['call']


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
