"""
Writing a file so that no reader ever sees half of it: the package's one atomic-write rule.

Checkpoints, ONNX exports, TensorRT engines, scale sidecars, reports and the Fast DDS profile
are all written the same way: to a temporary file beside the target, flushed and fsynced, given
the mode the target should have, then renamed over it. A crash, a full disk or a read-only
folder leaves the previous file as it was (or none), never a truncated one. Imports nothing of
the package, so any module may use it.
"""

import os
from pathlib import Path
import tempfile
from typing import BinaryIO, Callable, Union

PathLike = Union[str, Path]


def file_mode_for(path: Path) -> int:
    """
    Mode a rewritten `path` should have: its current one, else what the umask gives.

    Temporary files are created 0600; left so, a checkpoint would be unreadable for a node
    running as another user (a robot's service account).
    """
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """
    Call `write(handle)` on a temporary file beside `path`, fsync, then rename it over `path`.

    The folder is created when missing. Any error (an OSError from a full disk or a read-only
    folder included) is raised as it is, after the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = file_mode_for(path)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(data: bytes, path: PathLike) -> Path:
    """Write `data` to `path` atomically (:func:`atomic_write`)."""
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(text: str, path: PathLike) -> Path:
    """Write `text` (UTF-8) to `path` atomically (:func:`atomic_write`)."""
    return atomic_write_bytes(text.encode('utf-8'), path)
