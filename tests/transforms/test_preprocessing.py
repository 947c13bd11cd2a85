"""Tests of medssl3d.transforms.preprocessing: the segmentation preprocessing and post-processing presets.

Every expected value is computed by hand from tiny, deliberately non-cubic NIfTI/NRRD volumes written
into ``tmp_path``.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medssl3d.transforms import (
    INTENSITY_MODES,
    resolve_intensity_mode,
    segmentation_postprocessing,
    segmentation_transforms,
)
from tests.data._helpers import dilate, erode, make_decathlon, write_nifti, write_sitk

SHAPE = (24, 20, 16)  # (x, y, z), deliberately non-cubic
PANCREAS_WINDOW = (-87.0, 199.0)  # width 286 HU


def _run(path, stage="infer", label=None, **kwargs):
    """Run the ``stage`` preprocessing on one image (and label) file; returns the output dictionary."""
    kwargs.setdefault("spacing", None)
    data = {"image": str(path)} if label is None else {"image": str(path), "label": str(label)}
    return segmentation_transforms(stage, **kwargs)(data)


# ---------------------------------------------------------------- CT window


# (hu_window, HU value of a probe voxel, expected output) -- (v - lo) / (hi - lo), clipped to [0, 1]
CT_WINDOW_CASES = [
    (PANCREAS_WINDOW, -87.0, 0.0),  # window floor
    (PANCREAS_WINDOW, 199.0, 1.0),  # window ceiling
    (PANCREAS_WINDOW, 56.0, 0.5),  # (56 + 87) / 286 = 143 / 286
    (PANCREAS_WINDOW, -58.4, 0.1),  # (-58.4 + 87) / 286 = 28.6 / 286
    (PANCREAS_WINDOW, 170.4, 0.9),  # (170.4 + 87) / 286 = 257.4 / 286
    (PANCREAS_WINDOW, -1000.0, 0.0),  # air: clipped
    (PANCREAS_WINDOW, 3000.0, 1.0),  # metal: clipped
    ((-1000.0, 1000.0), 0.0, 0.5),  # whole-body window: water in the middle
    ((-1000.0, 1000.0), 500.0, 0.75),
    ((-1000.0, 1000.0), -1500.0, 0.0),
]


@pytest.mark.parametrize("hu_window,hu,expected", CT_WINDOW_CASES)
def test_ct_window_maps_hounsfield_units(tmp_path, hu_window, hu, expected):
    body = float(np.mean(hu_window))  # mid-window soft tissue everywhere, so the foreground crop keeps all
    image = np.full(SHAPE, body, np.float32)
    image[5, 7, 9] = hu
    out = _run(write_nifti(tmp_path / "ct.nii.gz", image), intensity="ct", hu_window=hu_window)["image"]
    assert tuple(out.shape) == (1, *SHAPE)
    assert out.dtype == torch.float32
    assert float(out[0, 5, 7, 9]) == pytest.approx(expected, abs=1e-5)
    assert float(out[0, 0, 0, 0]) == pytest.approx(0.5, abs=1e-6)


def test_ct_window_whole_volume_matches_reference(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.uniform(-300, 400, size=SHAPE).astype(np.float32)
    image[0, 0, 0] = image[-1, -1, -1] = 100.0  # in-window corners: the foreground crop keeps the full volume
    out = _run(write_nifti(tmp_path / "ct.nii.gz", image), intensity="ct")["image"]
    expected = np.clip((image - (-87.0)) / 286.0, 0.0, 1.0)
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-5)


def test_ct_foreground_crop_drops_air_around_the_body(tmp_path):
    image = np.full(SHAPE, -1000.0, np.float32)  # air around the body
    image[3:21, 2:18, 4:12] = 40.0  # body: 18 x 16 x 8 voxels
    out = _run(write_nifti(tmp_path / "ct.nii.gz", image), intensity="ct")["image"]
    assert tuple(out.shape) == (1, 18, 16, 8)
    np.testing.assert_allclose(out.numpy(), (40.0 + 87.0) / 286.0, atol=1e-5)


def test_ct_foreground_crop_keeps_fat_below_the_window_floor(tmp_path):
    """The body box is judged on raw HU (> -500), so subcutaneous fat (-100 HU, below -87) stays in."""
    image = np.full(SHAPE, -1000.0, np.float32)
    image[3:21, 2:18, 4:12] = -100.0  # fat rim
    image[5:19, 4:16, 5:11] = 40.0  # soft tissue inside it
    out = _run(write_nifti(tmp_path / "ct.nii.gz", image), intensity="ct")["image"]
    assert tuple(out.shape) == (1, 18, 16, 8)


# ---------------------------------------------------------------- MR z-score


def _mr_volume() -> np.ndarray:
    rng = np.random.default_rng(1)
    image = rng.uniform(1.0, 100.0, size=SHAPE).astype(np.float32)
    image[8:14, 6:12, 5:10] = 0.0  # an interior zero region (not body)
    for corner in np.ndindex(2, 2, 2):  # bright corners keep the foreground box at the full volume
        image[tuple(c * (n - 1) for c, n in zip(corner, SHAPE))] = 300.0
    return image


def test_mr_zscore_over_nonzero_voxels(tmp_path):
    image = _mr_volume()
    out = _run(write_nifti(tmp_path / "mr.nii.gz", image), intensity="mr")["image"][0].numpy()
    assert out.shape == SHAPE
    nonzero = image != 0
    np.testing.assert_array_equal(out[~nonzero], 0.0)  # zeros stay zero
    assert out[nonzero].mean() == pytest.approx(0.0, abs=1e-4)
    assert out[nonzero].std() == pytest.approx(1.0, abs=1e-3)
    values = image[nonzero].astype(np.float64)
    expected = (image - values.mean()) / values.std()
    np.testing.assert_allclose(out[nonzero], expected[nonzero], rtol=1e-3, atol=2e-3)


def test_mr_foreground_crop_keeps_whole_nonzero_body(tmp_path):
    image = np.zeros(SHAPE, np.float32)
    image[2:20, 3:17, 4:12] = 100.0  # body: 18 x 14 x 8 voxels
    image[2:5, 3:17, 4:12] = 10.0  # a darker (below-mean) slab at the body's edge
    out = _run(write_nifti(tmp_path / "mr.nii.gz", image), intensity="mr")["image"]
    assert tuple(out.shape) == (1, 18, 14, 8)  # actual: (1, 15, 14, 8), the dark slab is gone


# ---------------------------------------------------------------- orientation, spacing, readers


def test_orientation_lps_nifti_comes_out_ras(tmp_path):
    image = np.full(SHAPE, 56.0, np.float32)
    image[1, 2, 3] = 199.0  # marker -> 1.0 after the window
    path = write_nifti(tmp_path / "lps.nii.gz", image, np.diag([-1.0, -1.0, 1.0, 1.0]))
    out = _run(path, intensity="ct")["image"]
    assert tuple(out.shape) == (1, *SHAPE)
    affine = out.affine.numpy()
    np.testing.assert_allclose(np.diag(affine)[:3], [1.0, 1.0, 1.0])
    # x and y flipped: index i -> n - 1 - i; the physical position of every voxel is unchanged
    np.testing.assert_allclose(affine[:3, 3], [-(SHAPE[0] - 1), -(SHAPE[1] - 1), 0.0])
    marker = np.argwhere(out[0].numpy() == 1.0)
    np.testing.assert_array_equal(marker, [[SHAPE[0] - 1 - 1, SHAPE[1] - 1 - 2, 3]])
    np.testing.assert_allclose(out[0].numpy(), np.flip(np.clip((image + 87.0) / 286.0, 0, 1), (0, 1)), atol=1e-6)


def test_nrrd_read_by_simpleitk_in_the_chain(tmp_path):
    # SimpleITK (z, y, x) order, identity direction = LPS; the reader turns it into a RAS affine
    array_zyx = np.full(SHAPE[::-1], 56.0, np.float32)
    array_zyx[3, 2, 1] = 199.0  # voxel (x=1, y=2, z=3)
    path = write_sitk(tmp_path / "img.nrrd", array_zyx, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0))
    out = _run(path, intensity="ct")["image"]
    assert tuple(out.shape) == (1, *SHAPE)
    assert out.meta["filename_or_obj"] == str(path)
    np.testing.assert_allclose(np.diag(out.affine.numpy())[:3], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(np.argwhere(out[0].numpy() == 1.0), [[SHAPE[0] - 1 - 1, SHAPE[1] - 1 - 2, 3]])


# (input spacing, target spacing, expected output shape for SHAPE) -- about extent / target spacing
SPACING_CASES = [
    ((1.0, 1.0, 1.0), (2.0, 2.0, 2.0), (12, 10, 8)),
    ((1.0, 1.0, 1.0), (1.0, 1.0, 1.0), SHAPE),
    ((2.0, 1.0, 0.5), (1.0, 2.0, 2.0), (48, 10, 4)),
]


@pytest.mark.parametrize("pixdim,target,expected_shape", SPACING_CASES)
def test_spacing_resamples_to_target(tmp_path, pixdim, target, expected_shape):
    image = np.full(SHAPE, 56.0, np.float32)
    path = write_nifti(tmp_path / "img.nii.gz", image, np.diag([*pixdim, 1.0]))
    out = _run(path, intensity="ct", spacing=target)["image"]
    assert out.shape[0] == 1
    for got, want in zip(out.shape[1:], expected_shape):
        assert abs(got - want) <= 1, (tuple(out.shape), expected_shape)
    np.testing.assert_allclose(np.diag(out.affine.numpy())[:3], target, atol=1e-5)
    np.testing.assert_allclose(out.numpy(), 0.5, atol=1e-4)  # a constant volume stays constant


@pytest.mark.parametrize("stage", ["train", "validate"])
def test_labels_stay_integer_after_resampling(tmp_path, stage):
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 150, size=SHAPE).astype(np.float32)
    label = rng.choice(np.array([0, 1, 3], np.uint8), size=SHAPE, p=[0.6, 0.3, 0.1])
    img_path = write_nifti(tmp_path / "img.nii.gz", image, np.diag([1.0, 0.8, 1.3, 1.0]))
    lab_path = write_nifti(tmp_path / "lab.nii.gz", label, np.diag([1.0, 0.8, 1.3, 1.0]))
    out = _run(img_path, stage=stage, label=lab_path, spacing=(1.5, 1.5, 2.0), patch_size=(8, 8, 8), num_samples=3)
    items = out if isinstance(out, list) else [out]
    seen = set()
    for item in items:
        lab = item["label"]
        assert lab.dtype == torch.float32
        assert lab.shape == item["image"].shape
        values = set(np.unique(lab.numpy()).tolist())
        assert values <= {0.0, 1.0, 3.0}, values  # nearest interpolation: no 0.5, 2.0, ...
        seen |= values
    if stage == "validate":
        assert seen == {0.0, 1.0, 3.0}


def test_resize_gives_patch_size(tmp_path):
    image = np.full(SHAPE, 56.0, np.float32)
    label = np.zeros(SHAPE, np.uint8)
    label[4:10, 5:9, 3:7] = 2
    img_path = write_nifti(tmp_path / "img.nii.gz", image)
    lab_path = write_nifti(tmp_path / "lab.nii.gz", label)
    out = _run(img_path, stage="validate", label=lab_path, resize=True, patch_size=(12, 10, 8))
    assert tuple(out["image"].shape) == (1, 12, 10, 8)
    assert tuple(out["label"].shape) == (1, 12, 10, 8)
    assert set(np.unique(out["label"].numpy()).tolist()) == {0.0, 2.0}


# ---------------------------------------------------------------- training crops


def _train_files(tmp_path):
    image = np.full(SHAPE, 40.0, np.float32)
    label = np.zeros(SHAPE, np.uint8)
    label[18:20, 14:16, 10:12] = 1  # a small lesion far from the volume's centre
    return write_nifti(tmp_path / "img.nii.gz", image), write_nifti(tmp_path / "lab.nii.gz", label)


@pytest.mark.parametrize("patch_size", [(8, 8, 8), (12, 6, 10), (32, 28, 20)])  # the last is larger than SHAPE
def test_train_returns_num_samples_crops_of_patch_size(tmp_path, patch_size):
    img_path, lab_path = _train_files(tmp_path)
    xform = segmentation_transforms("train", spacing=None, patch_size=patch_size, num_samples=3)
    xform.set_random_state(0)
    out = xform({"image": str(img_path), "label": str(lab_path)})
    assert isinstance(out, list) and len(out) == 3
    for item in out:
        assert tuple(item["image"].shape) == (1, *patch_size)
        assert tuple(item["label"].shape) == (1, *patch_size)
    if patch_size == (32, 28, 20):  # padded: every crop holds the whole volume, lesion included
        assert all(float(item["label"].sum()) == 8.0 for item in out)


def test_train_pos_neg_crops_about_half_foreground(tmp_path):
    img_path, lab_path = _train_files(tmp_path)
    xform = segmentation_transforms("train", spacing=None, patch_size=(8, 8, 8), num_samples=100, augment=False)
    xform.set_random_state(0)
    out = xform({"image": str(img_path), "label": str(lab_path)})
    with_fg = np.mean([float(item["label"].sum()) > 0 for item in out])
    # pos=neg=1: each crop is positive with probability 1/2 (always holds the lesion); a negative crop
    # holds it only when its centre falls within 4 voxels of it (about 7% here): expected ~0.53
    assert 0.35 <= with_fg <= 0.75, with_fg


def test_train_crops_deterministic_with_seed(tmp_path):
    img_path, lab_path = _train_files(tmp_path)
    data = {"image": str(img_path), "label": str(lab_path)}

    def crops(seed):
        xform = segmentation_transforms("train", spacing=(1.5, 1.5, 2.0), patch_size=(8, 8, 6), num_samples=4)
        xform.set_random_state(seed)
        return xform(data)

    first, again, other = crops(7), crops(7), crops(8)
    for a, b in zip(first, again):
        torch.testing.assert_close(a["image"].as_tensor(), b["image"].as_tensor(), rtol=0, atol=0)
        torch.testing.assert_close(a["label"].as_tensor(), b["label"].as_tensor(), rtol=0, atol=0)
    assert any(
        not torch.equal(a["image"].as_tensor(), b["image"].as_tensor())
        or not torch.equal(a["label"].as_tensor(), b["label"].as_tensor())
        for a, b in zip(first, other)
    )


# ---------------------------------------------------------------- post-processing


def test_validate_postprocessing_one_hot():
    logits = torch.zeros(3, 4, 3, 2)
    logits[1, :2] = 5.0  # class 1 in the first two x slices
    logits[2, 3] = 5.0  # class 2 in the last x slice
    label = torch.zeros(1, 4, 3, 2)
    label[0, 0] = 1.0
    label[0, 2] = 2.0
    out = segmentation_postprocessing(3, "validate")({"pred": logits, "label": label})
    expected_pred = torch.zeros(3, 4, 3, 2)
    expected_pred[1, :2] = expected_pred[0, 2] = expected_pred[2, 3] = 1.0
    expected_label = torch.zeros(3, 4, 3, 2)
    expected_label[1, 0] = expected_label[0, 1] = expected_label[2, 2] = expected_label[0, 3] = 1.0
    torch.testing.assert_close(torch.as_tensor(out["pred"]), expected_pred)
    torch.testing.assert_close(torch.as_tensor(out["label"]), expected_label)


@pytest.mark.parametrize("pred_as_metatensor", [False, True])
def test_infer_postprocessing_inverts_preprocessing(tmp_path, pred_as_metatensor):
    affine = np.diag([-1.2, -0.9, 2.5, 1.0])  # LPS-like, anisotropic, shifted: nothing is the identity
    affine[:3, 3] = [10.0, -20.0, 5.0]
    image = np.full(SHAPE, -500.0, np.float32)  # air: cropped away by the foreground crop
    image[3:21, 2:18, 2:14] = 40.0  # body
    image[8:14, 6:12, 5:9] = 150.0  # "organ" -> (150 + 87) / 286 = 0.83 after the window
    path = write_nifti(tmp_path / "case_001.nii.gz", image, affine)

    pre = segmentation_transforms("infer", intensity="ct", spacing=(1.5, 1.5, 2.0))
    data = pre({"image": str(path)})
    img = data["image"]
    assert tuple(img.shape) != (1, *SHAPE)  # the preprocessing really changed the grid
    fg = (img.as_tensor() > 0.7).float()
    assert fg.sum() > 0
    pred = torch.cat([1.0 - fg, fg]) * 10.0  # 2-class logits from a threshold
    data["pred"] = MetaTensor(pred, meta=dict(img.meta)) if pred_as_metatensor else pred

    out_dir = tmp_path / "out"
    segmentation_postprocessing(2, "infer", preprocessing=pre, output_dir=out_dir)(data)
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == ["case_001_seg.nii.gz"]
    seg_img = nib.load(str(out_dir / "case_001_seg.nii.gz"))
    assert seg_img.shape == SHAPE
    np.testing.assert_allclose(seg_img.affine, affine, atol=1e-4)
    assert seg_img.get_data_dtype() == np.uint8
    seg = np.asarray(seg_img.dataobj).astype(bool)
    organ = image == 150.0
    assert set(np.unique(np.asarray(seg_img.dataobj)).tolist()) == {0, 1}
    # within a voxel: the whole organ core is found, nothing outside its one-voxel neighbourhood
    assert not np.any(erode(organ, 1) & ~seg)
    assert not np.any(seg & ~dilate(organ, 1))
    assert (seg & organ).sum() >= 0.8 * organ.sum()


# ---------------------------------------------------------------- resolve_intensity_mode


MODE_CASES = [
    ("CT", "ct"),
    ("ct", "ct"),
    (" Computed Tomography ", "ct"),
    ("MR", "mr"),
    ("MRI", "mr"),
    ("mri", "mr"),
    ("T2", "mr"),
    ("FLAIR", "mr"),
]


@pytest.mark.parametrize("modality,expected", MODE_CASES)
def test_resolve_intensity_mode(modality, expected):
    assert resolve_intensity_mode(modality) == expected
    assert expected in INTENSITY_MODES


@pytest.mark.parametrize("modality,expected", [("CT", "ct"), ("MRI", "mr"), ("T1", "mr")])
def test_resolve_intensity_mode_auto_reads_dataset_json(tmp_path, modality, expected):
    root = make_decathlon(tmp_path / "Task", num_cases=1, modality=modality)
    assert resolve_intensity_mode("auto", root) == expected
    assert resolve_intensity_mode("AUTO", str(root)) == expected


def test_resolve_intensity_mode_auto_without_modality_names_the_fix(tmp_path):
    root = make_decathlon(tmp_path / "Task", num_cases=1, modality=None)
    assert "modality" not in json.loads((root / "dataset.json").read_text())
    with pytest.raises(ValueError, match=r"names no modality.*modality='CT' or 'MR'"):
        resolve_intensity_mode("auto", root)


MODE_ILL_CASES = [
    ("auto", None, "needs dataset_dir"),
    ("auto", "", "needs dataset_dir"),
    ("PET", None, "'pet' is not a valid value"),
]


@pytest.mark.parametrize("modality,dataset_dir,pattern", MODE_ILL_CASES)
def test_resolve_intensity_mode_ill(modality, dataset_dir, pattern):
    with pytest.raises(ValueError, match=pattern):
        resolve_intensity_mode(modality, dataset_dir)


# ---------------------------------------------------------------- bad arguments


ILL_CASES = [
    ({"stage": "test"}, "test"),
    ({"stage": "train", "intensity": "pet"}, "pet"),
    ({"stage": "infer", "hu_window": (199.0, -87.0)}, "min < max"),
    ({"stage": "infer", "hu_window": (100.0, 100.0)}, "min < max"),
    ({"stage": "infer", "hu_window": (-87.0, 0.0, 199.0)}, "min < max"),
    ({"stage": "train", "patch_size": (8, 0, 8)}, "patch_size"),
]


@pytest.mark.parametrize("kwargs,pattern", ILL_CASES)
def test_segmentation_transforms_ill(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        segmentation_transforms(**kwargs)


POST_ILL_CASES = [
    ({"num_classes": 1}, "num_classes"),
    ({"num_classes": 2, "stage": "train"}, "train"),
    ({"num_classes": 2, "stage": "infer"}, "output_dir"),
    ({"num_classes": 2, "stage": "infer", "output_dir": "x"}, "preprocessing"),
]


@pytest.mark.parametrize("kwargs,pattern", POST_ILL_CASES)
def test_segmentation_postprocessing_ill(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        segmentation_postprocessing(**kwargs)


def test_class_balanced_crops_centre_on_each_class(tmp_path):
    """crop_ratios=[1, 1, 1]: about a third of the crops are centred on the small class-2 blob."""
    image = np.full(SHAPE, 40.0, np.float32)
    label = np.zeros(SHAPE, np.uint8)
    label[4:16, 4:14, 4:12] = 1  # organ
    label[6:8, 6:8, 6:8] = 2  # small lesion: 8 voxels
    img_path = write_nifti(tmp_path / "img.nii.gz", image)
    lab_path = write_nifti(tmp_path / "lab.nii.gz", label)
    xform = segmentation_transforms(
        "train", spacing=None, patch_size=(4, 4, 4), num_samples=300, augment=False, crop_ratios=[1, 1, 1]
    )
    xform.set_random_state(0)
    crops = xform({"image": str(img_path), "label": str(lab_path)})
    centres = [int(c["label"][0, 2, 2, 2]) for c in crops]  # the voxel at a 4^3 crop's centre
    share = np.bincount(centres, minlength=3) / len(centres)
    np.testing.assert_allclose(share, [1 / 3, 1 / 3, 1 / 3], atol=0.08)


@pytest.mark.parametrize("ratios", [[1], [1, -1], [0, 0, 0]])
def test_bad_crop_ratios(ratios):
    with pytest.raises(ValueError, match="crop_ratios"):
        segmentation_transforms("train", crop_ratios=ratios)
