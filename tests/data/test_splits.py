"""Tests of medssl3d.data.splits: seeded splits, k-fold, grouping, nested label fractions, split files."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medssl3d.data import (
    DataValidationError,
    label_fraction_subset,
    prepare_segmentation_split,
    prepare_unlabelled_pool,
    split_dataset,
    write_split_json,
)
from medssl3d.data.split_files import load_split_json, split_part
from tests.data._helpers import make_decathlon, write_nifti

ROOT = Path(__file__).resolve().parents[2]


def _items(n: int) -> list[dict]:
    return [{"image": f"/data/imagesTr/case_{i:03d}.nii.gz", "label": f"/data/labelsTr/case_{i:03d}.nii.gz"} for i in range(n)]


def _eye_items(n_patients: int, missing_right: tuple[int, ...] = ()) -> list[dict]:
    """Fundus-like items: Patient###_L and Patient###_R."""
    items = []
    for p in range(n_patients):
        for eye in "LR":
            if eye == "R" and p in missing_right:
                continue
            items.append({"image": f"/fundus/Patient{p:03d}_{eye}.png", "grade": p % 5})
    return items


def _names(part) -> list[str]:
    return [d["image"] for d in part]


def _patient(path: str) -> str:
    return re.search(r"Patient\d+", path).group(0)


# (kwargs, number of items, expected sizes (train, validation, test))
SIZE_CASES = [
    ({}, 10, (6, 2, 2)),
    ({"val_fraction": 0.1, "test_fraction": 0.3}, 20, (12, 2, 6)),
    ({"val_fraction": 0.0, "test_fraction": 0.0}, 5, (5, 0, 0)),
    ({"val_fraction": 0.1, "test_fraction": 0.1}, 3, (1, 1, 1)),  # small fractions still give 1 each
    ({"val_fraction": 0.3, "test_fraction": 0.3}, 2, (1, 0, 1)),  # training keeps at least one
    ({"val_fraction": 0.4, "test_fraction": 0.4}, 1, (1, 0, 0)),
    ({"n_folds": 5, "fold": 0, "test_fraction": 0.0}, 10, (8, 2, 0)),
    ({"n_folds": 4, "fold": 3, "test_fraction": 0.2}, 10, (6, 2, 2)),
    ({"n_folds": 0, "fold": 0}, 10, (6, 2, 2)),  # n_folds=0 means no k-fold
]


@pytest.mark.parametrize("kwargs,n,sizes", SIZE_CASES)
def test_sizes_disjoint_and_complete(kwargs, n, sizes):
    items = _items(n)
    parts = split_dataset(items, seed=3, **kwargs)
    assert (len(parts["train"]), len(parts["validation"]), len(parts["test"])) == sizes
    names = [_names(parts[k]) for k in ("train", "validation", "test")]
    assert sorted(sum(names, [])) == sorted(_names(items))  # coverage, no duplicates
    for part in names:  # each part keeps the input order
        assert part == sorted(part)


@pytest.mark.parametrize("kwargs", [{}, {"n_folds": 3, "fold": 1}, {"group_pattern": r"case_\d\d(\d)"}])
def test_deterministic_and_order_invariant(kwargs):
    items = _items(30)
    a = split_dataset(items, seed=7, **kwargs)
    assert a == split_dataset(items, seed=7, **kwargs)
    shuffled = [items[i] for i in np.random.default_rng(0).permutation(len(items))]
    b = split_dataset(shuffled, seed=7, **kwargs)
    assert {k: sorted(_names(v)) for k, v in a.items()} == {k: sorted(_names(v)) for k, v in b.items()}
    c = split_dataset(items, seed=8, **kwargs)
    assert c != a


def test_plain_paths_work():
    parts = split_dataset([f"img_{i}.nii.gz" for i in range(10)], seed=0)
    assert sum(len(v) for v in parts.values()) == 10


@pytest.mark.parametrize("n_folds", [2, 3, 5])
def test_kfold_coverage_and_fixed_test(n_folds):
    items = _items(23)
    splits = [split_dataset(items, seed=1, n_folds=n_folds, fold=k) for k in range(n_folds)]
    test_sets = {tuple(_names(s["test"])) for s in splits}
    assert len(test_sets) == 1  # the test set does not depend on the fold
    assert split_dataset(items, seed=1)["test"] == splits[0]["test"]  # nor on k-fold vs plain split
    non_test = sorted(set(_names(items)) - set(_names(splits[0]["test"])))
    seen = sum((_names(s["validation"]) for s in splits), [])
    assert sorted(seen) == non_test  # every non-test item is validation in exactly one fold
    for s in splits:
        assert sorted(_names(s["train"]) + _names(s["validation"])) == non_test
    sizes = [len(s["validation"]) for s in splits]
    assert max(sizes) - min(sizes) <= 1


GROUP_CASES = [
    {},
    {"val_fraction": 0.3, "test_fraction": 0.3},
    {"n_folds": 3, "fold": 0},
    {"n_folds": 3, "fold": 2},
    {"n_folds": 5, "fold": 4, "test_fraction": 0.1},
]


@pytest.mark.parametrize("kwargs", GROUP_CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_groups_never_split(kwargs, seed):
    items = _eye_items(25, missing_right=(3, 7, 11))
    parts = split_dataset(items, seed=seed, group_pattern=r"(Patient\d+)", **kwargs)
    owners: dict[str, str] = {}
    for name, part in parts.items():
        for path in _names(part):
            assert owners.setdefault(_patient(path), name) == name
    assert sum(len(v) for v in parts.values()) == len(items)


def test_group_pattern_without_capture_group_uses_match():
    items = _eye_items(10)
    a = split_dataset(items, seed=0, group_pattern=r"Patient\d+")
    b = split_dataset(items, seed=0, group_pattern=r"(Patient\d+)")
    assert a == b


def test_kfold_folds_cover_groups():
    items = _eye_items(12)
    folds = [split_dataset(items, seed=0, n_folds=4, fold=k, group_pattern=r"(Patient\d+)") for k in range(4)]
    validation = sum((_names(f["validation"]) for f in folds), [])
    assert len(validation) == len(set(validation))
    assert all(len({_patient(p) for p in _names(f["validation"])} & {_patient(p) for p in _names(f["train"])}) == 0 for f in folds)


SPLIT_ILL_CASES = [
    ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\)"),
    ({"test_fraction": -0.1}, r"test_fraction must be in \[0, 1\)"),
    ({"val_fraction": 0.6, "test_fraction": 0.5}, r"val_fraction \+ test_fraction must be < 1"),
    ({"val_fraction": "0.2"}, r"val_fraction must be a number"),
    ({"fold": 3}, r"fold=3 needs k-fold cross-validation; pass n_folds="),
    ({"n_folds": 5, "fold": 5}, r"fold must be in 0\.\.4 for n_folds=5"),
    ({"n_folds": 5, "fold": -1}, r"fold must be in 0\.\.4"),
    ({"n_folds": 1}, r"n_folds must be None/0 \(no k-fold\) or an integer >= 2"),
    ({"n_folds": 20}, r"n_folds=20 needs at least 20 groups outside the test set"),
    ({"seed": -1}, r"seed must be a non-negative integer"),
    ({"seed": 1.5}, r"seed must be a non-negative integer"),
    ({"group_pattern": r"Patient\d+"}, r"does not match the file name of /data/imagesTr/case_000\.nii\.gz"),
    ({"group_pattern": "("}, r"not a valid regular expression"),
    ({"key": "mask"}, r"item 0 has no 'mask' key"),
]


@pytest.mark.parametrize("kwargs,pattern", SPLIT_ILL_CASES)
def test_split_ill(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        split_dataset(_items(10), **kwargs)


def test_split_ill_names_the_unmatched_file():
    items = _eye_items(3) + [{"image": "/fundus/scan_extra.png"}]
    with pytest.raises(ValueError, match=r"scan_extra\.png"):
        split_dataset(items, group_pattern=r"(Patient\d+)")


def test_split_empty():
    with pytest.raises(ValueError, match="items is empty"):
        split_dataset([])


FRACTIONS = [0.05, 0.1, 0.25, 0.5, 1.0]


@pytest.mark.parametrize("n", [1, 7, 40, 103])
@pytest.mark.parametrize("seed", [0, 5])
def test_label_fractions_nested(n, seed):
    items = _items(n)
    subsets = [label_fraction_subset(items, f, seed=seed) for f in FRACTIONS]
    for f, subset in zip(FRACTIONS, subsets):
        assert len(subset) == max(1, math.ceil(f * n))
        assert _names(subset) == sorted(_names(subset))  # input order kept
    for small, big in zip(subsets, subsets[1:]):
        assert set(_names(small)) <= set(_names(big))
    assert subsets[-1] == items


def test_label_fraction_exact_ceil_no_float_error():
    assert len(label_fraction_subset(_items(50), 0.1)) == 5  # 0.1 * 50 is 5.000000000000001 in floats
    assert len(label_fraction_subset(_items(10), 0.3)) == 3


def test_label_fraction_deterministic_and_seeded():
    items = _items(40)
    assert label_fraction_subset(items, 0.25, seed=1) == label_fraction_subset(items, 0.25, seed=1)
    assert label_fraction_subset(items, 0.25, seed=1) != label_fraction_subset(items, 0.25, seed=2)


def test_label_fraction_grouped_nested_whole_groups():
    items = _eye_items(30, missing_right=(1, 2, 3))
    subsets = [label_fraction_subset(items, f, seed=4, group_pattern=r"(Patient\d+)") for f in FRACTIONS]
    patients_all = {}
    for item in items:
        patients_all.setdefault(_patient(item["image"]), []).append(item["image"])
    for f, subset in zip(FRACTIONS, subsets):
        assert len(subset) >= math.ceil(f * len(items))
        chosen = {_patient(p) for p in _names(subset)}
        assert sorted(_names(subset)) == sorted(sum((patients_all[p] for p in chosen), []))  # whole patients
    for small, big in zip(subsets, subsets[1:]):
        assert set(_names(small)) <= set(_names(big))


FRACTION_ILL_CASES = [
    (0, r"fraction must be in \(0, 1\]"),
    (-0.5, r"fraction must be in \(0, 1\]"),
    (1.5, r"fraction must be in \(0, 1\], got 1\.5; for 1\.5 % pass 0\.015"),
    (10, r"for 10 % pass 0\.1"),
    (float("nan"), r"fraction must be a number"),
    (None, r"fraction must be a number"),
]


@pytest.mark.parametrize("fraction,pattern", FRACTION_ILL_CASES)
def test_label_fraction_ill(fraction, pattern):
    with pytest.raises(ValueError, match=pattern):
        label_fraction_subset(_items(10), fraction)


def test_label_fraction_empty():
    with pytest.raises(ValueError, match="train_items is empty"):
        label_fraction_subset([], 0.5)


def test_write_split_json_atomic(tmp_path):
    split = {"train": [{"image": Path("/a.nii.gz")}], "validation": [], "test": [], "seed": np.int64(3)}
    path = write_split_json(split, tmp_path / "deep" / "dir" / "split.json")
    assert path == tmp_path / "deep" / "dir" / "split.json"
    assert json.loads(path.read_text()) == {"train": [{"image": "/a.nii.gz"}], "validation": [], "test": [], "seed": 3}
    write_split_json({"train": [], "validation": [], "test": []}, path)  # replaces
    assert json.loads(path.read_text())["train"] == []
    assert sorted(os.listdir(path.parent)) == ["split.json"]  # no temporary files left


def test_write_split_json_failure_leaves_old_file(tmp_path):
    path = write_split_json({"train": [1]}, tmp_path / "split.json")
    with pytest.raises(TypeError):
        write_split_json({"train": [object()]}, path)
    assert json.loads(path.read_text()) == {"train": [1]}
    assert sorted(os.listdir(tmp_path)) == ["split.json"]


@pytest.fixture(scope="module")
def tiny_decathlon(tmp_path_factory):
    return make_decathlon(tmp_path_factory.mktemp("dec") / "Task00", num_cases=10, test=["./imagesTs/t0.nii.gz"])


# label_fraction and n_folds as they arrive from JSON bundle configs
PREPARE_CASES = [
    ({"label_fraction": 1}, (6, 2, 2)),
    ({"label_fraction": 1.0, "n_folds": 0}, (6, 2, 2)),
    ({"label_fraction": 0.5, "n_folds": None}, (3, 2, 2)),
    ({"label_fraction": 0.1}, (1, 2, 2)),
    ({"n_folds": 4, "fold": 1}, (6, 2, 2)),
    ({"test_fraction": 0.0, "val_fraction": 0.3, "seed": 9}, (7, 3, 0)),
]


@pytest.mark.parametrize("kwargs,sizes", PREPARE_CASES)
def test_prepare_segmentation_split(tiny_decathlon, tmp_path, kwargs, sizes):
    result = prepare_segmentation_split(tiny_decathlon, output_dir=tmp_path / "out", **kwargs)
    assert (len(result["train"]), len(result["validation"]), len(result["test"])) == sizes
    on_disk = json.loads((tmp_path / "out" / "split.json").read_text())
    assert on_disk == result
    assert result["class_names"] == ["class0", "class1", "class2"]
    assert result["train_full_size"] == (6 if kwargs.get("test_fraction", 0.2) else 7)
    assert result["label_fraction"] == float(kwargs.get("label_fraction", 1.0))
    assert result["n_folds"] == (kwargs.get("n_folds") or None)
    assert result["seed"] == kwargs.get("seed", 0) and result["fold"] == kwargs.get("fold", 0)
    assert result["dataset_dir"] == os.path.abspath(tiny_decathlon)
    train, val, test = (set(_names(result[k])) for k in ("train", "validation", "test"))
    assert not (train & val or train & test or val & test)
    assert all(os.path.isfile(d["label"]) for d in result["train"])


def test_prepare_without_output_dir_writes_nothing(tiny_decathlon, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = prepare_segmentation_split(str(tiny_decathlon), validate=False)
    assert len(result["train"]) == 6 and os.listdir(tmp_path) == []


def test_prepare_label_fraction_subsets_are_nested(tiny_decathlon):
    trains = [set(_names(prepare_segmentation_split(tiny_decathlon, label_fraction=f)["train"])) for f in FRACTIONS]
    for small, big in zip(trains, trains[1:]):
        assert small <= big


def test_prepare_validates_files(tmp_path):
    root = make_decathlon(tmp_path / "ds", num_cases=5)
    write_nifti(root / "labelsTr" / "case_002.nii.gz", np.full((6, 5, 4), 5, dtype=np.uint8))
    with pytest.raises(DataValidationError, match=r"labelsTr/case_002\.nii\.gz has values \[5\] outside 0\.\.2"):
        prepare_segmentation_split(root, output_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "split.json").exists()
    prepare_segmentation_split(root, validate=False)  # opt-out


@pytest.mark.parametrize("kwargs,pattern", [({"label_fraction": 0}, "fraction must be in"), ({"fold": 2}, "needs k-fold")])
def test_prepare_ill_arguments(tiny_decathlon, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        prepare_segmentation_split(tiny_decathlon, **kwargs)


def test_load_split_json_and_split_part(tiny_decathlon, tmp_path):
    result = prepare_segmentation_split(tiny_decathlon, output_dir=tmp_path, validate=False)
    split = load_split_json(tmp_path / "split.json")
    assert split == result
    assert split_part(split, "test") == result["test"]
    assert split_part(split, "val") == result["validation"]
    with pytest.raises(ValueError, match=r"unknown split part 'holdout'"):
        split_part(split, "holdout")
    with pytest.raises(ValueError, match=r"split part 'test' is empty"):
        split_part({**split, "test": []}, "test")
    with pytest.raises(FileNotFoundError, match="run training first"):
        load_split_json(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text('{"train": []}')
    with pytest.raises(ValueError, match=r"no \['validation', 'test'\] list"):
        load_split_json(tmp_path / "bad.json")


def test_prepare_unlabelled_pool(tiny_decathlon, tmp_path):
    pool = prepare_unlabelled_pool(tiny_decathlon)
    assert len(pool) == 11 and all(set(d) == {"image"} for d in pool)
    assert pool[-1]["image"].endswith("imagesTs/t0.nii.gz")
    assert len(prepare_unlabelled_pool(tiny_decathlon, include_test=False)) == 10
    extra = tmp_path / "extra"
    write_nifti(extra / "u1.nii.gz", np.zeros((3, 3, 3), dtype=np.int16))
    write_nifti(extra / "u0.nii.gz", np.zeros((3, 3, 3), dtype=np.int16))
    pool = prepare_unlabelled_pool(tiny_decathlon, extra_folders=[extra, tiny_decathlon / "imagesTs"])
    assert len(pool) == 13  # the test image is not listed twice
    assert [os.path.basename(d["image"]) for d in pool[-2:]] == ["u0.nii.gz", "u1.nii.gz"]
    assert len(prepare_unlabelled_pool(extra_folders=str(extra))) == 2
    with pytest.raises(ValueError, match="no images to pool"):
        prepare_unlabelled_pool()


def test_splits_module_does_not_import_torch():
    code = "import sys, medssl3d.data.splits, medssl3d.data.synthetic; assert 'torch' not in sys.modules, 'torch'"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_empty_group_pattern_means_no_grouping():
    items = _items(12)
    assert split_dataset(items, seed=2, group_pattern="") == split_dataset(items, seed=2, group_pattern=None)


def test_split_json_is_world_readable(tmp_path):
    path = write_split_json({"train": []}, tmp_path / "split.json")
    assert path.stat().st_mode & 0o644 == 0o644


# ---------------------------------------------------------------- lists given directly (MONAI Label)


def _datastore_lists(tmp_path, label_value=1):
    """A MONAI Label datastore's lists: images at the top, labels under labels/final (absolute paths)."""
    items = []
    for i in range(3):
        image = write_nifti(tmp_path / f"img{i}.nii.gz", np.zeros((6, 5, 4), np.float32))
        label = np.zeros((6, 5, 4), np.uint8)
        label[2:4, 2:4, 1:3] = label_value if i == 2 else 1
        items.append({"image": str(image), "label": str(write_nifti(tmp_path / "labels" / "final" / image.name, label))})
    return items[:2], items[2:]


def test_datalist_split_has_the_split_keys_and_no_cases():
    from medssl3d.data import datalist_split

    split = datalist_split(["background", "pancreas", "tumour"])
    assert (split["train"], split["validation"], split["test"]) == ([], [], [])
    assert split["class_names"] == ["background", "pancreas", "tumour"] and split["num_classes"] == 3
    assert split["dataset_dir"] == "" and split["source"] == "datalists"
    for bad in (["background"], "background", []):
        with pytest.raises(ValueError, match="at least one class"):
            datalist_split(bad)


def test_check_training_datalists_records_lists_given_directly(tmp_path):
    from medssl3d.data import check_training_datalists

    train, validation = _datastore_lists(tmp_path)
    counts = check_training_datalists(train, validation, ["bg", "a", "b"], output_dir=tmp_path / "out")
    assert counts == {"train": 2, "validation": 1}
    split = load_split_json(tmp_path / "out" / "split.json")  # what evaluate.json and users read
    assert split["train"] == train and split["validation"] == validation and split["test"] == []
    assert split["class_names"] == ["bg", "a", "b"] and split["source"] == "datalists"
    # no validation part (MONAI Label's val_split=0): allowed, training runs without it
    assert check_training_datalists(train, [], ["bg", "a"], output_dir=None) == {"train": 2, "validation": 0}


def test_check_training_datalists_names_bad_files_before_training(tmp_path):
    from medssl3d.data import check_training_datalists

    train, validation = _datastore_lists(tmp_path, label_value=7)
    train = train + [{"image": str(tmp_path / "gone.nii.gz"), "label": train[0]["label"]}]
    with pytest.raises(DataValidationError) as e:
        check_training_datalists(train, validation, ["bg", "a", "b"], output_dir=tmp_path / "out")
    message = str(e.value)
    assert "gone.nii.gz does not exist" in message
    assert re.search(r"img2\.nii\.gz.*7", message), message  # the label value outside 0..2, by file
    assert not (tmp_path / "out" / "split.json").exists()
    # validate=False skips the file checks (validate_data=false in the bundle)
    check_training_datalists(train, validation, ["bg", "a", "b"], validate=False)


def test_check_training_datalists_without_cases_says_what_to_pass(tmp_path):
    from medssl3d.data import check_training_datalists

    for train in ([], None):
        with pytest.raises(DataValidationError, match=r"no training cases: pass dataset_dir .* train#dataset#data"):
            check_training_datalists(train, [], ["bg", "a"])


def test_check_training_datalists_trusts_a_decathlon_split(tmp_path):
    """Lists from prepare_segmentation_split were checked there; nothing is loaded or written again."""
    from medssl3d.data import check_training_datalists

    missing = [{"image": str(tmp_path / "not_loaded.nii.gz"), "label": str(tmp_path / "x.nii.gz")}]
    counts = check_training_datalists(missing, [], ["bg", "a"], dataset_dir=str(tmp_path), output_dir=tmp_path)
    assert counts == {"train": 1, "validation": 0} and not (tmp_path / "split.json").exists()
