"""Tests of medssl3d.data.readers.SimpleITKReader against nibabel, MONAI's NibabelReader and SimpleITK."""

from __future__ import annotations

import numpy as np
import pytest
from monai.data import NibabelReader
from monai.data.utils import is_no_channel
from monai.transforms import LoadImage, LoadImaged

from medssl3d.data import SimpleITKReader
from tests.data._helpers import rotated_affine, write_dicom_series, write_nifti, write_sitk

SHAPE = (5, 6, 7)  # (x, y, z), deliberately non-cubic


def _ras_affine_from_sitk(spacing, origin) -> np.ndarray:
    """Expected RAS affine of an identity-direction SimpleITK image: LPS with the first two rows negated."""
    affine = np.eye(4)
    affine[:3, :3] = np.diag(spacing)
    affine[:3, 3] = origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


def _load(path, reader):
    return LoadImage(image_only=True, dtype=None)(path, reader=reader)  # runtime reader: no silent fallback


AFFINE_CASES = [
    ((1.5, 0.8, 3.0), (10.0, -20.0, 5.0), 0.3),
    ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), 0.0),
    ((0.7, 2.0, 1.2), (-100.5, 33.0, -7.25), -1.1),
]


@pytest.mark.parametrize("spacing,origin,angle", AFFINE_CASES)
def test_nifti_matches_nibabel(tmp_path, spacing, origin, angle):
    import nibabel as nib

    affine = rotated_affine(spacing, origin, angle)
    data = np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
    path = write_nifti(tmp_path / "img.nii.gz", data, affine)

    reader = SimpleITKReader()
    array, meta = reader.get_data(reader.read(path))
    np.testing.assert_allclose(meta["affine"], nib.load(path).affine, atol=1e-5)
    np.testing.assert_allclose(meta["original_affine"], meta["affine"])
    np.testing.assert_array_equal(array, data)
    assert tuple(meta["spatial_shape"]) == SHAPE
    assert is_no_channel(meta["original_channel_dim"])
    assert meta["filename_or_obj"] == str(path)

    ours, monai_default = _load(path, SimpleITKReader()), _load(path, NibabelReader())
    np.testing.assert_array_equal(ours.numpy(), monai_default.numpy())
    np.testing.assert_allclose(ours.affine.numpy(), monai_default.affine.numpy(), atol=1e-5)
    assert "sizeof_hdr" not in ours.meta  # really read by SimpleITK, not nibabel
    assert ours.meta["filename_or_obj"] == str(path)


def test_channel_last_4d_nifti_matches_nibabel_reader(tmp_path):
    affine = rotated_affine()
    data = np.random.default_rng(1).normal(size=(*SHAPE, 2)).astype(np.float32)
    path = write_nifti(tmp_path / "img4d.nii.gz", data, affine)
    ours, theirs = _load(path, SimpleITKReader()), _load(path, NibabelReader())
    assert ours.shape == theirs.shape == (*SHAPE, 2)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_allclose(ours.affine.numpy(), theirs.affine.numpy(), atol=1e-5)
    assert ours.meta["original_channel_dim"] == -1
    assert tuple(ours.meta["spatial_shape"]) == SHAPE


SITK_FORMAT_CASES = [".nrrd", ".mha", ".mhd", ".nhdr", ".nii.gz"]


@pytest.mark.parametrize("suffix", SITK_FORMAT_CASES)
def test_sitk_formats(tmp_path, suffix):
    zyx = np.arange(np.prod(SHAPE[::-1]), dtype=np.int16).reshape(SHAPE[::-1])
    spacing, origin = (0.5, 1.25, 2.0), (3.0, -4.0, 12.5)
    path = write_sitk(tmp_path / f"img{suffix}", zyx, spacing=spacing, origin=origin)
    image = LoadImage(image_only=True, dtype=None, ensure_channel_first=True)(path, reader=SimpleITKReader())
    assert image.shape == (1, *SHAPE)
    assert image.dtype.is_floating_point is False
    np.testing.assert_array_equal(image[0].numpy(), zyx.T)  # (x, y, z) order
    np.testing.assert_allclose(image.affine.numpy(), _ras_affine_from_sitk(spacing, origin), atol=1e-6)
    np.testing.assert_allclose(image.meta["spacing"], spacing)


def test_vector_image_is_channel_last(tmp_path):
    zyxc = np.random.default_rng(2).integers(0, 255, size=(*SHAPE[::-1], 3)).astype(np.uint8)
    path = write_sitk(tmp_path / "rgb.mha", zyxc, vector=True)
    reader = SimpleITKReader()
    array, meta = reader.get_data(reader.read(path))
    assert array.shape == (*SHAPE, 3)
    np.testing.assert_array_equal(array[..., 1], zyxc[..., 1].T)
    assert meta["original_channel_dim"] == -1
    assert tuple(meta["spatial_shape"]) == SHAPE
    loaded = LoadImage(image_only=True, ensure_channel_first=True)(path, reader=reader)
    assert loaded.shape == (3, *SHAPE)


def test_dicom_series_directory(tmp_path):
    zyx = np.random.default_rng(3).integers(-1000, 1000, size=(6, 5, 4)).astype(np.int16)
    spacing, origin = (0.8, 0.9, 2.5), (10.0, -20.0, 30.0)
    folder = write_dicom_series(tmp_path / "series", zyx, spacing=spacing, origin=origin)
    reader = SimpleITKReader()
    assert reader.verify_suffix(folder)
    image = LoadImage(image_only=True, dtype=None, ensure_channel_first=True)(folder, reader=reader)
    assert image.shape == (1, 4, 5, 6)
    np.testing.assert_array_equal(image[0].numpy(), zyx.T)
    np.testing.assert_allclose(image.affine.numpy(), _ras_affine_from_sitk(spacing, origin), atol=1e-4)
    assert image.meta["filename_or_obj"] == str(folder)


def test_dicom_series_meta(tmp_path):
    folder = write_dicom_series(tmp_path / "series", np.zeros((3, 4, 5), dtype=np.int16))
    _, meta = SimpleITKReader(series_meta=True).get_data(SimpleITKReader(series_meta=True).read(folder))
    assert meta["0008|0060"].strip() == "CT"


def test_empty_directory_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No DICOM series found"):
        SimpleITKReader().read(tmp_path / "empty")


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="Cannot find image file"):
        SimpleITKReader().read(tmp_path / "nope.nrrd")


def test_list_of_files_stacked_as_channels(tmp_path):
    a = write_sitk(tmp_path / "a.nrrd", np.zeros(SHAPE[::-1], dtype=np.float32))
    b = write_sitk(tmp_path / "b.nrrd", np.ones(SHAPE[::-1], dtype=np.float32))
    image = LoadImage(image_only=True)([a, b], reader=SimpleITKReader())
    assert image.shape == (2, *SHAPE)
    assert image[1].min() == 1 and image[0].max() == 0


def test_loadimaged_with_registered_reader(tmp_path):
    path = write_sitk(tmp_path / "img.nrrd", np.ones(SHAPE[::-1], dtype=np.int16), spacing=(2.0, 2.0, 2.0))
    loader = LoadImaged(keys="image", reader=SimpleITKReader(), ensure_channel_first=True, image_only=True)
    out = loader({"image": str(path)})
    assert out["image"].shape == (1, *SHAPE)
    np.testing.assert_allclose(out["image"].pixdim.numpy(), [2.0, 2.0, 2.0])


def test_header_meta_off_keeps_only_standard_keys(tmp_path):
    path = write_sitk(tmp_path / "img.nrrd", np.ones(SHAPE[::-1], dtype=np.int16))
    _, meta = SimpleITKReader(header_meta=False).get_data(SimpleITKReader().read(path))
    assert not any(k.startswith("NRRD") for k in meta)
    _, meta = SimpleITKReader().get_data(SimpleITKReader().read(path))
    assert any(k.startswith("NRRD") for k in meta)


SUFFIX_CASES = [
    ("a.nii.gz", True),
    ("a.nii", True),
    ("a.NRRD", True),
    ("a.nhdr", True),
    ("a.mha", True),
    ("a.mhd", True),
    ("a.dcm", True),
    ("a.png", False),
    ("a.npz", False),
    (["a.nrrd", "b.mha"], True),
    (["a.nrrd", "b.png"], False),
]


@pytest.mark.parametrize("name,expected", SUFFIX_CASES)
def test_verify_suffix(name, expected):
    assert SimpleITKReader().verify_suffix(name) is expected


@pytest.mark.parametrize("channel_dim", ["first", 1.5])
def test_bad_channel_dim(channel_dim):
    with pytest.raises(ValueError, match="channel_dim must be None, 'no_channel' or an int"):
        SimpleITKReader(channel_dim=channel_dim)
