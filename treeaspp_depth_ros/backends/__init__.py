"""
Inference backends: one network call behind `DepthEstimator`, chosen by name.

A runner maps the normalised NCHW float32 batch to depth in network units (1 / disparity);
preprocessing, the metric scale and the resize back stay in `DepthEstimator`, so backends differ
only in how the network runs. This module is the registry: names, the `auto` order, and the
exact install command that a missing package's error gives.
"""

import importlib.util
import os
from pathlib import Path
from typing import Dict, Tuple

from .base import BackendUnavailable, Runner

BACKENDS = ('auto', 'torch', 'onnxruntime', 'openvino', 'tensorrt')
#: backends that run an ONNX graph (a checkpoint is exported to the cache first)
ONNX_BACKENDS = ('onnxruntime', 'openvino', 'tensorrt')
#: what `auto` tries on a CPU, fastest first (benchmarks/results/backends.json, README)
CPU_AUTO_ORDER = ('openvino', 'onnxruntime', 'torch')
#: Python packages each backend imports (the onnx package reads the exported metadata)
PACKAGES: Dict[str, Tuple[str, ...]] = {
    'torch': ('torch',), 'onnxruntime': ('onnx', 'onnxruntime'),
    'openvino': ('onnx', 'openvino'), 'tensorrt': ('onnx', 'tensorrt')}
INSTALL_COMMANDS = {
    'torch': 'python3 -m pip install torch',
    'onnxruntime': 'python3 -m pip install onnx onnxruntime',
    'openvino': 'python3 -m pip install onnx openvino',
    'tensorrt': 'python3 -m pip install onnx tensorrt',
}

__all__ = ['BACKENDS', 'BackendUnavailable', 'CPU_AUTO_ORDER', 'INSTALL_COMMANDS',
           'ONNX_BACKENDS', 'Runner', 'cache_root', 'check_backend_name', 'is_installed',
           'require_backend', 'resolve_backend']


def cache_root() -> Path:
    """``$TREEASPP_DEPTH_CACHE``, else ``$XDG_CACHE_HOME/treeaspp_depth_ros`` (~/.cache)."""
    explicit = os.environ.get('TREEASPP_DEPTH_CACHE')
    if explicit:
        return Path(explicit)
    base = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(base) / 'treeaspp_depth_ros'


def check_backend_name(name: str) -> str:
    """Validate a backend name; ValueError lists the choices."""
    if name not in BACKENDS:
        raise ValueError(f'backend must be one of {", ".join(BACKENDS)}, got {name!r}')
    return name


def _importable(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ValueError:  # sys.modules[package] is None: Python's own "blocked import"
        return False


def _missing(name: str) -> Tuple[str, ...]:
    return tuple(p for p in PACKAGES[name] if not _importable(p))


def is_installed(name: str) -> bool:
    """Say whether every package `name` needs can be imported."""
    return not _missing(name)


def require_backend(name: str) -> None:
    """Fail at start, with the exact install command, when `name`'s packages are missing."""
    missing = _missing(check_backend_name(name))
    if missing:
        raise BackendUnavailable(
            f'backend {name!r} needs the Python package(s) {", ".join(missing)}, which are not '
            f'installed: {INSTALL_COMMANDS[name]}')


def resolve_backend(name: str, device_type: str, onnx_only: bool = False) -> str:
    """
    Return the backend that `name` means on `device_type` ('cpu' or 'cuda').

    `auto`: TensorRT when CUDA and tensorrt are present, else torch on CUDA, else the fastest
    installed CPU backend (`CPU_AUTO_ORDER`). `onnx_only` (the weights are an .onnx file) skips
    torch, which needs a checkpoint.
    """
    check_backend_name(name)
    if name != 'auto':
        require_backend(name)
        return name
    if device_type == 'cuda':
        if is_installed('tensorrt'):
            return 'tensorrt'
        if not onnx_only:
            return 'torch'
        if is_installed('onnxruntime'):
            return 'onnxruntime'
    for candidate in CPU_AUTO_ORDER:
        if onnx_only and candidate == 'torch':
            continue
        if is_installed(candidate):
            return candidate
    raise BackendUnavailable('no backend can run an .onnx file here: '
                             f'{INSTALL_COMMANDS["onnxruntime"]}')
