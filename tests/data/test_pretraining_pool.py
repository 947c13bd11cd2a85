"""Pretraining pools: every image, labels unused, a held-out part."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medssl3d.data import (
    DatasetNotFoundError,
    DataValidationError,
    generate_phantom_dataset,
    list_2d_images,
    list_npz_images,
    prepare_pretraining_split,
)


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory):
    return generate_phantom_dataset(
        tmp_path_factory.mktemp("ph") / "Task00_Phantom", num_cases=8, num_test=2, shape=(32, 32, 24), seed=0
    )


def _png(path, value=0, size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, np.uint8)).save(path)


def test_2d_pool_recurses_skips_hidden_and_groups(tmp_path):
    for i in range(5):
        for eye in "LR":
            _png(tmp_path / "imgs" / f"Patient{i:03d}_{eye}.png")
    _png(tmp_path / "imgs" / ".hidden.png")
    _png(tmp_path / "class" / "3" / "x.JPG".lower())
    (tmp_path / "labels.csv").write_text("file,label\n")
    found = [item["image"] for item in list_2d_images(tmp_path)]
    assert len(found) == 11 and found == sorted(found) and not any(".hidden" in f for f in found)

    split = prepare_pretraining_split(tmp_path / "imgs", tmp_path / "out", spatial_dims=2, val_fraction=0.2,
                                      group_pattern=r"(Patient\d+)")
    assert split["num_images"] == 10 and len(split["train"]) + len(split["validation"]) == 10
    ids = lambda part: {p["image"].split("Patient")[1][:3] for p in split[part]}  # noqa: E731
    assert ids("train").isdisjoint(ids("validation"))  # both eyes of a patient on one side
    on_disk = json.loads((tmp_path / "out" / "pretrain_split.json").read_text())
    assert on_disk["validation"] == split["validation"]


def test_3d_pool_takes_training_and_test_images(phantom_dir, tmp_path):
    split = prepare_pretraining_split(phantom_dir, tmp_path, spatial_dims=3, val_fraction=0.25)
    assert split["num_images"] == 10  # 8 labelled + 2 test images, labels unused
    assert all(set(item) == {"image"} for item in split["train"] + split["validation"])
    assert len(split["validation"]) >= 2


def test_errors_name_the_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="nowhere"):
        prepare_pretraining_split(tmp_path / "nowhere", tmp_path, spatial_dims=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no 2D images"):
        prepare_pretraining_split(tmp_path / "empty", tmp_path, spatial_dims=2)
    with pytest.raises(ValueError, match="spatial_dims"):
        prepare_pretraining_split(tmp_path, tmp_path, spatial_dims=4)


# ------------------------------------------------------------------------------------------- npz, folders


def _npz(path, sizes=(6, 2, 3), shape=(8, 8), **extra):
    """A MedMNIST-style archive whose pixel values encode (part, index), with labels that must stay unused."""
    arrays = {}
    for p, (part, n) in enumerate(zip(("train", "val", "test"), sizes)):
        arrays[f"{part}_images"] = np.stack([np.full(shape, 10 * p + i, np.uint8) for i in range(n)])
        arrays[f"{part}_labels"] = np.zeros((n, 1), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays, **extra)
    return path


def test_npz_file_pools_every_image_of_every_images_array(tmp_path):
    from medssl3d.data import load_npz_image, npz_reference
    from medssl3d.transforms import pretraining_transforms

    path = _npz(tmp_path / "tiny.npz", other=np.zeros(3))
    found = [it["image"] for it in list_npz_images(path)]
    expected = [npz_reference(path, f"{part}_images", i) for part, n in (("train", 6), ("val", 2), ("test", 3))
                for i in range(n)]
    assert found == expected
    split = prepare_pretraining_split(path, tmp_path / "out", spatial_dims=2, val_fraction=0.25, group_pattern="auto")
    pooled = sorted(it["image"] for it in split["train"] + split["validation"])
    assert split["num_images"] == 11 and pooled == sorted(expected) and len(split["validation"]) >= 2
    assert all(set(it) == {"image"} for it in split["train"] + split["validation"])  # labels unused
    assert load_npz_image(npz_reference(path, "test_images", 2))[0, 0] == 22
    image = pretraining_transforms((16, 16), spatial_dims=2, in_channels=1, resize=True)(split["train"][0])["image"]
    assert tuple(image.shape) == (1, 16, 16)  # references load through the 2D chain
    # the test part can be kept out of the pool
    split = prepare_pretraining_split(path, tmp_path / "out2", spatial_dims=2, val_fraction=0.0,
                                      exclude_pattern="#test_images")
    assert split["num_images"] == 8 and not any("test_images" in it["image"] for it in split["train"])
    # what MONAI's config parser makes of "#test_images" ("#" is its old id separator) works the same
    split = prepare_pretraining_split(path, tmp_path / "out3", spatial_dims=2, val_fraction=0.0,
                                      exclude_pattern="::test_images")
    assert split["num_images"] == 8


def test_folder_pools_npz_archives_and_image_files(tmp_path):
    _npz(tmp_path / "data" / "a.npz", sizes=(3, 1, 1))
    _npz(tmp_path / "data" / "sub" / "b.npz", sizes=(2, 1, 1), shape=(8, 8, 3))
    np.savez(tmp_path / "data" / "notimages.npz", weights=np.zeros(4))  # no *_images array: skipped
    _png(tmp_path / "data" / "x.png")
    split = prepare_pretraining_split(tmp_path / "data", tmp_path / "out", spatial_dims=2, val_fraction=0.0)
    images = [it["image"] for it in split["train"]]
    assert split["num_images"] == 5 + 4 + 1
    assert sum("a.npz#" in i for i in images) == 5 and sum("b.npz#" in i for i in images) == 4
    assert sum(i.endswith("x.png") for i in images) == 1


def test_class_folders_pool_every_image(tmp_path):
    from tests.data.test_classification import make_class_folders

    root = make_class_folders(tmp_path / "cxr", names=("NORMAL", "PNEUMONIA"), per_class=3, parts=("train", "test"))
    split = prepare_pretraining_split(root, tmp_path / "out", spatial_dims=2, val_fraction=0.25, group_pattern="")
    assert split["num_images"] == 12 and len(split["train"]) + len(split["validation"]) == 12
    assert all(set(it) == {"image"} for it in split["train"])


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "plain.npz", weights=np.zeros(4))
    with pytest.raises(DataValidationError, match="no '\\*_images' array"):
        prepare_pretraining_split(tmp_path / "plain.npz", tmp_path, spatial_dims=2)
    np.savez(tmp_path / "vol.npz", train_images=np.zeros((2, 5, 5, 5), np.uint8))
    with pytest.raises(DataValidationError, match="shape \\(2, 5, 5, 5\\)"):
        list_npz_images(tmp_path / "vol.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataValidationError, match="cannot be read"):
        list_npz_images(tmp_path / "bad.npz")
    with pytest.raises(DatasetNotFoundError, match="missing.npz"):
        prepare_pretraining_split(tmp_path / "missing.npz", tmp_path, spatial_dims=2)
