"""NYUv2 labeled .mat (HDF5) + splits.mat (MATLAB v5) conversion into the test layout."""

import json
import struct
import zlib

import cv2
import h5py
import numpy as np
import pytest

from treeaspp_depth_ros.data import DataError
from treeaspp_depth_training.data.nyu_mat import read_mat5
from treeaspp_depth_training.data.testsets import load_test_set
from treeaspp_depth_training.scripts.convert_nyu import convert, main


def _element(kind: int, payload: bytes) -> bytes:
    if len(payload) <= 4 and kind != 14:  # small data element format
        return struct.pack('<HH', kind, len(payload)) + payload.ljust(4, b'\0')
    return struct.pack('<II', kind, len(payload)) + payload + b'\0' * (-len(payload) % 8)


def _matrix(name: str, values: np.ndarray) -> bytes:
    values = np.asarray(values, dtype='<f8')
    body = (_element(6, struct.pack('<II', 6, 0))  # flags: mxDOUBLE_CLASS
            + _element(5, struct.pack('<' + 'i' * values.ndim, *values.shape))
            + _element(1, name.encode('ascii'))
            + _element(9, values.tobytes(order='F')))
    return _element(14, body)


def write_mat5(path, arrays, compress_names=()):
    """MATLAB v5 file as MATLAB writes it: 128-byte header, (compressed) matrix elements."""
    header = b'MATLAB 5.0 MAT-file, test'.ljust(116, b' ') + b'\0' * 8 + struct.pack('<H', 0x0100)
    data = header + b'IM'
    for name, values in arrays.items():
        element = _matrix(name, values)
        if name in compress_names:
            packed = zlib.compress(element)
            element = struct.pack('<II', 15, len(packed)) + packed
        data += element
    path.write_bytes(data)


def test_mat5_reader_plain_compressed_and_small_elements(tmp_path):
    path = tmp_path / 'splits.mat'
    grid = np.arange(6, dtype=np.float64).reshape(2, 3)
    write_mat5(path, {'testNdxs': np.array([[2.0], [4.0], [5.0]]), 'a': grid,
                      'trainNdxs': np.array([[1.0], [3.0]])}, compress_names=('trainNdxs',))
    arrays = read_mat5(path)
    assert arrays['testNdxs'].ravel().tolist() == [2, 4, 5]
    assert np.array_equal(arrays['a'], grid)  # column-major order restored
    assert arrays['trainNdxs'].ravel().tolist() == [1, 3]
    (tmp_path / 'bad.mat').write_bytes(b'\x89HDF' + b'\0' * 200)
    with pytest.raises(DataError, match='not a MATLAB v5'):
        read_mat5(tmp_path / 'bad.mat')


@pytest.fixture()
def labeled(tmp_path):
    """Write a 6-frame stand-in for nyu_depth_v2_labeled.mat (MATLAB's transposed layout)."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (6, 48, 64, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 9.0, (6, 48, 64)).astype(np.float32)
    path = tmp_path / 'nyu_depth_v2_labeled.mat'
    with h5py.File(path, 'w') as f:
        f['images'] = rgb.transpose(0, 3, 2, 1)   # N x 3 x W x H
        f['depths'] = depth.transpose(0, 2, 1)    # N x W x H
    write_mat5(tmp_path / 'splits.mat', {'testNdxs': np.array([[2.0], [5.0], [6.0]]),
                                         'trainNdxs': np.array([[1.0], [3.0], [4.0]])},
               compress_names=('testNdxs',))
    return path, rgb, depth


def test_convert_eigen_split_to_png_layout(tmp_path, labeled):
    path, rgb, depth = labeled
    out = convert(str(path), str(tmp_path / 'eigen'), 'eigen', str(tmp_path / 'splits.mat'))
    info = json.loads((out / 'info.json').read_text())
    assert info['split'].startswith('eigen_test_3') and info['indices'] == [1, 4, 5]
    color = cv2.imread(str(out / 'color' / '0004.png'))[..., ::-1]
    assert np.array_equal(color, rgb[4])
    test_set = load_test_set(out)
    assert len(test_set) == 3
    assert np.abs(test_set[1][1] - depth[4]).max() <= 0.5 / 5000 + 1e-6


def test_convert_all_frames_to_depth_npy(tmp_path, labeled):
    path, rgb, depth = labeled
    assert main([str(path), str(tmp_path / 'all'), '--split', 'all', '--depth-format', 'npy',
                 '--image-format', 'jpg']) == 0
    test_set = load_test_set(tmp_path / 'all')
    assert len(test_set) == 6 and np.allclose(test_set[5][1], depth[5])
    assert main([str(path), str(tmp_path / 'x'), '--split', 'eigen']) == 1  # needs --splits
