"""Reading a dataset by layout name (`make-bag --format`, `calibrate-scale`, the demo)."""

import inspect
from pathlib import Path
from typing import Callable, Dict

from .bag_dataset import load_bag
from .errors import DataError
from .folder import load_folder
from .nyu import load_nyu_test
from .records import Dataset
from .seven_scenes import load_seven_scenes
from .tum import load_tum

LOADERS: Dict[str, Callable[..., Dataset]] = {
    'folder': load_folder,
    'nyu-test': load_nyu_test,
    'tum': load_tum,
    '7scenes': load_seven_scenes,
    'bag': load_bag,
}
#: dataset folders the bag tools convert or calibrate on (a bag they read directly)
FORMATS = tuple(name for name in LOADERS if name != 'bag')


def load_dataset(fmt: str, src: Path, **options) -> Dataset:
    """Dispatch on the layout name, passing only the options that reader understands."""
    if fmt not in LOADERS:
        raise DataError(f'unknown dataset format {fmt!r}; choose from {", ".join(FORMATS)}')
    loader = LOADERS[fmt]
    accepted = inspect.signature(loader).parameters
    kwargs = {k: v for k, v in options.items() if k in accepted and v is not None}
    src = Path(src)
    if not src.exists():
        raise DataError(f'dataset path {src} does not exist')
    return loader(src, **kwargs)
