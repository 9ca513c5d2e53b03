"""
The demo's default weights: a small checkpoint shipped with the package.

They are made by this project's own training
(``python -m treeaspp_depth_training.scripts.make_demo_weights`` with
``treeaspp_depth_training/configs/demo.yaml``: the baseline network trained from scratch on
synthetic rooms, never the demo's room) and stored in half precision with a metric
``depth_scale``. Shipping them means the main command starts at once on any machine, and every
user sees the same depth.
"""

from pathlib import Path
from typing import Tuple

from ..cli import CommandError

#: the shipped file, installed with the Python package (``package_data`` in setup.py)
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / 'default_weights.pt'
REPRODUCE = 'python -m treeaspp_depth_training.scripts.make_demo_weights'


def default_weights() -> Path:
    """Path of the shipped demo checkpoint; a clear error when an install lacks it."""
    if not DEFAULT_WEIGHTS.is_file():
        raise CommandError(f'the default demo weights are missing ({DEFAULT_WEIGHTS}); '
                           f'reinstall the package, pass --weights, or recreate them with '
                           f'`{REPRODUCE}` from a source checkout')
    return DEFAULT_WEIGHTS


def input_size_of(weights: Path, default: Tuple[int, int] = (320, 256)) -> Tuple[int, int]:
    """Network input size a checkpoint was trained at (its stored config), else ``default``."""
    from ..checkpoint import CheckpointError, load_checkpoint
    try:
        data = (load_checkpoint(weights).get('config') or {}).get('data') or {}
        return int(data['width']), int(data['height'])
    except (CheckpointError, KeyError, TypeError, ValueError):
        return default
