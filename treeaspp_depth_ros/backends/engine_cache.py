"""
TensorRT engine cache: engines are tied to one GPU model and one TensorRT version.

A serialised engine loaded by another TensorRT version or on another GPU fails or, worse,
misbehaves, so every cached file starts with a header holding the key it was built for (GPU,
TensorRT version, input size, ONNX sha256, precision). A file whose header differs from the
key asked for is stale or foreign and is rebuilt, never loaded. Files are written atomically.
This module imports neither tensorrt nor CUDA, so its logic is tested on any machine.
"""

from dataclasses import asdict, dataclass
import hashlib
import json
from pathlib import Path
from typing import Callable, Optional, Tuple

from ..files import atomic_write_bytes

MAGIC = b'TREEASPP-TRT-ENGINE/1\n'


@dataclass(frozen=True)
class EngineKey:
    """What a serialised engine is valid for."""

    gpu: str  # device name and compute capability
    tensorrt: str  # tensorrt.__version__
    input_size: Tuple[int, int]  # (width, height)
    onnx_sha256: str
    precision: str = 'fp16'

    def as_json(self) -> str:
        """Canonical JSON of the key (the file header)."""
        fields = asdict(self)
        fields['input_size'] = list(self.input_size)
        return json.dumps(fields, sort_keys=True)

    def filename(self) -> str:
        """``WxH_fp16_<digest>.engine``: the digest covers every field."""
        digest = hashlib.sha256(self.as_json().encode()).hexdigest()[:20]
        width, height = self.input_size
        return f'{width}x{height}_{self.precision}_{digest}.engine'


class EngineCache:
    """Engines under one folder (default ``<cache_root>/engines``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path_for(self, key: EngineKey) -> Path:
        """Where the engine for `key` lives."""
        return self.folder / key.filename()

    def load(self, key: EngineKey) -> Tuple[Optional[bytes], str]:
        """(engine bytes, 'cached') when a valid file exists, else (None, why not)."""
        path = self.path_for(key)
        if not path.is_file():
            return None, 'no cached engine'
        data = path.read_bytes()
        header_end = data.find(b'\n', len(MAGIC))
        if not data.startswith(MAGIC) or header_end < 0:
            return None, f'{path.name} has no engine header (foreign or corrupt file)'
        try:
            stored = json.loads(data[len(MAGIC):header_end])
        except ValueError:
            return None, f'{path.name} has a corrupt header'
        wanted = json.loads(key.as_json())
        if stored != wanted:
            changed = sorted(k for k in wanted if stored.get(k) != wanted[k])
            return None, (f'{path.name} was built for another {", ".join(changed)} '
                          f'({", ".join(f"{k}={stored.get(k)}" for k in changed)})')
        engine = data[header_end + 1:]
        if not engine:
            return None, f'{path.name} holds no engine'
        return engine, 'cached'

    def store(self, key: EngineKey, engine: bytes) -> Path:
        """Write header + engine atomically (a crash never leaves half an engine)."""
        return atomic_write_bytes(MAGIC + key.as_json().encode() + b'\n' + bytes(engine),
                                  self.path_for(key))

    def get_or_build(self, key: EngineKey, build: Callable[[], bytes],
                     rebuild: bool = False) -> Tuple[bytes, str]:
        """
        Return the cached engine for `key`, else build and store one: (engine, what happened).

        `rebuild` ignores any cached file (the node's `engine_rebuild`). A failing build
        stores nothing.
        """
        if rebuild:
            reason = 'rebuild requested'
        else:
            engine, reason = self.load(key)
            if engine is not None:
                return engine, 'cached'
        engine = build()
        if not engine:
            raise RuntimeError('TensorRT returned no engine')
        self.store(key, engine)
        return engine, f'built ({reason})'
