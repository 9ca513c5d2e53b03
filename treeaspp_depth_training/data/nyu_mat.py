"""
The official NYU Depth v2 files: ``nyu_depth_v2_labeled.mat`` (HDF5) and ``splits.mat``.

The labeled file holds 1449 RGB-D frames; ``splits.mat`` (MATLAB v5, from the same NYU page)
holds the official 795/654 train/test split whose test part is the standard "Eigen" test set.
MATLAB stores arrays column-major, so h5py sees images as N x 3 x W x H.
"""

from pathlib import Path
import struct
from typing import Dict, Iterator, Tuple
import zlib

import h5py
import numpy as np

from treeaspp_depth_ros.data import DataError
from treeaspp_depth_ros.data.files import PathLike

NYU_LABELED_FRAMES = 1449
NYU_TEST_FRAMES = 654

_MAT_TYPES = {1: 'i1', 2: 'u1', 3: 'i2', 4: 'u2', 5: 'i4', 6: 'u4', 7: 'f4', 9: 'f8',
              12: 'i8', 13: 'u8'}
_MI_MATRIX = 14
_MI_COMPRESSED = 15


class LabeledNYU:
    """Random access to the frames of ``nyu_depth_v2_labeled.mat`` (RGB uint8, depth metres)."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f'NYU labeled file not found: {self.path}')
        try:
            self._file = h5py.File(self.path, 'r')
        except OSError as error:
            raise DataError(f'{self.path}: not an HDF5 (MATLAB v7.3) file: {error}') from None
        missing = [k for k in ('images', 'depths') if k not in self._file]
        if missing:
            raise DataError(f'{self.path}: missing datasets {missing} (is this '
                            f'nyu_depth_v2_labeled.mat?)')
        self.images = self._file['images']
        self.depths = self._file['depths']
        if self.images.ndim != 4 or self.images.shape[1] != 3 or \
                self.depths.shape != (self.images.shape[0],) + self.images.shape[2:]:
            raise DataError(f'{self.path}: unexpected shapes images {self.images.shape}, '
                            f'depths {self.depths.shape}')

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        rgb = np.ascontiguousarray(np.asarray(self.images[index]).transpose(2, 1, 0))
        depth = np.ascontiguousarray(np.asarray(self.depths[index], dtype=np.float32).T)
        return rgb, depth

    def close(self) -> None:
        self._file.close()


def read_mat5(path: PathLike) -> Dict[str, np.ndarray]:
    """Numeric arrays of a MATLAB v5 ``.mat`` file (enough for ``splits.mat``; no scipy)."""
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) < 128 or raw[126:128] not in (b'IM', b'MI'):
        raise DataError(f'{path}: not a MATLAB v5 .mat file')
    endian = '<' if raw[126:128] == b'IM' else '>'
    arrays = {}
    for kind, payload in _elements(raw, 128, endian):
        if kind == _MI_COMPRESSED:
            inner = zlib.decompress(payload)
            for inner_kind, inner_payload in _elements(inner, 0, endian):
                if inner_kind == _MI_MATRIX:
                    name, array = _matrix(inner_payload, endian)
                    arrays[name] = array
        elif kind == _MI_MATRIX:
            name, array = _matrix(payload, endian)
            arrays[name] = array
    return arrays


def _elements(data: bytes, offset: int, endian: str) -> Iterator[Tuple[int, bytes]]:
    while offset + 8 <= len(data):
        kind, size = struct.unpack_from(endian + 'II', data, offset)
        if kind >> 16:  # small data element: size and type share 4 bytes, data in the next 4
            size, kind = kind >> 16, kind & 0xFFFF
            yield kind, data[offset + 4:offset + 4 + size]
            offset += 8
            continue
        yield kind, data[offset + 8:offset + 8 + size]
        offset += 8 + size
        if kind != _MI_COMPRESSED:
            offset += (-size) % 8


def _matrix(payload: bytes, endian: str) -> Tuple[str, np.ndarray]:
    parts = list(_elements(payload, 0, endian))
    if len(parts) < 4:
        raise DataError('unsupported MATLAB array (cells / structs are not needed here)')
    (_, _flags), (_, dims), (_, name), (kind, real) = parts[:4]
    shape = np.frombuffer(dims, endian + 'i4')
    if kind not in _MAT_TYPES:
        raise DataError(f'unsupported MATLAB data type {kind}')
    values = np.frombuffer(real, endian + _MAT_TYPES[kind])
    return name.decode('ascii'), values.reshape(tuple(shape), order='F')


def eigen_test_indices(splits_path: PathLike) -> np.ndarray:
    """0-based indices of the 654 official test frames (``testNdxs`` is 1-based)."""
    arrays = read_mat5(splits_path)
    if 'testNdxs' not in arrays:
        raise DataError(f"{splits_path}: no testNdxs array (is this NYU's splits.mat?)")
    return np.asarray(arrays['testNdxs'], dtype=np.int64).ravel() - 1
