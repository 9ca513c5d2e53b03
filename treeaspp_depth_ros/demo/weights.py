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
