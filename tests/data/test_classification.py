"""Labelled 2D layouts (CSV, class folders, MedMNIST npz), their errors, and the classification split."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from medssl3d.data import DatasetNotFoundError, DataValidationError
from medssl3d.data.classification import (
    detect_classification_layout,
    load_classification_datalist,
    load_npz_image,
    npz_reference,
    parse_npz_reference,
    prepare_classification_split,
    read_classification_dataset,
)

REAL = os.environ.get("MEDSSL3D_REAL_DATA", "")


def make_fundus_dataset(root: Path, n_patients: int = 15, size: int = 24, seed: int = 0, ungraded: int = 1) -> Path:
    """A fundus-like CSV dataset: ``images/c<grade>_Patient<id>_<L|R>.png`` and ``labels.csv``.

    Each image is an orange disc on black with bright spots whose density grows with the DR grade
    (0-4), so a classifier can learn it. Patient ``p`` has grade ``p % 5`` in the left eye and
    ``(p + 1) % 5`` in the right, so one patient's eyes carry different labels. ``ungraded`` extra rows
    have an empty grade (like the 7 ungradable images of the Rahim set).
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    disc = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (0.45 * size) ** 2
    rows = []
    for p in range(n_patients):
        for eye in "LR":
            grade = (p + (eye == "R")) % 5
            img = np.zeros((size, size, 3), np.float32)
            img[disc] = (0.8, 0.35, 0.15)
            img[disc & (rng.random((size, size)) < 0.04 * grade)] = (1.0, 1.0, 0.6)
            img += rng.normal(0, 0.03, img.shape)
            name = f"c{grade}_Patient{p:03d}_{eye}.png"
            Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(root / "images" / name)
            rows.append([name, f"grade {grade}", grade])
    for k in range(ungraded):
        rows.append([f"c9_Patient{900 + k}_L.png", "ungradable", ""])
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "grade_name", "dr_grade"])
        writer.writerows(rows)
    return root


def make_npz(path: Path, sizes=(12, 4, 6), num_classes: int = 3, rgb: bool = False, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in zip(("train", "val", "test"), sizes):
        shape = (n, 8, 8, 3) if rgb else (n, 8, 8)
        arrays[f"{part}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{part}_labels"] = (np.arange(n) % num_classes).reshape(n, 1).astype(np.uint8)
    np.savez_compressed(path, **arrays)
    return path


def make_class_folders(root: Path, names=("0", "1", "2"), per_class: int = 3, parts=(None,)) -> Path:
    from PIL import Image

    for part in parts:
        for k, name in enumerate(names):
            folder = root / part / name if part else root / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.fromarray(np.full((6, 6), 40 * k + i, np.uint8)).save(folder / f"{part or 'all'}_{name}_{i}.png")
    return root


def _patients(items) -> set[str]:
    return {re.search(r"Patient\d+", os.path.basename(it["image"])).group(0) for it in items}


@pytest.fixture(scope="module")
def fundus(tmp_path_factory) -> Path:
    return make_fundus_dataset(tmp_path_factory.mktemp("fundus"))


# ------------------------------------------------------------------------------------------------ CSV


def test_csv_layout_detects_columns_and_skips_ungraded(fundus):
    data = read_classification_dataset(fundus)
    assert data["layout"] == "csv" and data["image_column"] == "file" and data["label_column"] == "dr_grade"
    assert len(data["items"]) == 30 and data["num_skipped"] == 1
    assert data["class_names"] == ["0", "1", "2", "3", "4"]
    first = data["items"][0]
    assert Path(first["image"]).is_file() and first["label"] == int(Path(first["image"]).name[1])
    assert all(it["label"] == int(Path(it["image"]).name[1]) for it in data["items"])
    assert load_classification_datalist(fundus, label_column="dr_grade") == data["items"]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"label_column": "grade_0_4"}, DataValidationError,
         r"label column 'grade_0_4' not found .*\['file', 'grade_name', 'dr_grade'\].*label_column="),
        ({"image_column": "img"}, DataValidationError, r"image file column 'img' not found.*image_column="),
        ({"label_column": "grade_name"}, DataValidationError, r"'grade_name'.*not integer.*'grade 0'"),
        ({"num_classes": 3}, DataValidationError, r"labels \[3, 4\] .* out of range \[0, 2\]"),
        ({"csv": "other.csv"}, DatasetNotFoundError, "other.csv"),
        ({"class_names": ["a", "b"]}, ValueError, "class_names has 2 names"),
        ({"num_classes": 1}, ValueError, "num_classes"),
    ],
)
def test_csv_errors_name_the_problem(fundus, kwargs, error, message):
    with pytest.raises(error, match=message):
        read_classification_dataset(fundus, **kwargs)


def test_csv_missing_and_unreadable_images(tmp_path):
    root = make_fundus_dataset(tmp_path / "d", n_patients=5, ungraded=0)
    (root / "images" / "c2_Patient001_R.png").unlink()
    with pytest.raises(DataValidationError, match=r"1 image\(s\) listed .* do not exist: .*c2_Patient001_R.png"):
        read_classification_dataset(root)
    make_fundus_dataset(root, n_patients=5, ungraded=0)
    (root / "images" / "c3_Patient002_R.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataValidationError, match=r"c3_Patient002_R.png cannot be read"):
        prepare_classification_split(root, val_fraction=0.2, test_fraction=0.2)
    split = prepare_classification_split(root, validate=False)  # without validation it is found at load time
    assert split["train_full_size"] + len(split["validation"]) + len(split["test"]) == 10


def test_csv_without_suffixes_in_train_images_folder(tmp_path):
    """APTOS layout: train.csv (id_code, diagnosis) beside train_images/<id_code>.png."""
    from PIL import Image

    (tmp_path / "train_images").mkdir()
    with open(tmp_path / "train.csv", "w") as f:
        f.write("id_code,diagnosis\n")
        for i in range(4):
            Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "train_images" / f"a{i}f.png")
            f.write(f"a{i}f,{i % 2}\n")
    items = load_classification_datalist(tmp_path)
    assert [Path(it["image"]).name for it in items] == ["a0f.png", "a1f.png", "a2f.png", "a3f.png"]
    assert [it["label"] for it in items] == [0, 1, 0, 1]


# -------------------------------------------------------------------------------------------- folders


def test_class_folders_flat_and_named(tmp_path):
    root = make_class_folders(tmp_path / "flat")
    assert detect_classification_layout(root) == "folders"
    data = read_classification_dataset(root, num_classes=5)
    assert len(data["items"]) == 9 and sorted({it["label"] for it in data["items"]}) == [0, 1, 2]
    assert data["class_names"] == ["0", "1", "2", "3", "4"] and data["num_classes"] == 5
    named = read_classification_dataset(make_class_folders(tmp_path / "named", names=("PNEUMONIA", "NORMAL")))
    assert named["class_names"] == ["NORMAL", "PNEUMONIA"]
    assert all(it["label"] == (1 if "PNEUMONIA" in it["image"] else 0) for it in named["items"])
    with pytest.raises(DataValidationError, match="2 class folders"):
        read_classification_dataset(tmp_path / "named", num_classes=3)


def test_class_folders_with_train_and_test_parts(tmp_path):
    names = [str(k) for k in range(5)]
    root = make_class_folders(tmp_path / "aptos", names=names, per_class=4, parts=("train", "test"))
    split = prepare_classification_split(root, val_fraction=0.25, test_fraction=0.4, num_classes=5)
    assert split["layout"] == "folders" and split["given_parts"] == ["test", "train"]
    assert sorted(Path(it["image"]).parent.parent.name for it in split["test"]) == ["test"] * 20  # the given test part
    assert all("/train/" in it["image"] for it in split["train"] + split["validation"])
    assert len(split["validation"]) == 5 and split["train_full_size"] == 15  # one per class (stratified)
    assert split["class_counts"]["test"] == [4] * 5


# ------------------------------------------------------------------------------------------------ npz


def test_npz_items_are_small_references(tmp_path):
    path = make_npz(tmp_path / "tinymnist.npz")
    assert detect_classification_layout(tmp_path) == "npz" == detect_classification_layout(path)
    split = prepare_classification_split(path, output_dir=tmp_path / "out", label_fraction=0.5, seed=1)
    assert (len(split["train"]), len(split["validation"]), len(split["test"])) == (6, 4, 6)
    assert split["train_full_size"] == 12 and split["given_parts"] == ["test", "train", "validation"]
    assert split["class_counts"]["train"] == [2, 2, 2]  # stratified label subset
    ref = split["test"][2]["image"]
    assert parse_npz_reference(ref) == (str(path.resolve()), "test_images", 2)
    with np.load(path) as f:
        np.testing.assert_array_equal(load_npz_image(ref), f["test_images"][2])
        assert split["test"][2]["label"] == int(f["test_labels"][2, 0])
    on_disk = json.loads((tmp_path / "out" / "split.json").read_text())
    assert on_disk["test"] == split["test"] and (tmp_path / "out" / "split.json").stat().st_size < 5000
    assert npz_reference("x.npz", "train_images", 7).endswith("x.npz#train_images[7]")
    assert parse_npz_reference("/data/a.png") is None


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "multi.npz", train_images=np.zeros((3, 4, 4)), train_labels=np.zeros((3, 14)))
    with pytest.raises(DataValidationError, match="multi-label"):
        read_classification_dataset(tmp_path / "multi.npz")
    np.savez(tmp_path / "noimg.npz", images=np.zeros((3, 4, 4)))
    with pytest.raises(DataValidationError, match="no 'train_images'"):
        read_classification_dataset(tmp_path / "noimg.npz")
    with pytest.raises(ValueError, match="out of range"):
        load_npz_image(npz_reference(make_npz(tmp_path / "ok.npz"), "train_images", 99))


# ---------------------------------------------------------------------------------------------- layout


def test_layout_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="Cannot find dataset directory"):
        read_classification_dataset(tmp_path / "nope")
    with pytest.raises(DatasetNotFoundError, match="dataset_dir is empty"):
        read_classification_dataset("")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataValidationError, match="Cannot tell the layout"):
        read_classification_dataset(tmp_path / "empty")
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "a.csv").write_text("file,label\n")
    (tmp_path / "two" / "b.csv").write_text("file,label\n")
    with pytest.raises(DataValidationError, match=r"several CSV files.*csv="):
        read_classification_dataset(tmp_path / "two")


# ----------------------------------------------------------------------------------------------- split


@pytest.mark.parametrize("split_seed", [0, 1, 2, 3])
def test_both_eyes_of_a_patient_stay_on_one_side(fundus, tmp_path, split_seed):
    split = prepare_classification_split(fundus, tmp_path, split_seed=split_seed, validate=False)
    assert split["group_pattern"] == r"(Patient\d+)" and split["stratified"]
    train, val, test = (_patients(split[p]) for p in ("train", "validation", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert len(train | val | test) == 15
    assert split["train_full_size"] + len(split["validation"]) + len(split["test"]) == 30
    assert all(n > 0 for n in split["class_counts"]["test"])  # stratified: every grade is tested
    assert json.loads((tmp_path / "split.json").read_text())["train"] == split["train"]


def test_split_seed_fixes_the_split_and_seed_the_label_subset(fundus):
    a = prepare_classification_split(fundus, split_seed=5, seed=0, label_fraction=0.5, validate=False)
    b = prepare_classification_split(fundus, split_seed=5, seed=1, label_fraction=0.5, validate=False)
    c = prepare_classification_split(fundus, split_seed=6, seed=0, label_fraction=0.5, validate=False)
    assert a["test"] == b["test"] and a["validation"] == b["validation"]
    assert a["train"] != b["train"] and a["train_full_size"] == b["train_full_size"]
    assert a["test"] != c["test"]
    small = prepare_classification_split(fundus, split_seed=5, seed=1, label_fraction=0.25, validate=False)
    assert {it["image"] for it in small["train"]} <= {it["image"] for it in b["train"]}  # nested fractions
    assert _patients(small["train"]) == {re.search(r"Patient\d+", it["image"]).group(0) for it in small["train"]}


def test_group_pattern_auto_explicit_and_unstratified(tmp_path, fundus):
    root = make_class_folders(tmp_path / "plain", per_class=5)
    split = prepare_classification_split(root, group_pattern="auto")
    assert split["group_pattern"] is None  # no patient ids in the names: split by image
    with pytest.raises(ValueError, match="does not match the file name"):
        prepare_classification_split(root, group_pattern=r"(Patient\d+)")
    mixed = make_fundus_dataset(tmp_path / "mixed", n_patients=5, ungraded=0)
    (mixed / "images" / "c0_Patient000_L.png").rename(mixed / "images" / "c0_P000_L.png")
    (mixed / "labels.csv").write_text((mixed / "labels.csv").read_text().replace("c0_Patient000_L", "c0_P000_L"))
    with pytest.raises(ValueError, match=r"9 file names carry a patient id .* 1 do not .*c0_P000_L.png"):
        prepare_classification_split(mixed, group_pattern="auto")
    flat = prepare_classification_split(fundus, group_pattern=None, stratify=False, validate=False)
    assert flat["group_pattern"] is None and not flat["stratified"]
    assert len(flat["test"]) == 6  # round(0.2 * 30) images, no patient grouping


# ------------------------------------------------------------------------------------------- real data


@pytest.mark.realdata
@pytest.mark.skipif(not REAL, reason="MEDSSL3D_REAL_DATA is not set; point it at the shared real-data folder")
def test_real_fundus_and_pneumoniamnist_load():
    fundus = Path(REAL) / "fundus_dr_srahim"
    mnist = Path(REAL) / "pneumoniamnist"
    if not fundus.is_dir() or not mnist.is_dir():
        pytest.skip(f"{fundus} or {mnist} not found")
    split = prepare_classification_split(fundus, num_classes=5, label_column="dr_grade_0_4", validate=False)
    assert split["num_skipped"] == 7 and split["group_pattern"] == r"(Patient\d+)"
    counts = np.sum([split["class_counts"][p] for p in ("train", "validation", "test")], axis=0)
    assert counts.tolist() == [276, 99, 168, 34, 16]
    train, val, test = (_patients(split[p]) for p in ("train", "validation", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert all(n > 0 for n in split["class_counts"]["test"])
    mnist_split = prepare_classification_split(mnist, validate=False)
    sizes = (mnist_split["train_full_size"], len(mnist_split["validation"]), len(mnist_split["test"]))
    assert sizes == (4708, 524, 624)
    assert load_npz_image(mnist_split["test"][0]["image"]).shape == (28, 28)
