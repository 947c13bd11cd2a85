"""Tests of medssl3d.data.pool.list_unlabelled_images on a generated folder of mixed formats."""

from __future__ import annotations

import numpy as np
import pytest
from monai.transforms import LoadImage

from medssl3d.data import DataValidationError, SimpleITKReader, list_unlabelled_images
from tests.data._helpers import write_dicom_series, write_nifti, write_sitk


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    """NIfTI, NRRD, MetaImage, a .dcm series, an extension-less DICOM series, and files to ignore."""
    root = tmp_path_factory.mktemp("pool")
    write_nifti(root / "a_ct.nii.gz", np.zeros((4, 5, 6), dtype=np.int16))
    write_nifti(root / "nested" / "deeper" / "b.nii", np.zeros((4, 5, 6), dtype=np.float32))
    write_sitk(root / "c_mr.nrrd", np.ones((6, 5, 4), dtype=np.int16))
    write_sitk(root / "nested" / "d.mha", np.ones((6, 5, 4), dtype=np.uint8))
    write_sitk(root / "nested" / "e.mhd", np.ones((6, 5, 4), dtype=np.uint8))  # writes e.raw beside it
    write_dicom_series(root / "dicom" / "series_dcm", np.arange(60, dtype=np.int16).reshape(3, 4, 5))
    write_dicom_series(root / "dicom" / "series_noext", np.arange(60, dtype=np.int16).reshape(3, 4, 5), suffix="")
    (root / "notes.txt").write_text("not an image")
    (root / "other").mkdir()
    (root / "other" / "data.csv").write_text("a,b\n")
    write_nifti(root / ".hidden" / "skip.nii.gz", np.zeros((2, 2, 2), dtype=np.uint8))
    return root


EXPECTED = [
    "a_ct.nii.gz",
    "c_mr.nrrd",
    "dicom/series_dcm",
    "dicom/series_noext",
    "nested/d.mha",
    "nested/deeper/b.nii",
    "nested/e.mhd",
]


def _relative(items, root):
    return [str(p["image"])[len(str(root)) + 1 :] for p in items]


def test_lists_every_format_sorted(mixed_folder):
    items = list_unlabelled_images(mixed_folder)
    assert _relative(items, mixed_folder) == EXPECTED
    assert all(set(d) == {"image"} for d in items)
    assert items == list_unlabelled_images(str(mixed_folder))  # deterministic, str or Path


def test_not_recursive(mixed_folder):
    assert _relative(list_unlabelled_images(mixed_folder, recursive=False), mixed_folder) == ["a_ct.nii.gz", "c_mr.nrrd"]


EXCLUDE_CASES = [
    (r"^nested/", ["a_ct.nii.gz", "c_mr.nrrd", "dicom/series_dcm", "dicom/series_noext"]),
    (r"_(ct|mr)\.", [p for p in EXPECTED if p not in ("a_ct.nii.gz", "c_mr.nrrd")]),
    (r"noext", [p for p in EXPECTED if p != "dicom/series_noext"]),
]


@pytest.mark.parametrize("pattern,expected", EXCLUDE_CASES)
def test_exclude_pattern(mixed_folder, pattern, expected):
    assert _relative(list_unlabelled_images(mixed_folder, exclude_pattern=pattern), mixed_folder) == expected


def test_every_listed_image_loads(mixed_folder):
    loader = LoadImage(image_only=True, ensure_channel_first=True)
    for item in list_unlabelled_images(mixed_folder):
        image = loader(item["image"], reader=SimpleITKReader())
        assert image.ndim == 4 and image.shape[0] == 1


def test_dicom_series_is_one_volume(mixed_folder):
    image = LoadImage(image_only=True, dtype=None)(mixed_folder / "dicom" / "series_noext", reader=SimpleITKReader())
    assert tuple(image.shape) == (5, 4, 3)
    np.testing.assert_array_equal(image.numpy(), np.arange(60).reshape(3, 4, 5).T)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Cannot find image folder: .*nope"):
        list_unlabelled_images(tmp_path / "nope")
    with pytest.raises(ValueError, match=r"Cannot find image folder"):
        list_unlabelled_images(tmp_path / "nope")


def test_no_images_lists_suffixes(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(DataValidationError, match=r"No images found in .*\.nii, \.nii\.gz, \.nrrd.*DICOM series"):
        list_unlabelled_images(tmp_path)


def test_bad_exclude_pattern(mixed_folder):
    with pytest.raises(ValueError, match="not a valid regular expression"):
        list_unlabelled_images(mixed_folder, exclude_pattern="(")
