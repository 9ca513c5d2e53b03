"""
The demo's default weights: trained by this project's own code on first use, then cached.

``default_weights()`` is the only place that decides where they come from, so switching to
committed weights later means changing this one function. Training uses
``training/configs/demo.yaml`` (synthetic indoor rooms, CPU); the result is slimmed to the
depth network and given a metric ``depth_scale`` measured on synthetic rooms the demo never
shows (the generator's depth is in metres), so the node publishes metres for the demo scene.
"""

import hashlib
import os
from pathlib import Path
import shutil
import tempfile
import time
from typing import Callable, Tuple

from ..cli import CommandError

#: synthetic sequences used for the scale: seeds the demo (seed 7) and training never use
CALIBRATION_SEEDS = (90001, 90002)
CALIBRATION_FRAMES = 8


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/treeaspp_depth_ros`` (default ``~/.cache/treeaspp_depth_ros``)."""
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(base) / 'treeaspp_depth_ros'


def demo_config_path() -> Path:
    import training
    return Path(training.__file__).resolve().parent / 'configs' / 'demo.yaml'


def cached_weights_path() -> Path:
    """Cache file name keyed by the training config, so a changed config retrains."""
    digest = hashlib.sha256(demo_config_path().read_bytes()).hexdigest()[:12]
    return cache_dir() / f'demo_weights_{digest}.pt'


def default_weights(train: bool = True, log: Callable[[str], None] = print) -> Path:
    """Return the cached demo checkpoint, training (and caching) it first if needed."""
    target = cached_weights_path()
    if target.is_file():
        return target
    if not train:
        raise CommandError(f'no cached demo weights at {target}; run `treeaspp-depth demo` '
                           'once (it trains them) or pass --weights')
    config = demo_config_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f'[demo] no default weights cached yet: training them with {config} '
        '(one time, a few minutes on a CPU) ...')
    from training.train import train_from_config
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix='demo_training_', dir=target.parent) as scratch:
        best = train_from_config(config, overrides={'train.output_dir': scratch})
        slim = Path(scratch) / 'slim.pt'
        info = _slim_and_calibrate(best, slim)
        os.replace(slim, target)
        shutil.rmtree(scratch, ignore_errors=True)
    log(f'[demo] trained in {(time.monotonic() - started) / 60:.1f} min; cached {target} '
        f'(depth_scale {info["depth_scale"]:.4g}, per-frame scale cv '
        f'{info["scale_ratio_cv"]:.3f})')
    return target


def input_size_of(weights: Path, default: Tuple[int, int] = (320, 256)) -> Tuple[int, int]:
    """Network input size a checkpoint was trained at (its stored config), else ``default``."""
    from ..checkpoint import CheckpointError, load_checkpoint
    try:
        data = (load_checkpoint(weights).get('config') or {}).get('data') or {}
        return int(data['width']), int(data['height'])
    except (CheckpointError, KeyError, TypeError, ValueError):
        return default


def _slim_and_calibrate(best: Path, target: Path) -> dict:
    """Keep the depth network, store the training config and a metric depth scale."""
    import numpy as np

    from .sources import synthetic_dataset
    from ..bag import evaluation
    from ..bag.calibrate import calibrate
    from ..checkpoint import depth_net_from_checkpoint, load_checkpoint, save_checkpoint
    from ..inference import DepthEstimator
    checkpoint = load_checkpoint(best)
    net = depth_net_from_checkpoint(checkpoint)
    config = checkpoint.get('config') or {}
    data = config.get('data') or {}
    size = (int(data.get('width', 320)), int(data.get('height', 256)))
    estimator = DepthEstimator(net, device='cpu', input_size=size, depth_scale=1.0)

    def frames():
        for seed in CALIBRATION_SEEDS:
            dataset = synthetic_dataset(CALIBRATION_FRAMES, 320, 240, seed)
            for i in range(len(dataset)):
                pair = evaluation.Pair(index=i, image_ordinal=i, depth_ordinal=i, stamp_ns=i,
                                       depth_stamp_ns=i, bag_time_ns=i)
                yield pair, dataset.rgb(i), dataset.depth(i)
    result = calibrate(estimator, frames(), 0.1, 10.0)
    scale = float(result['global_scale'])
    if not np.isfinite(scale) or scale <= 0:
        raise CommandError(f'calibrating the demo weights gave an unusable scale {scale}')
    info = {'depth_scale': scale, 'scale_ratio_cv': float(result['scale_ratio_cv']),
            'frames': int(result['frames']),
            'source': 'synthetic rooms, seeds ' + ', '.join(map(str, CALIBRATION_SEEDS))}
    save_checkpoint(target, net, depth_scale=scale, depth_scale_calibration=info,
                    config=config, metrics=checkpoint.get('metrics'),
                    train_time_s=checkpoint.get('train_time_s'))
    return info
