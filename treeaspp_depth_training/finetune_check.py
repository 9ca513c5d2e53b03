"""
Does fine-tuning on a robot's own recording help? The demo weights on a bag of an unseen room.

Renders a procedural room the demo weights never saw, records it with `make-bag`'s writer, and
fine-tunes on that bag (``data.format bag``, ``model.init`` the demo weights, no depth labels),
scoring the room's own frames (``val.format bag``, median-scaled AbsRel) before, after the pose
warm-up and at the end. The recipe (`RECIPE`) starts from depth and pose networks trained
together, as the demo weights ship, and trains both at ``optim.init_lr_factor`` x
``optim.lr``. A checkpoint without a pose network (converted SC-Depth depth weights) needs
``optim.init_warmup_steps``: the fresh pose network then learns alone first (the loaded depth
weights wait, their BatchNorm statistics follow the room). ``test/test_training_bag.py`` runs
the recipe once; ``benchmarks/finetune_bag.py`` over rooms x seeds.
"""

from pathlib import Path
import time
from typing import Any, Dict

from treeaspp_depth_ros.bag.dataset_writer import write_dataset_bag
from treeaspp_depth_ros.data.records import from_arrays
from treeaspp_depth_ros.data.synthetic import generate_sequence
from treeaspp_depth_ros.weights import DEMO_WEIGHTS

from .config import load_config
from .trainer import Trainer

#: rooms the demo weights never saw (they trained on 100-131, validated on 10000+)
FIRST_ROOM = 30000


def record_room(bag: Path, room: int, frames: int = 24, size: int = 64,
                trajectory: str = 'forward', storage: str = 'sqlite3') -> Path:
    """Render a procedural room and write it as a bag (image, camera_info, depth, pose)."""
    seq = generate_sequence(room, frames, size, size, trajectory)
    write_dataset_bag(from_arrays(seq.images, seq.intrinsics, seq.depths, seq.poses), bag,
                      storage=storage)
    return bag


#: the fine-tuning recipe measured here (README, "Adapt to your robot's environment"): every
#: loaded tensor learns at 0.3 x 5e-4; a fresh pose network would learn at 5e-4
RECIPE = {'lr': 5e-4, 'warmup': 0, 'lr_factor': 0.3, 'steps': 60, 'freeze_bn': False}


def finetune_config(bag: Path, out: Path, steps: int = RECIPE['steps'],
                    lr: float = RECIPE['lr'], seed: int = 0,
                    warmup: int = RECIPE['warmup'], lr_factor: float = RECIPE['lr_factor'],
                    freeze_bn: bool = RECIPE['freeze_bn'], batch_size: int = 4,
                    threads: int = 0, init: Path = DEMO_WEIGHTS) -> Dict[str, Any]:
    """Demo recipe (64x64, baseline) on the bag, starting from `init` (the demo weights)."""
    return load_config('demo', {
        'model.init': str(init), 'data.format': 'bag', 'data.root': str(bag),
        'val.format': 'bag', 'optim.lr': lr, 'optim.batch_size': batch_size,
        'optim.init_warmup_steps': warmup, 'optim.init_lr_factor': lr_factor,
        'optim.init_freeze_bn': freeze_bn,
        'optim.epochs': 1000, 'train.max_steps': steps, 'train.seed': seed,
        'train.threads': threads, 'train.output_dir': str(out), 'train.tensorboard': False,
        'train.progress': False})


def train_steps(trainer: Trainer, steps: int) -> None:
    """Run `steps` optimiser steps over the loader's epochs (no checkpoints written)."""
    while trainer.global_step < steps:
        trainer.sampler.set_position(trainer.epoch, 0)
        for batch in trainer.loader:
            trainer.train_step(batch)
            trainer.global_step += 1
            if trainer.global_step >= steps:
                return
        trainer.epoch += 1


def finetune_room(bag: Path, out: Path, seed: int = 0, threads: int = 0,
                  init: Path = DEMO_WEIGHTS, **recipe: Any) -> Dict[str, float]:
    """Score the room (median-scaled AbsRel) before, after the warm-up and after fine-tuning."""
    recipe = dict(RECIPE, **recipe)
    trainer = Trainer(finetune_config(bag, out, recipe['steps'], recipe['lr'], seed,
                                      recipe['warmup'], recipe['lr_factor'],
                                      recipe['freeze_bn'], threads=threads, init=init))
    try:
        before = trainer.validate()['median']['abs_rel']
        started, cpu = time.perf_counter(), time.process_time()
        train_steps(trainer, recipe['warmup'])
        warm = trainer.validate()['median']['abs_rel']
        train_steps(trainer, recipe['steps'])
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        after = trainer.validate()['median']['abs_rel']
    finally:
        trainer.close()
    return {'before': float(before), 'after_warmup': float(warm), 'after': float(after),
            'train_s': seconds, 'train_cpu_s': cpu, 'drop': float(before - after),
            'ratio': float(after / before)}
