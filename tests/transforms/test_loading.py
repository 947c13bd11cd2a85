"""Loading checks of the 3D pipelines (unreadable files, channel counts) and Spacingd beside MONAI Label's keys."""

from __future__ import annotations

import re

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import Spacingd as MonaiSpacingd

from medssl3d.transforms import resolve_intensity_mode, segmentation_postprocessing, segmentation_transforms
from medssl3d.transforms.loading import CheckVolumed, ImageInputError, LoadVolumed, Spacingd
from tests.data._helpers import write_nifti

# what MONAI Label's BasicInferTask puts into the data dictionary beside the image path
MONAILABEL_KEYS = {"device": "cpu", "model_filename": ["model.pt"], "result_extension": ".nii.gz"}


def _messages(error: BaseException) -> str:
    """The message of an error and of every error it was raised from (MONAI's Compose wraps them)."""
    parts = []
    while error is not None:
        parts.append(str(error))
        error = error.__cause__
    return " | ".join(parts)


def _ct(tmp_path, name="case.nii.gz", channels=None, affine=None):
    shape = (20, 16, 12) if channels is None else (20, 16, 12, channels)
    image = np.full(shape, -800.0, np.float32)
    image[3:17, 2:14, 2:10] = 40.0
    image[6:12, 5:10, 4:8] = 150.0
    if affine is None:
        affine = np.diag([-1.2, -0.9, 2.5, 1.0])
        affine[:3, 3] = [10.0, -20.0, 5.0]
    return write_nifti(tmp_path / name, image, affine), affine


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x00" * 400])
def test_unreadable_file_names_the_file_and_the_formats(tmp_path, content):
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(content)
    with pytest.raises(ImageInputError, match=r"cannot read .*broken\.nii\.gz .*NIfTI \(\.nii, \.nii\.gz\), NRRD") as e:
        LoadVolumed("image", image_only=True)({"image": str(path), **MONAILABEL_KEYS})
    assert e.value.__cause__ is not None  # the reader's own error stays attached


def test_missing_file_and_missing_key(tmp_path):
    with pytest.raises(ImageInputError, match=r"cannot read .*nope\.nii\.gz"):
        LoadVolumed("image")({"image": str(tmp_path / "nope.nii.gz")})
    with pytest.raises(ImageInputError, match=r"has no 'image' entry .*\['image_path'\]"):
        LoadVolumed("image")({"image_path": "x.nii.gz"})


def test_load_volume_is_still_a_load_imaged(tmp_path):
    """MONAI Label's BundleInferTask finds LoadImaged instances to wrap them; the subclass must stay one."""
    from monai.transforms import LoadImaged

    path, _ = _ct(tmp_path)
    loader = LoadVolumed("image", image_only=True)
    assert isinstance(loader, LoadImaged)
    loader._loader.image_only = False  # what BundleInferTask does
    out = loader({"image": str(path)})
    assert out["image"].shape == (20, 16, 12) and "image_meta_dict" in out


@pytest.mark.parametrize(
    "shape, channels, dims, pattern",
    [
        ((4, 8, 8, 8), 1, 3, r"has 4 channel\(s\) and 3 spatial dimension\(s\) \(channel-first shape \[4, 8, 8, 8\]\)"),
        ((1, 8, 8), 1, 3, r"has 1 channel\(s\) and 2 spatial dimension\(s\)"),
        ((3, 8, 8), 1, 2, r"has 3 channel\(s\)"),
    ],
)
def test_check_volume_refuses_wrong_channels_or_dimensions(shape, channels, dims, pattern):
    check = CheckVolumed("image", num_channels=channels, spatial_dims=dims, what="a 1-channel 3D CT volume")
    with pytest.raises(ImageInputError, match=pattern + r".*must be a 1-channel 3D CT volume"):
        check({"image": torch.zeros(shape)})


def test_check_volume_passes_good_input_and_checks_each_key():
    data = {"image": torch.zeros(2, 4, 4, 4), "label": torch.zeros(1, 4, 4, 4)}
    assert CheckVolumed(["image", "label"], num_channels=[2, 1])(data) is not data
    assert CheckVolumed("image", num_channels=None, spatial_dims=None)({"image": torch.zeros(7, 3)})["image"].shape == (7, 3)
    with pytest.raises(ImageInputError, match="'label' must be"):
        CheckVolumed(["image", "label"], num_channels=[2, 2])(data)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [({"num_channels": 0}, "positive"), ({"num_channels": [1, 1]}, "one value per key"), ({"spatial_dims": 4}, "1, 2 or 3")],
)
def test_check_volume_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        CheckVolumed("image", **kwargs)


def test_spacingd_leaves_string_entries_alone_and_matches_monai(tmp_path):
    path, _ = _ct(tmp_path)
    loaded = LoadVolumed("image", image_only=False, ensure_channel_first=True)({"image": str(path), "image_path": str(path)})
    with pytest.raises(AttributeError, match="'str' object has no attribute 'update'"):
        MonaiSpacingd("image", pixdim=(1.5, 1.5, 2.0))(dict(loaded))  # MONAI 1.6 on MONAI Label's data; see loading.py
    spacing = Spacingd("image", pixdim=(1.5, 1.5, 2.0))
    ours = spacing(dict(loaded))
    reference = MonaiSpacingd("image", pixdim=(1.5, 1.5, 2.0))({k: v for k, v in loaded.items() if k != "image_path"})
    assert ours["image_path"] == str(path)
    assert torch.equal(ours["image"].as_tensor(), reference["image"].as_tensor())
    np.testing.assert_allclose(ours["image"].affine, reference["image"].affine)
    assert ours["image_meta_dict"]["spatial_shape"] is not None  # the real meta dictionary is still updated
    back = spacing.inverse(ours)
    assert back["image"].shape == loaded["image"].shape


def test_infer_chain_runs_with_monailabel_keys_and_inverts(tmp_path):
    """The bundle's inference pre- and post-processing on the dictionary MONAI Label hands over."""
    path, affine = _ct(tmp_path)
    pre = segmentation_transforms("infer", intensity=resolve_intensity_mode("CT"), in_channels=1)
    data = pre({"image": str(path), "image_path": str(path), **MONAILABEL_KEYS})
    assert data["image_path"] == str(path) and data["device"] == "cpu"
    fg = (data["image"].as_tensor() > 0.7).float()
    data["pred"] = torch.cat([1.0 - fg, fg]) * 10.0
    post = segmentation_postprocessing(2, "infer", preprocessing=pre, output_dir=tmp_path / "out")
    post(data)
    seg = nib.load(str(tmp_path / "out" / "case_seg.nii.gz"))
    assert seg.shape == (20, 16, 12)
    np.testing.assert_allclose(seg.affine, affine, atol=1e-4)


def test_pipelines_refuse_a_multichannel_volume_naming_the_file(tmp_path):
    path, _ = _ct(tmp_path, "four.nii.gz", channels=4)
    for stage in ("infer", "validate"):
        data = {"image": str(path), "label": str(path)}
        with pytest.raises(Exception) as e:
            segmentation_transforms(stage, in_channels=1)(data)
        assert re.search(r"four\.nii\.gz has 4 channel\(s\).*a 1-channel 3D CT volume", _messages(e.value))
    # without in_channels any channel count goes through (as before)
    out = segmentation_transforms("infer", spacing=None)({"image": str(path)})
    assert out["image"].shape[0] == 4


def test_pipelines_refuse_a_multichannel_label(tmp_path):
    image, _ = _ct(tmp_path)
    label = write_nifti(tmp_path / "lab.nii.gz", np.zeros((20, 16, 12, 2), np.uint8), np.diag([-1.2, -0.9, 2.5, 1.0]))
    with pytest.raises(Exception) as e:
        segmentation_transforms("validate", in_channels=1)({"image": str(image), "label": str(label)})
    assert re.search(r"lab\.nii\.gz has 2 channel\(s\).*1-channel 3D label map", _messages(e.value))


def test_resolve_intensity_mode_default_without_dataset(tmp_path):
    assert resolve_intensity_mode("auto", "", default="CT") == "ct"
    assert resolve_intensity_mode("auto", None, default="MR") == "mr"
    assert resolve_intensity_mode("MR", "", default="CT") == "mr"  # an explicit modality wins
    with pytest.raises(ValueError, match="needs dataset_dir"):
        resolve_intensity_mode("auto", "", default=None)
