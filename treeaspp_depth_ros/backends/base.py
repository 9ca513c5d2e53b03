"""The runner interface every backend implements (torch-free, so the registry is too)."""

from typing import Any, Callable


class BackendUnavailable(RuntimeError):
    """A requested backend whose package is missing, or that cannot run here; says the fix."""


class Runner:
    """Run the depth network: normalised [B,3,H,W] float32 -> depth in network units."""

    #: backend name as the `backend` option spells it
    name = ''

    def __init__(self, device: Any) -> None:
        self.device = device

    def __call__(self, batch: Any) -> Any:
        """Depth [B,1,H,W] float32 (1 / disparity) for a batch on `self.device`."""
        raise NotImplementedError

    def describe(self) -> str:
        """Backend name and its settings, for logs, diagnostics and reports."""
        return self.name

    def fall_back_to_cpu(self) -> 'Runner':
        """Return a runner that continues on the CPU after a GPU failure."""
        raise BackendUnavailable(f'backend {self.name} has no CPU fallback')


def run_per_frame(batch: Any, run_one: Callable[[Any], Any]) -> Any:
    """Feed a static batch-1 graph one frame at a time and stack the results."""
    import torch
    return torch.cat([run_one(batch[i:i + 1]) for i in range(batch.shape[0])])
