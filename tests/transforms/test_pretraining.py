"""The pretraining pipeline: load, normalise, crop to the task's input size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from medssl3d.data import generate_phantom_dataset
from medssl3d.transforms import MatchChannelsd, pretraining_transforms


def test_match_channels_converts_and_names_bad_file():
    rgb = torch.stack([torch.zeros(4, 4), torch.ones(4, 4), torch.full((4, 4), 2.0)])
    assert torch.allclose(MatchChannelsd("image", 1)({"image": rgb})["image"], torch.ones(1, 4, 4))
    grey = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    out = MatchChannelsd("image", 3)({"image": grey})["image"]
    assert out.shape == (3, 4, 4) and np.array_equal(out[2], grey[0])
    with pytest.raises(ValueError, match="2 channels.*in_channels"):
        MatchChannelsd("image", 3)({"image": np.zeros((2, 4, 4))})


def test_2d_chain_resizes_scales_and_converts(tmp_path):
    path = tmp_path / "a.png"
    rgb = np.zeros((40, 30, 3), np.uint8)
    rgb[..., 0] = 255
    Image.fromarray(rgb).save(path)
    chain = pretraining_transforms((16, 16), None, spatial_dims=2, in_channels=1, resize=True)
    img = chain({"image": str(path)})["image"]
    assert tuple(img.shape) == (1, 16, 16)
    assert torch.allclose(torch.as_tensor(img), torch.full((1, 16, 16), 1.0 / 3), atol=1e-5)  # mean of (1, 0, 0)


def test_3d_chain_pads_small_volumes_and_crops(tmp_path):
    folder = generate_phantom_dataset(tmp_path / "Task00", num_cases=1, num_test=0, shape=(32, 32, 16), seed=0)
    image = sorted((folder / "imagesTr").iterdir())[0]
    chain = pretraining_transforms((40, 24, 24), None, spatial_dims=3, intensity="ct", spacing=None)
    img = chain({"image": str(image)})["image"]
    assert tuple(img.shape) == (1, 40, 24, 24)
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0 and float(img.max()) > 0.2  # HU window to [0, 1]
    with pytest.raises(ValueError, match="input_size"):
        pretraining_transforms((8, 8), None, spatial_dims=3)
