"""
Where and in what arithmetic a network runs: devices and precisions by name, for everyone.

Inference (the node, every command), the torch backend, the node's parameter checks and
training's AMP share these, so ``auto`` and ``bf16`` mean the same thing everywhere. Importing
this module loads no torch: the node checks its parameters before torch is loaded, so only the
functions that return torch objects import it.
"""

from typing import Any, Optional

#: arithmetic on the GPU: fp32, or fp16 / bf16 autocast
PRECISIONS = ('fp32', 'fp16', 'bf16')
_TORCH_DTYPES = {'fp32': 'float32', 'fp16': 'float16', 'bf16': 'bfloat16'}


def check_precision(precision: str) -> str:
    """Return `precision` if it is one of `PRECISIONS`; ValueError lists them."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {", ".join(PRECISIONS)}, got {precision!r}')
    return precision


def torch_dtype(precision: str) -> Any:
    """Return the torch dtype of a precision name (`torch.bfloat16` for bf16)."""
    import torch
    return getattr(torch, _TORCH_DTYPES[check_precision(precision)])


def resolve_device(name: str = 'auto', local_rank: Optional[int] = None,
                   option: str = 'device') -> Any:
    """
    Return the torch device `name` means: `auto` picks CUDA when present, else the CPU.

    Asking for CUDA without one is an error naming `option` (the parameter or config key), not
    a fallback. `local_rank` (torchrun's process on this machine) puts a bare `cuda` (and
    `auto`) on that process's GPU; an explicit `cuda:N` is kept.
    """
    import torch
    if name == 'auto':
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    device = torch.device(name)
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise RuntimeError(f'{option} {name!r} requested but CUDA is not available '
                               f'(use {option} auto or cpu)')
        if device.index is None and local_rank is not None:
            device = torch.device('cuda', local_rank)
    return device
