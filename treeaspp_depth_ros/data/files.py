"""Where a dataset's files are: folder checks and image listing in frame order."""

from pathlib import Path
import re
from typing import List, Sequence, Tuple, Union

from .errors import DataError

PathLike = Union[str, Path]
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm', '.tif', '.tiff')


def natural_key(path: Path) -> Tuple[tuple, str]:
    """Order numbered names by their numbers (frame2 before frame10), as videos are numbered."""
    parts = tuple(int(part) if part.isdigit() else part for part in re.split(r'(\d+)', path.name))
    return parts, path.name


def require_dir(path: PathLike, what: str) -> Path:
    """Return `path` as a Path if it is a directory; otherwise fail naming `what` it should be."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f'{what} {path} is not a directory')
    return path


def list_images(folder: PathLike, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> List[Path]:
    """Image files of `folder` in frame order (natural sort, the one order of every layout)."""
    folder = require_dir(folder, 'image folder')
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes),
                  key=natural_key)
