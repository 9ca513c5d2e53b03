"""
The weights shipped with the package, what they were trained on, and under which licence.

* ``DEFAULT_WEIGHTS``: what the node, ``ros2 launch`` and every command use without
  ``--weights``. The paper's tree_aspp network learnt without labels from a real handheld
  indoor video (7-Scenes) and procedural rooms
  (``python -m treeaspp_depth_training.scripts.make_default_weights``).
* ``DEMO_WEIGHTS``: the demo's own: the baseline network trained on procedural rooms only
  (``python -m treeaspp_depth_training.scripts.make_demo_weights``), 64x64, the synthetic
  start that fine-tuning on a robot's recording is measured from.

Both are stored in half precision with their pose network and a metric ``depth_scale``.
"""

from pathlib import Path
from typing import Any, Dict, Optional, Union

PACKAGE_DIR = Path(__file__).resolve().parent
#: installed with the Python package (``package_data`` in setup.py)
DEFAULT_WEIGHTS = PACKAGE_DIR / 'default_weights.pt'
DEMO_WEIGHTS = PACKAGE_DIR / 'demo' / 'default_weights.pt'
REPRODUCE = {DEFAULT_WEIGHTS: 'python -m treeaspp_depth_training.scripts.make_default_weights',
             DEMO_WEIGHTS: 'python -m treeaspp_depth_training.scripts.make_demo_weights'}
SEVEN_SCENES_LICENCE = ('Microsoft 7-Scenes terms: non-commercial research use only; weights '
                        'trained on it inherit that condition')
SYNTHETIC_LICENCE = "the package's own procedural rooms: the package's licence"
DEMO_TRAINED_ON = '32 procedural rooms of this package (seeds 100-131), no real images'
#: what a shipped file made before checkpoints recorded their origin learnt from
SHIPPED_ORIGIN = {DEMO_WEIGHTS: (DEMO_TRAINED_ON, SYNTHETIC_LICENCE)}


class MissingWeightsError(FileNotFoundError):
    """A shipped weights file is not installed."""


def shipped_weights(path: Path = DEFAULT_WEIGHTS) -> Path:
    """Path of a shipped checkpoint; a clear error when an install lacks it."""
    if not path.is_file():
        raise MissingWeightsError(
            f'the shipped weights are missing ({path}); reinstall the package, pass a weights '
            f'file, or recreate them with `{REPRODUCE.get(path, "your training")}` from a '
            f'source checkout')
    return path


def resolve_weights(value: Union[str, Path, None]) -> Path:
    """Turn a weights argument into a path: empty or None means the shipped default weights."""
    if value is None or str(value) == '':
        return shipped_weights(DEFAULT_WEIGHTS)
    return Path(value)


def weights_origin(checkpoint: Dict[str, Any], path: Optional[Path] = None) -> Dict[str, str]:
    """Say what a checkpoint was trained on and under which licence (for logs and info)."""
    shipped = path is not None and is_shipped(path)
    known = SHIPPED_ORIGIN.get(Path(path).resolve(), ('', '')) if shipped else ('', '')
    return {
        'weights': str(path) if path is not None else '',
        'weights_shipped': str(shipped).lower(),
        'trained_on': str(checkpoint.get('trained_on') or known[0]
                          or 'not recorded in the checkpoint'),
        'licence': str(checkpoint.get('licence') or known[1] or 'not recorded in the checkpoint'),
    }


#: the help of every command's ``--weights`` (``cli_options.add_weights_option``)
DEFAULT_WEIGHTS_HELP = ('default: the shipped default weights, tree_aspp learnt from a real '
                        '7-Scenes kitchen video and procedural rooms; non-commercial research '
                        'use only')


def in_package(path: Union[str, Path]) -> bool:
    """Whether `path` lies inside the installed package, where no command writes by default."""
    resolved = Path(path).resolve()
    return resolved == PACKAGE_DIR or PACKAGE_DIR in resolved.parents


def is_shipped(path: Union[str, Path]) -> bool:
    """Whether `path` is one of the files shipped with the package."""
    return Path(path).resolve() in (DEFAULT_WEIGHTS, DEMO_WEIGHTS)
