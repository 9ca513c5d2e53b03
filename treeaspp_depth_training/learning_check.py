"""
Does self-supervised training learn depth? One from-scratch run of a recipe, measured.

No depth label is used for training. The checkpoint chosen on validation rooms is measured on
other held-out rooms against their ground truth, next to the same network before training and to
a constant-depth predictor (all median-scaled, so a constant is the best a network that learned
nothing can do). The learning test runs this once; ``benchmarks/learning_matrix.py`` runs it over
seeds and thread counts, because the training trajectory differs between machines.
"""

from dataclasses import asdict, dataclass
from pathlib import Path
import time
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch

from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.metrics import aggregate_metrics, compute_depth_metrics

from .config import load_config
from .data.testsets import synthetic_test_set
from .trainer import Trainer

#: held-out rooms of the measurement: seeds that neither training nor validation use
HELD_OUT_SEED = 20_000
HELD_OUT_ROOMS = 8
HELD_OUT_FRAMES = 3


@dataclass
class LearningResult:
    """Median-scaled AbsRel on held-out rooms before and after one training run."""

    seed: int
    threads: int
    untrained: float
    trained: float
    constant: float
    steps: int
    train_time_s: float
    wall_s: float
    demo_abs_rel: Optional[float] = None

    @property
    def ratio(self) -> float:
        """Trained over untrained error: how much of it the run removed."""
        return self.trained / self.untrained

    def as_dict(self) -> Dict[str, Any]:
        return dict(asdict(self), ratio=self.ratio)


def abs_rel_on(predict: Callable[[np.ndarray], np.ndarray], test_set) -> float:
    """Median-scaled AbsRel of `predict` (RGB -> depth) over a depth test set."""
    rows = [compute_depth_metrics(predict(rgb), gt, crop=None) for rgb, gt, _ in test_set]
    return aggregate_metrics(rows)['abs_rel']


def demo_frames_abs_rel(weights: Path, frames: int = 60) -> float:
    """Median-scaled AbsRel over the demo's own synthetic room (what the demo reports)."""
    from treeaspp_depth_ros.demo.sources import synthetic_dataset
    estimator = DepthEstimator(str(weights), device='cpu')  # at its training size
    dataset = synthetic_dataset(frames)
    rows = [compute_depth_metrics(estimator.predict(dataset.rgb(i)), dataset.depth(i), crop=None)
            for i in range(len(dataset))]
    return aggregate_metrics(rows)['abs_rel']


def run_learning_check(output_dir: Path, config: str = 'demo', seed: int = 0,
                       threads: int = 0, overrides: Optional[Dict[str, Any]] = None,
                       demo_frames: bool = False) -> LearningResult:
    """Train `config` from scratch with `seed` and measure it before and after."""
    started = time.monotonic()
    # a measurement is never resumed: last.pth without optimiser state writes a third as much
    settings = {'train.seed': seed, 'train.threads': threads, 'train.tensorboard': False,
                'train.progress': False, 'train.resumable': False,
                'train.output_dir': str(output_dir)}
    settings.update(overrides or {})
    trainer = Trainer(load_config(config, settings))
    data = trainer.config['data']
    size = (data['width'], data['height'])
    test_set = synthetic_test_set(count=HELD_OUT_ROOMS, num_frames=HELD_OUT_FRAMES,
                                  width=size[0], height=size[1], seed=HELD_OUT_SEED)
    try:
        untrained = abs_rel_on(DepthEstimator(trainer.net.depth_net, device='cpu',
                                              input_size=size).predict, test_set)
        trainer.net.depth_net.train()
        best = trainer.fit()
    finally:
        trainer.close()
    trained = abs_rel_on(DepthEstimator(str(best), device='cpu', input_size=size).predict,
                         test_set)
    constant = abs_rel_on(lambda rgb: np.ones(rgb.shape[:2]), test_set)
    return LearningResult(
        seed=seed, threads=torch.get_num_threads(), untrained=untrained, trained=trained,
        constant=constant, steps=trainer.global_step, train_time_s=trainer.train_time_s,
        wall_s=time.monotonic() - started,
        demo_abs_rel=demo_frames_abs_rel(best) if demo_frames else None)
