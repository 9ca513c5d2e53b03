"""Reading a dataset by layout name (`make-bag --format`, `calibrate-scale`, the demo)."""

import inspect
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from .bag_dataset import load_bag
from .errors import DataError
from .folder import load_folder
from .nyu import load_nyu_test
from .records import Dataset
from .seven_scenes import is_seven_scenes, load_seven_scenes
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
AUTO = 'auto'


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


def detect_format(src: Path) -> str:
    """
    Guess a dataset folder's layout from its files, so a tool can take "a folder" of any kind.

    7-Scenes (``frame-*.color.png|jpg``), TUM (``rgb.txt`` or ``rgb/``), NYU (``color/``, or
    ``rgb_*`` beside ``sync_depth_*``), else a plain folder of images.
    """
    src = Path(src)
    if is_seven_scenes(src):
        return '7scenes'
    if (src / 'rgb.txt').is_file() or (src / 'rgb').is_dir():
        return 'tum'
    if (src / 'color').is_dir() or any(src.glob('rgb_*.jpg')) or any(src.glob('rgb_*.png')):
        return 'nyu-test'
    return 'folder'


def load_color_frames(src: Path, fmt: str = AUTO) -> Dataset:
    """
    Read a dataset folder's colour frames by its layout's own reader (no intrinsics needed).

    Each reader knows which files are colour (NYU's ``rgb_*`` not ``sync_depth_*``, 7-Scenes'
    ``.color.``), and a plain folder leaves 16-bit single-channel images (depth maps) out.
    """
    fmt = detect_format(src) if fmt == AUTO else fmt
    return load_dataset(fmt, src, need_intrinsics=False)


def describe_frames(dataset: Dataset, used: Optional[int] = None) -> str:
    """Say which frames a tool took from a dataset (how many, which layout, what it left out)."""
    paths: List[Path] = [f.rgb_path for f in dataset.frames if f.rgb_path is not None]
    used = len(dataset) if used is None else min(used, len(dataset))
    text = f'{used} of {len(dataset)} colour frames ({dataset.name} layout'
    if paths:
        text += f': {paths[0].name}' + (f' .. {paths[used - 1].name}' if used > 1 else '')
    text += ')'
    skipped = dataset.info.get('skipped_depth_images')
    if skipped:
        text += f'; left out as depth maps (single-channel 16-bit): {skipped}'
    return text


def color_frames(src: Path, fmt: str = AUTO, limit: Optional[int] = None
                 ) -> Tuple[List[Path], str]:
    """List a dataset folder's first `limit` colour frames, and a line saying what they are."""
    dataset = load_color_frames(src, fmt)
    paths = [f.rgb_path for f in dataset.frames if f.rgb_path is not None]
    if limit is not None:
        paths = paths[:limit]
    return paths, describe_frames(dataset, len(paths))
