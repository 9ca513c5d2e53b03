"""
Proof that self-supervised training learns depth: a short from-scratch run on synthetic video.

The run is the demo weights' recipe (``treeaspp_depth_training/configs/demo.yaml``) with seed
0, measured by `treeaspp_depth_training.learning_check` on held-out rooms against their ground
truth, next to the same network
before training and to a constant-depth predictor (all median-scaled). The recipe's outcome over
seeds and torch thread counts, which is how other machines' trajectories differ from this one's,
is in ``benchmarks/results/learning_matrix.json`` (``python -m benchmarks.learning_matrix``).
"""

from treeaspp_depth_training.learning_check import run_learning_check


def test_short_synthetic_run_learns_depth_without_labels(tmp_path):
    result = run_learning_check(tmp_path / 'run', config='demo', seed=0)
    print(f'median-scaled AbsRel on held-out synthetic rooms: untrained {result.untrained:.3f}, '
          f'trained {result.trained:.3f}, constant depth {result.constant:.3f} '
          f'({result.steps} steps, {result.train_time_s:.0f} s of training)')
    assert result.trained <= 0.7 * result.untrained
    assert result.trained < result.constant
