"""The pretraining pipeline: load, normalise, crop to the task's input size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from medssl3d.data import generate_phantom_dataset
from medssl3d.transforms import pretraining_transforms


def test_2d_chain_loads_like_fine_tuning(tmp_path):
    """2D images go through the classification loader: [0, 1], grey by luminance, aspect kept with padding."""
    path = tmp_path / "a.png"
    rgb = np.zeros((40, 30, 3), np.uint8)  # 40 rows x 30 columns of pure red
    rgb[..., 0] = 255
    Image.fromarray(rgb).save(path)
    chain = pretraining_transforms((16, 16), None, spatial_dims=2, in_channels=1, resize=True)
    img = torch.as_tensor(chain({"image": str(path)})["image"])
    assert tuple(img.shape) == (1, 16, 16)
    inside = img[img > 0]
    assert inside.numel() == 16 * 12  # the longer side scaled to 16, the shorter to 12, the rest zero padding
    assert torch.allclose(inside, torch.full_like(inside, 0.299), atol=2e-3)  # ITU-R 601 luminance of red
    native = pretraining_transforms((8, 8), None, spatial_dims=2, in_channels=3)({"image": str(path)})["image"]
    assert tuple(native.shape) == (3, 8, 8)  # no resizing: a random 8 x 8 crop of the 40 x 30 image
    assert torch.allclose(torch.as_tensor(native)[0], torch.ones(8, 8))


def test_3d_chain_pads_small_volumes_and_crops(tmp_path):
    folder = generate_phantom_dataset(tmp_path / "Task00", num_cases=1, num_test=0, shape=(32, 32, 16), seed=0)
    image = sorted((folder / "imagesTr").iterdir())[0]
    chain = pretraining_transforms((40, 24, 24), None, spatial_dims=3, intensity="ct", spacing=None)
    img = chain({"image": str(image)})["image"]
    assert tuple(img.shape) == (1, 40, 24, 24)
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0 and float(img.max()) > 0.2  # HU window to [0, 1]
    with pytest.raises(ValueError, match="input_size"):
        pretraining_transforms((8, 8), None, spatial_dims=3)
