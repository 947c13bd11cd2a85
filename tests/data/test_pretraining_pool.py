"""Pretraining pools: every image, labels unused, a held-out part."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medssl3d.data import DatasetNotFoundError, generate_phantom_dataset, list_2d_images, prepare_pretraining_split


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
