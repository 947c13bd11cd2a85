"""Tests of medssl3d.data.decathlon: dataset.json reading, Decathlon datalists and their validation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from medssl3d.data import (
    DataValidationError,
    class_names,
    load_decathlon,
    modality,
    read_dataset_json,
    validate_datalist,
)
from medssl3d.data.errors import DatasetNotFoundError
from tests.data._helpers import make_decathlon, write_nifti, write_sitk


def _write_json(root: Path, content) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content)
    (root / "dataset.json").write_text(text)
    return root


GOOD_LABELS = {"0": "background", "1": "organ"}

# (case id, dataset.json content or None for no file / "NODIR" for no folder, expected message regex)
JSON_ILL_CASES = [
    ("missing_dir", "NODIR", r"Cannot find dataset directory: .*missing.*pass dataset_dir="),
    ("missing_json", None, r"Cannot find dataset.json in .*missing_json"),
    ("invalid_json", '{"labels": {"0": "bg"}, "training": [', r"dataset.json is not valid JSON .*line 1"),
    ("not_object", "[1, 2]", r"must hold a JSON object"),
    ("no_labels", {"training": []}, r"dataset.json has no 'labels' key"),
    ("no_training", {"labels": GOOD_LABELS}, r"dataset.json has no 'training' key"),
    ("training_not_list", {"labels": GOOD_LABELS, "training": "x"}, r"'training' in .* must be a list"),
    ("labels_gap", {"labels": {"0": "bg", "2": "x"}, "training": []}, r"must be the integers 0\.\.1.*\['0', '2'\]"),
    ("labels_not_int", {"labels": {"0": "bg", "one": "x"}, "training": []}, r"must be the integers 0\.\.1"),
    ("labels_from_1", {"labels": {"1": "a", "2": "b"}, "training": []}, r"must be the integers 0\.\.1"),
    ("labels_empty", {"labels": {}, "training": []}, r"'labels' in .* must be a non-empty object"),
    ("labels_list", {"labels": ["bg", "x"], "training": []}, r"'labels' in .* must be a non-empty object"),
]


@pytest.mark.parametrize("case_id,content,pattern", JSON_ILL_CASES, ids=[c[0] for c in JSON_ILL_CASES])
def test_read_dataset_json_ill(tmp_path, case_id, content, pattern):
    root = tmp_path / case_id
    if content == "NODIR":
        root = tmp_path / "missing"
    elif content is None:
        root.mkdir()
    else:
        _write_json(root, content)
    with pytest.raises(DataValidationError, match=pattern):
        read_dataset_json(root)


def test_missing_folder_is_also_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_dataset_json(tmp_path / "nope")
    with pytest.raises(DatasetNotFoundError):
        load_decathlon(tmp_path / "nope")


def test_read_dataset_json_accepts_folder_or_file(tmp_path):
    root = make_decathlon(tmp_path / "ds")
    assert read_dataset_json(root)["numTraining"] == 3
    assert read_dataset_json(root / "dataset.json")["numTraining"] == 3
    assert read_dataset_json(str(root))["name"] == "tiny"


CLASS_NAME_CASES = [
    ({"0": "background", "1": "a", "2": "b"}, ["background", "a", "b"]),
    ({"2": "b", "0": "background", "1": "a"}, ["background", "a", "b"]),
    ({str(i): f"c{i}" for i in reversed(range(12))}, [f"c{i}" for i in range(12)]),  # "10" sorts after "9"
    ({"0": "background"}, ["background"]),
]


@pytest.mark.parametrize("labels,expected", CLASS_NAME_CASES)
def test_class_names(tmp_path, labels, expected):
    root = _write_json(tmp_path / "ds", {"labels": labels, "training": []})
    assert class_names(root) == expected
    assert class_names({"labels": labels}) == expected


MODALITY_CASES = [({"0": "CT"}, "CT"), ({"0": "FLAIR", "1": "T1w"}, "FLAIR"), (None, ""), ("MRI", "MRI")]


@pytest.mark.parametrize("value,expected", MODALITY_CASES)
def test_modality(tmp_path, value, expected):
    content = {"labels": GOOD_LABELS, "training": []}
    if value is not None:
        content["modality"] = value
    root = _write_json(tmp_path / "ds", content)
    assert modality(root) == expected
    assert modality(content) == expected


def test_load_decathlon_training_and_test(tmp_path):
    root = make_decathlon(tmp_path / "ds", num_cases=2, test=["./imagesTs/t_000.nii.gz", "./imagesTs/t_001.nii.gz"])
    train = load_decathlon(root)
    assert [set(d) for d in train] == [{"image", "label"}] * 2
    for d in train:
        assert os.path.isabs(d["image"]) and os.path.isfile(d["image"]) and os.path.isfile(d["label"])
        assert "/./" not in d["image"]
    test = load_decathlon(root, section="test")
    assert test == [{"image": str((root / "imagesTs" / f"t_00{i}.nii.gz").resolve())} for i in range(2)]


def test_load_decathlon_test_as_dicts_and_empty(tmp_path):
    root = make_decathlon(tmp_path / "ds", num_cases=1, test=[{"image": "./imagesTs/t.nii.gz"}])
    assert load_decathlon(root, "test")[0]["image"].endswith("imagesTs/t.nii.gz")
    root2 = make_decathlon(tmp_path / "ds2", num_cases=1, test=[])
    assert load_decathlon(root2, "test") == []


def test_load_decathlon_missing_section(tmp_path):
    root = make_decathlon(tmp_path / "ds", num_cases=1)
    with pytest.raises(DataValidationError, match=r"no 'test' section; sections present: \['training'\]"):
        load_decathlon(root, "test")


def test_load_decathlon_entry_without_image(tmp_path):
    root = _write_json(tmp_path / "ds", {"labels": GOOD_LABELS, "training": [{"label": "./l.nii.gz"}]})
    with pytest.raises(DataValidationError, match=r"entry 0 of 'training' .* has no 'image' key"):
        load_decathlon(root)


def test_validate_good_datalist(tmp_path, capsys):
    root = make_decathlon(tmp_path / "ds", num_cases=3)
    validate_datalist(load_decathlon(root), num_classes=3)
    assert capsys.readouterr() == ("", "")  # prints nothing


def test_validate_mixed_dtypes_and_integer_float_labels(tmp_path):
    """Like MSD Hippocampus: float32 and uint8 images, a float32 label holding integer values."""
    items = []
    for i, dtype in enumerate([np.float32, np.uint8, np.int16]):
        image = write_nifti(tmp_path / f"img{i}.nii.gz", np.full((5, 6, 7), 3, dtype=dtype))
        label = write_nifti(tmp_path / f"lab{i}.nii.gz", (np.arange(210).reshape(5, 6, 7) % 3).astype(np.float32))
        items.append({"image": str(image), "label": str(label)})
    validate_datalist(items, num_classes=3)


def test_validate_channel_last_4d_image(tmp_path):
    image = write_nifti(tmp_path / "img.nii.gz", np.zeros((5, 6, 7, 2), dtype=np.float32))
    label = write_nifti(tmp_path / "lab.nii.gz", np.zeros((5, 6, 7), dtype=np.uint8))
    validate_datalist([{"image": str(image), "label": str(label)}], num_classes=2)


def test_validate_nrrd_and_mha_files(tmp_path):
    image = write_sitk(tmp_path / "img.nrrd", np.zeros((7, 6, 5), dtype=np.int16))
    label = write_sitk(tmp_path / "lab.mha", np.ones((7, 6, 5), dtype=np.uint8))
    validate_datalist([{"image": str(image), "label": str(label)}], num_classes=2)
    bad = write_sitk(tmp_path / "bad.nrrd", np.full((7, 6, 5), 4, dtype=np.uint8))
    with pytest.raises(DataValidationError, match=r"label .*bad\.nrrd has values \[4\] outside 0\.\.1"):
        validate_datalist([{"image": str(image), "label": str(bad)}], num_classes=2)


def _bad_case(tmp_path: Path, kind: str) -> tuple[list, str, str]:
    """A datalist with one defect of ``kind``, the file the message must name and a message regex."""
    good_image = write_nifti(tmp_path / "img.nii.gz", np.zeros((5, 6, 7), dtype=np.float32))
    good_label = write_nifti(tmp_path / "lab.nii.gz", np.zeros((5, 6, 7), dtype=np.uint8))
    item = {"image": str(good_image), "label": str(good_label)}
    if kind == "missing_image":
        path = str(tmp_path / "nope.nii.gz")
        return [{**item, "image": path}], path, r"image file .* does not exist; fix the path"
    if kind == "missing_label":
        path = str(tmp_path / "nolabel.nii.gz")
        return [{**item, "label": path}], path, r"label file .* does not exist"
    if kind == "corrupt_image":
        path = tmp_path / "corrupt.nii.gz"
        path.write_bytes(b"\x00garbage bytes, not a nifti file\xff" * 20)
        return [{**item, "image": str(path)}], str(path), r"cannot be read .*corrupt or not an image"
    if kind == "corrupt_nrrd_label":
        path = tmp_path / "corrupt.nrrd"
        path.write_bytes(b"NRRD0004\ntype: what\n\n\x01\x02")
        return [{**item, "label": str(path)}], str(path), r"label file .* cannot be read"
    if kind == "shape_mismatch":
        path = write_nifti(tmp_path / "small_label.nii.gz", np.zeros((5, 6, 6), dtype=np.uint8))
        return [{**item, "label": str(path)}], str(path), r"spatial shape \(5, 6, 7\) but label .* has \(5, 6, 6\)"
    if kind == "out_of_range":
        values = np.zeros((5, 6, 7), dtype=np.uint8)
        values[0, 0, :3] = [3, 7, 7]
        path = write_nifti(tmp_path / "range.nii.gz", values)
        return [{**item, "label": str(path)}], str(path), r"has values \[3, 7\] outside 0\.\.2 declared in dataset.json"
    if kind == "negative":
        path = write_nifti(tmp_path / "neg.nii.gz", np.full((5, 6, 7), -1, dtype=np.int16))
        return [{**item, "label": str(path)}], str(path), r"has values \[-1\] outside 0\.\.2"
    if kind == "non_integer":
        path = write_nifti(tmp_path / "float.nii.gz", np.full((5, 6, 7), 0.5, dtype=np.float32))
        return [{**item, "label": str(path)}], str(path), r"non-integer values \[0\.5\] .*class indices"
    if kind == "nan_label":
        values = np.zeros((5, 6, 7), dtype=np.float32)
        values[1, 1, 1] = np.nan
        path = write_nifti(tmp_path / "nan.nii.gz", values)
        return [{**item, "label": str(path)}], str(path), r"non-integer values \[nan\]"
    if kind == "missing_key":
        return [{"image": str(good_image)}], "item 0", r"has no 'label' key"
    if kind == "not_a_dict":
        return [str(good_image)], "item 0", r"not a dictionary"
    raise AssertionError(kind)


ILL_KINDS = [
    "missing_image",
    "missing_label",
    "corrupt_image",
    "corrupt_nrrd_label",
    "shape_mismatch",
    "out_of_range",
    "negative",
    "non_integer",
    "nan_label",
    "missing_key",
    "not_a_dict",
]


@pytest.mark.parametrize("kind", ILL_KINDS)
def test_validate_ill(tmp_path, kind):
    items, named, pattern = _bad_case(tmp_path, kind)
    with pytest.raises(DataValidationError, match=pattern) as info:
        validate_datalist(items, num_classes=3)
    assert named in str(info.value)


def test_validate_empty_list():
    with pytest.raises(DataValidationError, match="the datalist is empty"):
        validate_datalist([], num_classes=2)


@pytest.mark.parametrize("num_classes", [0, -1, 2.5, True, "3"])
def test_validate_bad_num_classes(tmp_path, num_classes):
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        validate_datalist([{"image": "x", "label": "y"}], num_classes=num_classes)


def test_validate_reports_all_problems_at_once(tmp_path):
    root = make_decathlon(tmp_path / "ds", num_cases=4)
    items = load_decathlon(root)
    os.remove(items[0]["image"])
    write_nifti(Path(items[2]["label"]), np.full((6, 5, 4), 9, dtype=np.uint8))
    Path(items[3]["image"]).write_bytes(b"not an image")
    with pytest.raises(DataValidationError) as info:
        validate_datalist(items, num_classes=3)
    message = str(info.value)
    assert message.startswith("3 problem(s) in a datalist of 4 item(s):")
    for path in (items[0]["image"], items[2]["label"], items[3]["image"]):
        assert path in message
    assert items[1]["image"] not in message


def test_validate_skips_label_values_when_asked(tmp_path):
    image = write_nifti(tmp_path / "img.nii.gz", np.zeros((5, 6, 7), dtype=np.float32))
    label = write_nifti(tmp_path / "lab.nii.gz", np.full((5, 6, 7), 9, dtype=np.uint8))
    validate_datalist([{"image": str(image), "label": str(label)}], num_classes=2, check_label_values=False)
    validate_datalist([{"image": str(image)}], num_classes=2, label_key=None)


def test_validate_with_explicit_reader(tmp_path):
    from medssl3d.data import SimpleITKReader

    image = write_nifti(tmp_path / "img.nii.gz", np.zeros((5, 6, 7), dtype=np.float32))
    label = write_nifti(tmp_path / "lab.nii.gz", np.ones((5, 6, 7), dtype=np.uint8))
    validate_datalist([{"image": str(image), "label": str(label)}], num_classes=2, reader=SimpleITKReader())


def test_empty_dataset_dir_says_what_to_pass():
    from medssl3d.data import DatasetNotFoundError, read_dataset_json

    with pytest.raises(DatasetNotFoundError, match="dataset_dir is empty; pass the folder containing dataset.json"):
        read_dataset_json("")
