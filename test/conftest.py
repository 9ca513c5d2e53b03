"""
Shared test material: the read-only `../shared` samples and untrained checkpoints.

Sample data lives outside the repository, so every test that needs it skips with a reason when
it is absent (`needs`, or the fixtures below). Constants are importable (``from conftest import
KITCHEN``) where a fixture cannot reach, e.g. module-level parametrisation.
"""

from pathlib import Path
from typing import Callable, Dict, Tuple

import cv2
import numpy as np
import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / 'shared'
DATA = SHARED / 'data'
#: 50 frames of 7-Scenes' red kitchen (colour, 16-bit depth in mm, poses)
KITCHEN = DATA / '7scenes-redkitchen'
#: the kitchen camera: 7-Scenes' published intrinsics at 640x480
K_KITCHEN = np.array([[585.0, 0.0, 320.0], [0.0, 585.0, 240.0], [0.0, 0.0, 1.0]])
#: the kitchen frame the image and point-cloud tests use
KITCHEN_FRAME = 'frame-000150'

torch.set_num_threads(2)


def needs(path: Path) -> Path:
    """Return `path`, or skip the calling test when the shared sample is missing."""
    if not path.exists():
        pytest.skip(f'{path} not present (shared sample data lives outside the repo)')
    return path


def random_weights(path: Path, variant: str = 'baseline', seed: int = 0) -> Path:
    """
    Save an untrained network of `variant`, seeded so that its outputs repeat.

    Enough wherever a test checks plumbing (loading, shapes, messages), not depth quality.
    The global RNG is left as it was, so fixtures do not change other tests' random numbers.
    """
    from treeaspp_depth_ros.checkpoint import save_checkpoint
    from treeaspp_depth_ros.model import DepthNet
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = DepthNet(variant)
    return save_checkpoint(path, network)


@pytest.fixture(scope='session')
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f'{SHARED} not present (reference data and samples live outside the repo)')
    return SHARED


@pytest.fixture(scope='session')
def reference_dir(shared_dir: Path) -> Path:
    path = shared_dir / 'reference' / 'sc-sfmlearner'
    if not path.is_dir():
        pytest.skip(f'{path} not present')
    return path


@pytest.fixture(scope='session')
def kitchen_dir() -> Path:
    """Locate the 7-Scenes kitchen sequence folder (skips when absent)."""
    return needs(KITCHEN)


@pytest.fixture(scope='session')
def kitchen_rgbd(kitchen_dir: Path) -> Tuple[np.ndarray, np.ndarray]:
    """Read one real kitchen frame: RGB (HxWx3 uint8), raw depth (HxW uint16 mm, 65535 = hole)."""
    rgb = cv2.cvtColor(cv2.imread(str(kitchen_dir / f'{KITCHEN_FRAME}.color.png')),
                       cv2.COLOR_BGR2RGB)
    depth_mm = cv2.imread(str(kitchen_dir / f'{KITCHEN_FRAME}.depth.png'), cv2.IMREAD_UNCHANGED)
    return rgb, depth_mm


@pytest.fixture()
def k_kitchen() -> np.ndarray:
    """Copy `K_KITCHEN`, so that a test may modify it."""
    return K_KITCHEN.copy()


@pytest.fixture(scope='session')
def random_weights_factory(tmp_path_factory) -> Callable[..., Path]:
    """`make(variant='baseline', seed=0)`: one untrained checkpoint per variant and seed."""
    made: Dict[Tuple[str, int], Path] = {}
    folder = tmp_path_factory.mktemp('random_weights')

    def make(variant: str = 'baseline', seed: int = 0) -> Path:
        if (variant, seed) not in made:
            made[variant, seed] = random_weights(folder / f'{variant}_{seed}.pt', variant, seed)
        return made[variant, seed]
    return make


@pytest.fixture(scope='session')
def baseline_weights(random_weights_factory) -> Path:
    """Save one untrained baseline checkpoint (seed 0) for the whole session."""
    return random_weights_factory('baseline')
