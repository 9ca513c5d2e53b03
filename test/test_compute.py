"""Devices and precisions by name: one table and one resolver for inference and training."""

import subprocess
import sys

import pytest
import torch
from treeaspp_depth_ros.compute import check_precision, PRECISIONS, resolve_device, torch_dtype


def test_precision_names_and_their_dtypes():
    assert PRECISIONS == ('fp32', 'fp16', 'bf16')
    dtypes = [torch.float32, torch.float16, torch.bfloat16]
    assert [torch_dtype(name) for name in PRECISIONS] == dtypes
    with pytest.raises(ValueError, match="one of fp32, fp16, bf16, got 'fp64'"):
        check_precision('fp64')


def test_resolve_device_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert resolve_device('auto') == torch.device('cpu')
    assert resolve_device('auto', local_rank=1) == torch.device('cpu')
    with pytest.raises(RuntimeError, match=r"train.device 'cuda:1' requested but CUDA is not "
                                           r'available \(use train.device auto or cpu\)'):
        resolve_device('cuda:1', 0, 'train.device')


def test_resolve_device_puts_a_bare_cuda_on_the_local_rank(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert resolve_device('auto') == torch.device('cuda')  # inference: the current GPU
    assert resolve_device('auto', local_rank=2) == torch.device('cuda', 2)  # torchrun
    assert resolve_device('cuda', local_rank=2) == torch.device('cuda', 2)
    assert resolve_device('cuda:1', local_rank=2) == torch.device('cuda', 1)  # explicit wins
    assert resolve_device('cpu', local_rank=2) == torch.device('cpu')


def test_the_node_checks_precisions_without_loading_torch():
    code = ('import sys; from treeaspp_depth_ros.node import params; '
            'assert params.PRECISIONS and "torch" not in sys.modules')
    subprocess.run([sys.executable, '-c', code], check=True)
