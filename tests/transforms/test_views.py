"""View transforms: crop with fallback, random resized crop, multi-scale jigsaw, SimCLR set, n-view generator."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from monai.transforms import Randomizable, Resize

from medssl3d.transforms.views import (
    MultiStageRandomChoiceJigsaw,
    MultiStageRandomChoiceJigsawd,
    MultiViewd,
    RandCropWithFallback,
    RandCropWithFallbackd,
    RandResizedCrop,
    RandResizedCropd,
    simclr_medical_augmentations,
)


def _ramp(shape):
    return torch.arange(int(np.prod(shape)), dtype=torch.float32).reshape(shape)


def _tiles_reference(img, grid):
    """Slow reference: list of tiles of the centred grid region, C order over the grid."""
    _, *spatial = img.shape
    t = [s // grid for s in spatial]
    b = [(s - grid * ti) // 2 for s, ti in zip(spatial, t)]
    out = []
    for idx in itertools.product(range(grid), repeat=len(spatial)):
        sl = (slice(None),) + tuple(slice(bi + i * ti, bi + (i + 1) * ti) for bi, i, ti in zip(b, idx, t))
        out.append(img[sl])
    return out


# ---- RandCropWithFallback ---------------------------------------------------------------------------------------


def test_crop_with_fallback_random_branch_is_a_window_and_moves():
    img = _ramp((1, 40, 30))
    cropper = RandCropWithFallback((8, 6)).set_random_state(0)
    starts = set()
    for _ in range(5):
        out = cropper(img)
        assert tuple(out.shape) == (1, 8, 6)
        x0, y0 = int(out[0, 0, 0]) // 30, int(out[0, 0, 0]) % 30
        assert torch.equal(out, img[:, x0 : x0 + 8, y0 : y0 + 6])
        starts.add((x0, y0))
    assert len(starts) > 1


def test_crop_with_fallback_small_image_is_centre_cropped_and_padded():
    img = _ramp((1, 6, 20)) + 1
    out = RandCropWithFallback((8, 8))(img)
    assert tuple(out.shape) == (1, 8, 8)
    assert torch.equal(out[:, 1:7], img[:, :, 6:14])  # axis 0 padded 1 + 1, axis 1 centre-cropped
    assert float(out[:, 0].abs().sum()) == 0.0 and float(out[:, 7].abs().sum()) == 0.0


def test_crop_with_fallback_dict_aligns_keys_3d():
    img = torch.rand(1, 20, 16, 12)
    t = RandCropWithFallbackd(["image", "label"], (8, 8, 8)).set_random_state(3)
    out = t({"image": img, "label": img.clone()})
    assert tuple(out["image"].shape) == (1, 8, 8, 8) and torch.equal(out["image"], out["label"])
    small = t({"image": torch.rand(1, 4, 16, 12), "label": torch.rand(1, 4, 16, 12)})
    assert tuple(small["label"].shape) == (1, 8, 8, 8)
    with pytest.raises(ValueError, match="spatial shape"):
        t({"image": img, "label": torch.rand(1, 20, 16, 10)})
    with pytest.raises(ValueError, match="roi_size"):
        RandCropWithFallback((8, 8))(img)
    with pytest.raises(ValueError, match="roi_size"):
        RandCropWithFallback((8, 0))


# ---- RandResizedCrop ---------------------------------------------------------------------------------------------


def test_resized_crop_box_fraction_and_output_shape():
    cropper = RandResizedCrop((16, 12), scale=(0.8, 1.0)).set_random_state(0)
    img = torch.rand(2, 100, 80)
    for _ in range(20):
        out = cropper(img)
        assert tuple(out.shape) == (2, 16, 12)
        sides = [s.stop - s.start for s in cropper._slices]
        frac = sides[0] * sides[1] / (100 * 80)
        ratio = (sides[1] / 80) / (sides[0] / 100)
        assert 0.78 <= frac <= 1.0 and 0.74 <= ratio <= 1.36
    vol = torch.rand(1, 30, 20, 10)
    cropper3d = RandResizedCrop(8).set_random_state(1)
    assert tuple(cropper3d(vol).shape) == (1, 8, 8, 8)
    sides = [s.stop - s.start for s in cropper3d._slices]
    assert 0.75 <= np.prod(sides) / (30 * 20 * 10) <= 1.0


def test_resized_crop_full_scale_equals_resize_and_dict_aligns():
    img = torch.rand(1, 24, 18)
    out = RandResizedCrop((12, 9), scale=(1.0, 1.0), ratio=(1.0, 1.0))(img)
    assert torch.allclose(out, Resize((12, 9), mode="bilinear")(img))
    t = RandResizedCropd(["image", "label"], 8, mode=("bilinear", "nearest")).set_random_state(0)
    lab = (img > 0.5).float()
    out = t({"image": img, "label": lab})
    assert tuple(out["image"].shape) == (1, 8, 8)
    assert set(torch.unique(out["label"]).tolist()) <= {0.0, 1.0}  # nearest keeps labels


@pytest.mark.parametrize(
    "kwargs, name",
    [({"scale": (0.0, 1.0)}, "scale"), ({"scale": (0.9, 0.8)}, "scale"), ({"ratio": (-1, 1)}, "ratio"),
     ({"spatial_size": 0}, "spatial_size"), ({"max_attempts": 0}, "max_attempts")],
)
def test_resized_crop_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RandResizedCrop(**{"spatial_size": 8, **kwargs})


# ---- MultiStageRandomChoiceJigsaw -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape, grid", [((2, 16, 12), 4), ((1, 17, 14), 4), ((1, 8, 12, 6), 2)])
def test_jigsaw_is_a_permutation_of_tiles(shape, grid):
    img = _ramp(shape)
    jig = MultiStageRandomChoiceJigsaw((grid,)).set_random_state(0)
    out = jig(img)
    assert tuple(out.shape) == shape
    src, dst = _tiles_reference(img, grid), _tiles_reference(out, grid)
    for k, p in enumerate(jig._perm):
        assert torch.equal(dst[k], src[p])
    key = lambda t: t.flatten().tolist()  # noqa: E731
    assert sorted(map(key, src)) == sorted(map(key, dst))
    assert not torch.equal(out, img)
    mask = torch.ones(shape, dtype=torch.bool)  # pixels outside the centred region stay put
    region = (slice(None),) + tuple(
        slice((s - grid * (s // grid)) // 2, (s - grid * (s // grid)) // 2 + grid * (s // grid)) for s in shape[1:]
    )
    mask[region] = False
    assert torch.equal(out[mask], img[mask])


def test_jigsaw_grid_one_is_identity_and_draws_are_reproducible():
    img = torch.rand(1, 16, 16)
    assert torch.equal(MultiStageRandomChoiceJigsaw((1,))(img), img)
    a = MultiStageRandomChoiceJigsaw().set_random_state(7)
    b = MultiStageRandomChoiceJigsaw().set_random_state(7)
    outs_a = [a(img) for _ in range(6)]
    outs_b = [b(img) for _ in range(6)]
    assert all(torch.equal(x, y) for x, y in zip(outs_a, outs_b))
    grids = set()
    for _ in range(40):
        a.randomize((16, 16))
        grids.add(a._grid)
    assert grids == {8, 4, 2, 1}  # every stage is drawn
    c = MultiStageRandomChoiceJigsaw((4,)).set_random_state(0)  # a new permutation on every call
    drawn = {tuple(c(img).flatten().tolist()) for _ in range(5)}
    assert len(drawn) == 5


def test_jigsaw_dict_same_permutation_and_bad_arguments():
    img = _ramp((1, 12, 12))
    out = MultiStageRandomChoiceJigsawd(["image", "label"], (3,)).set_random_state(0)({"image": img, "label": img + 0})
    assert torch.equal(out["image"], out["label"]) and not torch.equal(out["image"], img)
    with pytest.raises(ValueError, match="larger than the image"):
        MultiStageRandomChoiceJigsaw((8,))(torch.rand(1, 16, 4))
    with pytest.raises(ValueError, match="weights"):
        MultiStageRandomChoiceJigsaw((8, 4), weights=(1.0,))
    with pytest.raises(ValueError, match="grid_sizes"):
        MultiStageRandomChoiceJigsaw((4, 0))


# ---- SimCLR set and MultiViewd ----------------------------------------------------------------------------------


def test_simclr_views_differ_are_reproducible_and_stack():
    data = {"image": torch.rand(1, 40, 36), "id": 3}
    make = lambda: MultiViewd("image", simclr_medical_augmentations((24, 24)), n_views=2)  # noqa: E731
    a = make().set_random_state(0)(data)
    b = make().set_random_state(0)(data)
    assert tuple(a["image"].shape) == (2, 1, 24, 24) and a["id"] == 3
    assert torch.equal(a["image"], b["image"])
    assert not torch.allclose(a["image"][0], a["image"][1])
    assert float(a["image"].min()) >= 0.0 and float(a["image"].max()) <= 1.0
    assert tuple(data["image"].shape) == (1, 40, 36)  # input untouched
    c = make().set_random_state(1)(data)
    assert not torch.equal(a["image"], c["image"])


def test_multiview_unstacked_3d_and_bad_arguments():
    aug = simclr_medical_augmentations(12, spatial_dims=3, blur_prob=1.0)
    out = MultiViewd("image", aug, n_views=3, stack=False).set_random_state(0)({"image": torch.rand(1, 16, 20, 14)})
    assert {"image", "image_view_0", "image_view_1", "image_view_2"} <= set(out)
    assert tuple(out["image"].shape) == (1, 16, 20, 14)
    assert all(tuple(out[f"image_view_{i}"].shape) == (1, 12, 12, 12) for i in range(3))
    assert not torch.allclose(out["image_view_0"], out["image_view_2"])
    with pytest.raises(TypeError, match="Randomizable"):
        MultiViewd("image", lambda d: d)
    with pytest.raises(ValueError, match="n_views"):
        MultiViewd("image", aug, n_views=0)
    with pytest.raises(ValueError, match="view_format"):
        MultiViewd("image", aug, stack=False, view_format="view")
    with pytest.raises(ValueError, match="differing shapes"):
        MultiViewd("image", _VariableSize(), n_views=2)({"image": torch.rand(1, 8, 8)})


class _VariableSize(Randomizable):
    """A view transform whose output size changes between calls (to test the stacking error)."""

    def __init__(self):
        self.calls = 0

    def randomize(self, data=None):
        pass

    def __call__(self, data):
        self.calls += 1
        return {"image": data["image"][:, : 4 + self.calls]}


@pytest.mark.parametrize(
    "kwargs, name",
    [({"spatial_dims": 4}, "spatial_dims"), ({"image_size": (8, 8, 8)}, "image_size"),
     ({"brightness": 1.5}, "brightness"), ({"blur_prob": 2.0}, "blur_prob"), ({"flip_axis": 2}, "flip_axis"),
     ({"blur_sigma": (0.0, 1.0)}, "blur_sigma"), ({"rotate_degrees": -1}, "rotate_degrees")],
)
def test_simclr_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        simclr_medical_augmentations(**{"image_size": (8, 8), **kwargs})
