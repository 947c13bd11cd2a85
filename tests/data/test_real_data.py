"""Real-data checks of the data layer; run when MEDSSL3D_REAL_DATA points at the shared data folder.

The folder is never copied into the project: ``MEDSSL3D_REAL_DATA=../shared/data pytest tests/data``.
"""

from __future__ import annotations

import os
import re
import time

import numpy as np
import pytest
from monai.transforms import LoadImage

from medssl3d.data import (
    SimpleITKReader,
    class_names,
    list_unlabelled_images,
    load_decathlon,
    modality,
    prepare_segmentation_split,
    split_dataset,
    validate_datalist,
)
from tests.data._helpers import REAL_DATA_ENV, real_data_dir

pytestmark = pytest.mark.realdata


def _require(subfolder: str):
    root = os.environ.get(REAL_DATA_ENV, "")
    if not root:
        pytest.skip(f"{REAL_DATA_ENV} is not set; set it to the shared real-data folder to run real-data tests")
    path = real_data_dir(subfolder)
    if path is None:
        pytest.skip(f"{REAL_DATA_ENV}={root} has no {subfolder}/")
    return path


def test_hippocampus_loads_and_validates():
    root = _require("msd_task04_hippocampus")
    items = load_decathlon(root)
    assert len(items) == 208
    assert class_names(root) == ["background", "Anterior", "Posterior"]
    assert modality(root) == "MRI"
    start = time.perf_counter()
    validate_datalist(items, num_classes=3)  # mixed float32/uint8 images, one float32 label
    assert time.perf_counter() - start < 30
    assert load_decathlon(root, "test") == []


def test_hippocampus_split(tmp_path):
    root = _require("msd_task04_hippocampus")
    split = prepare_segmentation_split(root, output_dir=tmp_path, label_fraction=0.1, validate=False)
    assert (tmp_path / "split.json").is_file()
    assert split["train_full_size"] == 208 - 42 - 42
    assert len(split["train"]) == 13  # ceil(0.1 * 124)


def test_dicom_series_found_and_loaded():
    root = _require("dicom_series")
    items = list_unlabelled_images(root)
    names = [str(d["image"])[len(str(root)) + 1 :] for d in items]
    assert names == [
        "totalseg_example_ct_dicom",
        "udacity_hippo_crop/Study1/13_HCropVolume",
        "udacity_hippo_crop/Study2/14_HCropVolume",
        "udacity_hippo_crop/Study3/11_HCropVolume",
    ]
    loader = LoadImage(image_only=True, ensure_channel_first=True)
    ct = loader(items[0]["image"], reader=SimpleITKReader())
    assert tuple(ct.shape) == (1, 512, 512, 20)
    np.testing.assert_allclose(ct.pixdim.numpy(), [0.9765625, 0.9765625, 2.0], rtol=1e-5)
    assert ct.min() < -900 and ct.max() > 500  # air and bone in HU
    for item in items[1:]:
        mr = loader(item["image"], reader=SimpleITKReader())
        assert mr.ndim == 4 and mr.shape[1:3] in {(35, 51), (36, 48), (34, 50)}


def test_nrrd_cases_found_and_loaded():
    root = _require("pyradiomics_cases")
    items = list_unlabelled_images(root, exclude_pattern=r"_label")
    assert [str(d["image"]).rsplit("/", 1)[-1] for d in items] == [
        "brain1_image.nrrd",
        "brain2_image.nrrd",
        "breast1_image.nrrd",
    ]
    assert len(list_unlabelled_images(root)) == 6
    image = LoadImage(image_only=True, ensure_channel_first=True)(items[0]["image"], reader=SimpleITKReader())
    assert tuple(image.shape) == (1, 256, 256, 25)
    np.testing.assert_allclose(image.pixdim.numpy(), [0.78125, 0.78125, 6.5], rtol=1e-5)
    # image and label of a case validate together (NRRD path through SimpleITK)
    validate_datalist(
        [{"image": str(root / f"{c}_image.nrrd"), "label": str(root / f"{c}_label.nrrd")} for c in ("brain1", "breast1")],
        num_classes=2,
    )


def test_totalseg_ct_reader_matches_nibabel():
    root = _require("totalseg_example_ct")
    path = root / "example_ct_sm.nii.gz"
    ours = LoadImage(image_only=True)(path, reader=SimpleITKReader())
    theirs = LoadImage(image_only=True)(path)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_allclose(ours.affine.numpy(), theirs.affine.numpy(), atol=1e-4)


def test_fundus_patient_grouping():
    root = _require("fundus_dr_srahim")
    import csv

    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    items = [{"image": str(root / "images" / row["file"])} for row in rows]
    parts = split_dataset(items, seed=0, group_pattern=r"(Patient\d+)")
    owners = {}
    for name, part in parts.items():
        for item in part:
            patient = re.search(r"Patient\d+", item["image"]).group(0)
            assert owners.setdefault(patient, name) == name
