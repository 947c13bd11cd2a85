"""CLAHE and background removal: contrast, shape/dtype, LAB and slice-wise behaviour, hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medssl3d.transforms.intensity import CLAHE, CLAHEd, RemoveBackground, RemoveBackgroundd


def _low_contrast(shape, seed=0, uint8=False):
    """Smooth blobs squeezed into [0.40, 0.55]: a washed-out image with structure for CLAHE to stretch."""
    rng = np.random.RandomState(seed)
    grids = np.meshgrid(*[np.linspace(0, 3 * np.pi, s) for s in shape[1:]], indexing="ij")
    pattern = np.prod([np.sin(g + rng.rand() * 3) for g in grids], axis=0)
    img = 0.475 + 0.06 * pattern[None] + 0.01 * rng.rand(*shape)
    img = np.repeat(img[:1], shape[0], 0) * np.linspace(1.0, 0.9, shape[0]).reshape(-1, *[1] * (len(shape) - 1))
    return (img * 255).round().astype(np.uint8) if uint8 else img.astype(np.float32)


def _spread(x):
    x = np.asarray(x, dtype=np.float64)
    return np.percentile(x, 95) - np.percentile(x, 5)


CONTRAST_CASES = [  # (kwargs, shape, uint8)
    ({}, (1, 64, 48), False),
    ({}, (3, 64, 48), False),
    ({"clip_limit": 4.0, "tile_grid_size": 4}, (1, 64, 48), True),
    ({}, (3, 64, 48), True),
    ({"tile_grid_size": (4, 2)}, (1, 32, 24, 20), False),
    ({"slice_axis": 0, "tile_grid_size": 4}, (1, 20, 32, 24), True),
]


@pytest.mark.parametrize("kwargs, shape, uint8", CONTRAST_CASES)
def test_clahe_raises_contrast_keeps_shape_and_dtype(kwargs, shape, uint8):
    img = torch.as_tensor(_low_contrast(shape, uint8=uint8))
    out = CLAHE(**kwargs)(img)
    assert tuple(out.shape) == shape and out.dtype == img.dtype
    assert _spread(out) > 2.0 * _spread(img)
    if not uint8:
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_clahe_volume_is_slice_wise_along_slice_axis():
    vol = torch.as_tensor(_low_contrast((1, 24, 20, 6), seed=1))
    ref = np.stack([np.asarray(CLAHE(tile_grid_size=4)(vol[..., k])) for k in range(vol.shape[-1])], -1)
    np.testing.assert_array_equal(np.asarray(CLAHE(tile_grid_size=4)(vol)), ref)
    out0 = CLAHE(tile_grid_size=4, slice_axis=0)(vol)
    np.testing.assert_array_equal(np.asarray(out0[:, 3]), np.asarray(CLAHE(tile_grid_size=4)(vol[:, 3])))


def test_clahe_lab_keeps_hue_and_float_uint8_ranges_agree():
    grey_rgb = torch.as_tensor(np.repeat(_low_contrast((1, 48, 40)), 3, 0))
    out = CLAHE()(grey_rgb)
    assert float((out - out.mean(0)).abs().max()) <= 2.0 / 255  # only L changed: grey stays grey
    red = grey_rgb * torch.tensor([1.0, 0.5, 0.5]).view(3, 1, 1)
    out = CLAHE()(red)
    assert bool((out[0] >= out[1]).all()) and bool((out[0] >= out[2]).all())
    u8 = _low_contrast((3, 48, 40), uint8=True)
    as_float_255 = CLAHE()(u8.astype(np.float32))  # max > 1: read as uint8 range
    np.testing.assert_allclose(np.asarray(as_float_255), np.asarray(CLAHE()(u8)), atol=0)
    in_unit = CLAHE()(u8.astype(np.float32) / 255)
    np.testing.assert_allclose(np.asarray(in_unit) * 255, np.asarray(CLAHE()(u8)), atol=1e-3)


def test_clahe_keeps_metatensor_and_dict_wrapper():
    affine = torch.diag(torch.tensor([2.0, 3.0, 1.0, 1.0]))
    img = MetaTensor(torch.as_tensor(_low_contrast((1, 32, 32))), affine=affine)
    out = CLAHEd(["image", "other"], tile_grid_size=4)({"image": img, "other": img.clone(), "label": 1})
    assert isinstance(out["image"], MetaTensor) and torch.equal(out["image"].affine, affine)
    assert torch.equal(out["image"], out["other"]) and out["label"] == 1


CLAHE_ILL_CASES = [
    ({"clip_limit": 0}, "clip_limit"),
    ({"tile_grid_size": (0, 8)}, "tile_grid_size"),
    ({"tile_grid_size": (8, 8, 8)}, "tile_grid_size"),
    ({"slice_axis": 3}, "slice_axis"),
    ({"max_value": -1.0}, "max_value"),
]


@pytest.mark.parametrize("kwargs, name", CLAHE_ILL_CASES)
def test_clahe_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CLAHE(**kwargs)


def test_clahe_rejects_images_without_channel_axis():
    with pytest.raises(ValueError, match="channel-first"):
        CLAHE()(np.zeros((16, 16), np.float32))


def test_remove_background_hand_made():
    # 2 channels, 2 x 3 pixels; channel means: [[0.0, 0.03, 0.05], [0.5, 0.039, 0.9]]
    img = torch.tensor(
        [[[0.0, 0.06, 0.05], [0.5, 0.0, 0.9]], [[0.0, 0.0, 0.05], [0.5, 0.078, 0.9]]], dtype=torch.float32
    )
    out = RemoveBackground(threshold=0.04)(img)
    expected = img.clone()
    expected[:, 0, :2] = 0.0
    expected[:, 1, 1] = 0.0
    assert torch.equal(out, expected) and out.dtype == img.dtype
    vol = np.full((1, 2, 2, 2), 20, np.uint8)
    vol[0, 0, 0, 0] = 5
    out = RemoveBackground(threshold=10, fill_value=1)(vol)
    assert out.dtype == torch.uint8 and int(out[0, 0, 0, 0]) == 1 and int(out.sum()) == 1 + 7 * 20


def test_remove_background_dict_with_source_key():
    image = torch.tensor([[[0.0, 0.5], [0.02, 0.6]]])
    label = torch.ones(1, 2, 2)
    out = RemoveBackgroundd(["image", "label"], threshold=0.04, source_key="image")({"image": image, "label": label})
    assert torch.equal(out["label"], torch.tensor([[[0.0, 1.0], [0.0, 1.0]]]))
    assert torch.equal(out["image"], torch.tensor([[[0.0, 0.5], [0.0, 0.6]]]))
    with pytest.raises(TypeError, match="threshold"):
        RemoveBackground(threshold="dark")
