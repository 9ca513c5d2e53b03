"""DDP as torchrun runs it, on the CPU: gloo, world size 2, gradients averaged across ranks."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from treeaspp_depth_training.config import load_config

CONFIG = {'model.variant': 'baseline', 'data.width': 64, 'data.height': 64,
          'data.synthetic.sequences': 2, 'data.synthetic.frames': 6, 'optim.batch_size': 2,
          'train.tensorboard': False, 'train.threads': 1, 'val.format': 'none'}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out_dir: str) -> None:
    # what torchrun exports for each process
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE='2', LOCAL_RANK=str(rank))
    from treeaspp_depth_training.trainer import Trainer
    trainer = Trainer(load_config('synthetic_tiny', dict(CONFIG, **{
        'train.output_dir': out_dir})))
    assert dist.is_initialized() and dist.get_world_size() == 2
    batch = next(iter(trainer.loader))
    params = [p for p in trainer.net.parameters() if p.requires_grad]

    def grads():
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                          for p in params])

    with trainer.model.no_sync():  # this rank's own gradient, no communication
        trainer.forward_loss(batch)[0].backward()
    local = grads()
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.forward_loss(batch)[0].backward()  # DDP all-reduces during backward
    synced = grads()
    gathered = [torch.empty_like(local) for _ in range(2)]
    dist.all_gather(gathered, local)
    trainer.optimizer.zero_grad(set_to_none=True)
    initial = torch.cat([p.detach().flatten() for p in params])
    losses = [trainer.train_step(batch)['loss'] for _ in range(2)]
    weights = torch.cat([p.detach().flatten() for p in params])
    all_weights = [torch.empty_like(weights) for _ in range(2)]
    dist.all_gather(all_weights, weights)
    torch.save({'local': gathered, 'synced': synced, 'tgt_sum': int(batch['tgt'].sum()),
                'losses': losses, 'weights_equal': torch.equal(*all_weights),
                'weights_changed': not torch.equal(weights, initial)},
               os.path.join(out_dir, f'rank{rank}.pt'))
    trainer.close()


def test_two_process_gloo_ddp_averages_gradients(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / 'rank0.pt', weights_only=True)
    r1 = torch.load(tmp_path / 'rank1.pt', weights_only=True)
    assert r0['tgt_sum'] != r1['tgt_sum']  # DistributedSampler gave the ranks different data
    local0, local1 = r0['local']
    assert not torch.allclose(local0, local1)
    mean = (local0 + local1) / 2
    scale = mean.abs().max()
    assert torch.allclose(r0['synced'], mean, atol=1e-5 * scale)
    assert torch.allclose(r1['synced'], mean, atol=1e-5 * scale)
    assert len(r0['losses']) == 2 and r0['weights_changed']
    assert r0['weights_equal'] and r1['weights_equal']  # the two steps kept the replicas in sync
