"""Tests of medssl3d.utils.device.default_device."""

from __future__ import annotations

import pytest
import torch

from medssl3d.utils import default_device

HAS_CUDA = torch.cuda.is_available()
AUTO = "cuda" if HAS_CUDA else "cpu"


@pytest.mark.parametrize("device", [None, "", "auto", "AUTO", " auto "])
def test_auto_picks_cuda_when_available(device):
    out = default_device(device)
    assert isinstance(out, torch.device)
    assert out.type == AUTO


@pytest.mark.skipif(HAS_CUDA, reason="checks the CPU-only fallback")
def test_auto_is_cpu_without_cuda():
    assert default_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu"), "cpu:0"])
def test_explicit_cpu(device):
    assert default_device(device).type == "cpu"


@pytest.mark.skipif(HAS_CUDA, reason="CUDA is available here")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda", 1)])
def test_cuda_without_cuda_raises(device):
    with pytest.raises(ValueError, match=r"CUDA is not available.*device='cpu' or 'auto'"):
        default_device(device)
