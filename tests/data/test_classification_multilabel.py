"""Multi-label findings: '|'-separated and 0/1-column CSVs, (N, C) MedMNIST labels, their errors, the split."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from medssl3d.data import DataValidationError
from medssl3d.data.classification import prepare_classification_split, read_classification_dataset
from medssl3d.data.pretraining import list_npz_images, prepare_pretraining_split

# NIH ChestX-ray14 style: patient p has two images (<p>_000, <p>_001); blank rows are unlabelled
NIH_FINDINGS = ["No Finding", "Effusion", "Atelectasis|Effusion", "Mass", "Atelectasis", "Effusion|Mass|Atelectasis"]
NIH_HOT = {  # finding cell -> multi-hot over the sorted names [Atelectasis, Effusion, Mass]
    "No Finding": [0, 0, 0],
    "Effusion": [0, 1, 0],
    "Atelectasis|Effusion": [1, 1, 0],
    "Mass": [0, 0, 1],
    "Atelectasis": [1, 0, 0],
    "Effusion|Mass|Atelectasis": [1, 1, 1],
}


def _png(path: Path, value: int = 0) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 6), value, np.uint8)).save(path)


def make_nih_csv(root: Path, n_patients: int = 12, blank: int = 1) -> Path:
    """``images/<8-digit patient>_<k>.png`` and ``Data_Entry.csv`` (Image Index, Finding Labels, Patient ID)."""
    lines = ["Image Index,Finding Labels,Patient ID"]
    for i in range(2 * n_patients):
        name = f"{i // 2:08d}_{i % 2:03d}.png"
        _png(root / "images" / name, i)
        lines.append(f"{name},{NIH_FINDINGS[i % len(NIH_FINDINGS)]},{i // 2}")
    for k in range(blank):
        lines.append(f"{900 + k:08d}_000.png,,{900 + k}")
    (root / "Data_Entry.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def make_columns_csv(root: Path, rows: list[list[str]], columns=("Atelectasis", "Effusion", "Mass")) -> Path:
    """CheXpert-like: ``Path`` plus one 0/1 column per finding (and a ``Sex`` column that is not a label)."""
    lines = [",".join(["Path", "Sex", *columns])]
    for i, values in enumerate(rows):
        _png(root / "images" / f"view{i}.png", i)
        lines.append(",".join([f"images/view{i}.png", "F", *values]))
    (root / "train.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def make_multilabel_npz(path: Path, sizes=(12, 4, 6), num_findings: int = 3, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in zip(("train", "val", "test"), sizes):
        arrays[f"{part}_images"] = rng.integers(0, 256, (n, 8, 8), dtype=np.uint8)
        hot = (np.arange(n)[:, None] + np.arange(num_findings)[None, :]) % 3 == 0  # every finding present
        arrays[f"{part}_labels"] = hot.astype(np.uint8)
    np.savez_compressed(path, **arrays)
    return path


# ------------------------------------------------------------------------------------- '|' CSV


def test_pipe_separated_findings_csv(tmp_path):
    root = make_nih_csv(tmp_path / "nih")
    data = read_classification_dataset(root, multi_label=True)
    assert data["multi_label"] and data["layout"] == "csv"
    columns = (data["image_column"], data["label_column"], data["label_columns"])
    assert columns == ("Image Index", "Finding Labels", None)
    assert data["class_names"] == ["Atelectasis", "Effusion", "Mass"] and data["num_classes"] == 3
    assert data["num_skipped"] == 1 and len(data["items"]) == 24  # the blank row is unlabelled
    for i, item in enumerate(data["items"]):
        assert Path(item["image"]).name == f"{i // 2:08d}_{i % 2:03d}.png"
        assert item["label"] == NIH_HOT[NIH_FINDINGS[i % len(NIH_FINDINGS)]]
    # explicit names fix the order and may list findings the CSV never names
    names = ["Mass", "Effusion", "Atelectasis", "Edema"]
    named = read_classification_dataset(root, multi_label=True, class_names=names)
    assert named["num_classes"] == 4 and named["items"][2]["label"] == [0, 1, 1, 0]  # Atelectasis|Effusion
    # no_finding="" makes "No Finding" a finding of its own
    literal = read_classification_dataset(root, multi_label=True, no_finding="")
    assert literal["class_names"] == ["Atelectasis", "Effusion", "Mass", "No Finding"]
    assert literal["items"][0]["label"] == [0, 0, 0, 1]


def test_pipe_csv_split_keeps_patients_together_and_records_multi_label(tmp_path):
    root = make_nih_csv(tmp_path / "nih", n_patients=20)
    kwargs = dict(multi_label=True, group_pattern=r"^(\d{8})_", val_fraction=0.2, test_fraction=0.2)
    split = prepare_classification_split(root, tmp_path / "out", split_seed=3, **kwargs)
    on_disk = json.loads((tmp_path / "out" / "split.json").read_text(encoding="utf-8"))
    assert on_disk["multi_label"] is True and on_disk["num_classes"] == 3 and on_disk["stratified"]
    assert on_disk["class_names"] == ["Atelectasis", "Effusion", "Mass"]
    patients = [{re.match(r"\d{8}", Path(it["image"]).name).group(0) for it in split[p]}
                for p in ("train", "validation", "test")]
    assert not (patients[0] & patients[1]) and not (patients[0] & patients[2]) and not (patients[1] & patients[2])
    for part in ("train", "validation", "test"):
        labels = np.array([it["label"] for it in split[part]]).reshape(-1, 3)
        assert split["class_counts"][part] == labels.sum(0).tolist()
        assert split["num_with_findings"][part] == int(labels.any(1).sum())
        assert split["num_with_findings"][part] > 0  # stratified on "any finding": every part has positives
    # reproducible by split_seed; label_fraction takes a nested subset of the training part
    again = prepare_classification_split(root, split_seed=3, **kwargs)
    assert again["test"] == split["test"] and again["train"] == split["train"]
    half = prepare_classification_split(root, split_seed=3, label_fraction=0.5, seed=1, **kwargs)
    quarter = prepare_classification_split(root, split_seed=3, label_fraction=0.25, seed=1, **kwargs)
    assert half["test"] == split["test"] and half["train_full_size"] == len(split["train"])
    assert {it["image"] for it in quarter["train"]} <= {it["image"] for it in half["train"]}
    assert len(quarter["train"]) < len(half["train"]) < len(split["train"])


# ------------------------------------------------------------------------------------- 0/1 columns


def test_zero_one_columns_csv(tmp_path):
    rows = [["1", "0", ""], ["0.0", "1.0", "1"], ["", "", ""], ["1", "1", "0"]]
    root = make_columns_csv(tmp_path / "cx", rows)
    data = read_classification_dataset(root, multi_label=True, label_columns=["Atelectasis", "Effusion", "Mass"])
    assert data["class_names"] == ["Atelectasis", "Effusion", "Mass"] and data["label_column"] is None
    assert data["label_columns"] == ["Atelectasis", "Effusion", "Mass"]
    assert [it["label"] for it in data["items"]] == [[1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 1, 0]]  # blank = 0
    renamed = read_classification_dataset(root, multi_label=True, label_columns="effusion, mass",  # case-insensitive
                                          class_names=["pleural effusion", "mass"])
    assert renamed["class_names"] == ["pleural effusion", "mass"] and renamed["label_columns"] == ["Effusion", "Mass"]
    assert [it["label"] for it in renamed["items"]] == [[0, 0], [1, 1], [0, 0], [1, 0]]
    split = prepare_classification_split(root, multi_label=True, label_columns=["Effusion"], val_fraction=0.25,
                                         test_fraction=0.25)
    assert split["num_classes"] == 1 and split["label_columns"] == ["Effusion"]


def test_zero_one_column_errors_name_file_line_and_column(tmp_path):
    root = make_columns_csv(tmp_path / "bad", [["1", "0", "0"], ["0", "2", "0"], ["-1", "0", "0"]])
    with pytest.raises(DataValidationError, match=r"train\.csv.*must hold 0 or 1.*line 3, column 'Effusion': '2'.*"
                                                  r"line 4, column 'Atelectasis': '-1'"):
        read_classification_dataset(root, multi_label=True, label_columns=["Atelectasis", "Effusion", "Mass"])
    good = make_columns_csv(tmp_path / "good", [["1", "0", "0"], ["0", "1", "0"]])
    with pytest.raises(ValueError, match=r"class_names has 2 names .* 3 findings"):
        read_classification_dataset(good, multi_label=True, label_columns=["Atelectasis", "Effusion", "Mass"],
                                    class_names=["a", "b"])
    with pytest.raises(DataValidationError, match=r"label column 'Edema' not found .*'Mass'\].*label_columns="):
        read_classification_dataset(good, multi_label=True, label_columns=["Edema"])
    with pytest.raises(ValueError, match="needs multi_label=True"):
        read_classification_dataset(good, label_columns=["Mass"])
    with pytest.raises(ValueError, match="not both"):
        read_classification_dataset(good, multi_label=True, label_columns=["Mass"], label_column="Sex")


def test_pipe_csv_errors(tmp_path):
    root = make_nih_csv(tmp_path / "nih", n_patients=3)
    with pytest.raises(DataValidationError, match=r"not in class_names \['Atelectasis', 'Effusion'\]: line 5: 'Mass'"):
        read_classification_dataset(root, multi_label=True, class_names=["Atelectasis", "Effusion"])
    with pytest.raises(ValueError, match="class_names includes 'No Finding'"):
        read_classification_dataset(root, multi_label=True, class_names=["No Finding", "Effusion", "Mass"])
    with pytest.raises(ValueError, match=r"num_classes=5 but .* 3 findings"):
        read_classification_dataset(root, multi_label=True, num_classes=5)
    # single-label mode on '|' cells says to pass multi_label
    with pytest.raises(DataValidationError, match=r"not integer class indices.*pass multi_label=true"):
        read_classification_dataset(root, image_column="Image Index", label_column="Finding Labels")
    text = (root / "Data_Entry.csv").read_text(encoding="utf-8").replace(",Mass,", ",No Finding|Mass,")
    (root / "Data_Entry.csv").write_text(text, encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"'No Finding' together with findings \(line 5: 'No Finding\|Mass'"):
        read_classification_dataset(root, multi_label=True)


def test_class_folders_are_single_label_only(tmp_path):
    for name in ("a", "b"):
        _png(tmp_path / "folders" / name / "x.png")
    with pytest.raises(DataValidationError, match=r"class folders, one label per image.*multi_label=false"):
        read_classification_dataset(tmp_path / "folders", multi_label=True)


# ---------------------------------------------------------------------------------------------- npz


def test_multi_hot_npz_and_its_pretraining_pool(tmp_path):
    path = make_multilabel_npz(tmp_path / "tinychestmnist.npz")
    with pytest.raises(DataValidationError, match=r"shape \(12, 3\).*multi-label.*pass multi_label=true"):
        read_classification_dataset(path)  # single-label mode
    data = read_classification_dataset(path, multi_label=True)
    assert data["class_names"] == ["finding_0", "finding_1", "finding_2"] and data["layout"] == "npz"
    with np.load(path) as f:
        assert [it["label"] for it in data["items"] if it["section"] == "test"] == f["test_labels"].tolist()
    named = read_classification_dataset(path, multi_label=True, class_names=["atelectasis", "cardiomegaly", "effusion"])
    assert named["class_names"] == ["atelectasis", "cardiomegaly", "effusion"]
    with pytest.raises(ValueError, match=r"class_names has 2 names .* 3 findings per image"):
        read_classification_dataset(path, multi_label=True, class_names=["a", "b"])
    split = prepare_classification_split(path, tmp_path / "out", multi_label="true", label_fraction=0.5)
    assert (len(split["validation"]), len(split["test"]), split["train_full_size"]) == (4, 6, 12)
    assert split["multi_label"] is True and split["num_classes"] == 3 and len(split["train"]) == 6
    # the pretraining pool takes every image, the (N, C) labels unused
    assert len(list_npz_images(path)) == 22
    pool = prepare_pretraining_split(path, tmp_path / "pre", spatial_dims=2, val_fraction=0.2)
    assert pool["num_images"] == 22


def test_npz_multi_label_errors(tmp_path):
    np.savez(tmp_path / "two.npz", train_images=np.zeros((3, 4, 4)), train_labels=np.array([[0, 2], [1, 0], [0, 0]]))
    with pytest.raises(DataValidationError, match=r"train_labels holds values \[2\]; multi-hot labels must be 0 or 1"):
        read_classification_dataset(tmp_path / "two.npz", multi_label=True)
    np.savez(tmp_path / "single.npz", train_images=np.zeros((3, 4, 4)), train_labels=np.array([0, 1, 1]))
    with pytest.raises(DataValidationError, match=r"single-label\); pass multi_label=false"):
        read_classification_dataset(tmp_path / "single.npz", multi_label=True)


def test_transforms_give_float_multi_hot_labels(tmp_path):
    from medssl3d.transforms import classification_transforms

    _png(tmp_path / "x.png", 100)
    multi = classification_transforms("validate", image_size=8, in_channels=1, multi_label=True)
    out = multi({"image": str(tmp_path / "x.png"), "label": [1, 0, 1]})
    assert out["label"].dtype == torch.float32 and out["label"].tolist() == [1.0, 0.0, 1.0]
    loss = torch.nn.BCEWithLogitsLoss()(torch.zeros(1, 3), out["label"][None])  # the target BCE needs
    assert loss.item() == pytest.approx(np.log(2))
    single = classification_transforms("validate", image_size=8, in_channels=1, multi_label="false")
    assert single({"image": str(tmp_path / "x.png"), "label": 1})["label"].dtype == torch.int64
