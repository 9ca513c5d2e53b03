"""
Process-group setup for `torchrun` (one process per GPU, any number of nodes) or one process.

`torchrun` exports RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; without them
training runs as a single process. NCCL is used on GPUs, gloo on CPUs.
"""

from dataclasses import dataclass
import os
from typing import Iterator, List, Tuple

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes (no-op for a single process)."""
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if world_size <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ['RANK']), world_size, int(os.environ.get('LOCAL_RANK', 0)))
    if not dist.is_initialized():
        backend = 'nccl' if device.type == 'cuda' else 'gloo'
        if device.type == 'cuda':
            torch.cuda.set_device(device)
        dist.init_process_group(backend, rank=info.rank, world_size=world_size)
    return info


def all_true(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """Whether `flag` holds on every rank (ranks must take the same branch around collectives)."""
    if not info.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item() > 0)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


class ResumableSampler(DistributedSampler):
    """
    DistributedSampler that yields ``(index, epoch)`` keys and can start mid-epoch.

    The epoch travels with each index so that datasets seed their augmentation from it, and
    `start` skips the batches a resumed run has already trained on.
    """

    def __init__(self, dataset: Dataset, info: DistInfo, shuffle: bool = True, seed: int = 0
                 ) -> None:
        super().__init__(dataset, num_replicas=info.world_size, rank=info.rank,
                         shuffle=shuffle, seed=seed, drop_last=True)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        indices: List[int] = list(super().__iter__())[self.start:]
        return iter([(i, self.epoch) for i in indices])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)
