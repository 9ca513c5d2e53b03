"""Shared fixtures: the read-only `../shared` material (skipped with a reason when absent)."""

from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / 'shared'

torch.set_num_threads(2)


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
