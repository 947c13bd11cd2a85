"""Tests of ``split_seed`` in medssl3d.data.prepare_segmentation_split: fixed test set, seeded labelled subsets."""

from __future__ import annotations

import json

import pytest

from medssl3d.data import prepare_segmentation_split
from tests.data._helpers import make_decathlon


@pytest.fixture(scope="module")
def decathlon(tmp_path_factory):
    return make_decathlon(tmp_path_factory.mktemp("dec") / "Task00", num_cases=30)


def _names(part) -> set[str]:
    return {d["image"] for d in part}


def test_fixed_split_seed_keeps_validation_and_test(decathlon):
    splits = [
        prepare_segmentation_split(decathlon, seed=s, split_seed=3, label_fraction=0.25, validate=False)
        for s in range(4)
    ]
    for split in splits[1:]:
        assert _names(split["test"]) == _names(splits[0]["test"])
        assert _names(split["validation"]) == _names(splits[0]["validation"])
    assert len(splits[0]["test"]) == 6 and len(splits[0]["validation"]) == 6
    # the labelled subsets (5 of the 18 training cases) come from the same training part but differ by seed
    full_train = _names(prepare_segmentation_split(decathlon, split_seed=3, validate=False)["train"])
    subsets = [_names(split["train"]) for split in splits]
    assert all(len(s) == 5 and s <= full_train for s in subsets)
    assert len({frozenset(s) for s in subsets}) == 4


def test_split_seed_changes_the_test_set(decathlon):
    tests = {
        frozenset(_names(prepare_segmentation_split(decathlon, split_seed=s, validate=False)["test"])) for s in range(4)
    }
    assert len(tests) == 4


def test_split_seed_none_is_the_old_behaviour(decathlon):
    """Without split_seed the split follows seed, as before split_seed existed."""
    for seed in (0, 5):
        old = prepare_segmentation_split(decathlon, seed=seed, label_fraction=0.5, validate=False)
        new = prepare_segmentation_split(decathlon, seed=seed, split_seed=seed, label_fraction=0.5, validate=False)
        assert old == new and old["split_seed"] == seed and old["seed"] == seed
    assert _names(prepare_segmentation_split(decathlon, seed=5, validate=False)["test"]) != _names(
        prepare_segmentation_split(decathlon, seed=5, split_seed=0, validate=False)["test"]
    )


def test_nested_subsets_per_seed_with_fixed_split(decathlon):
    for seed in (1, 2):
        trains = [
            _names(
                prepare_segmentation_split(decathlon, seed=seed, split_seed=0, label_fraction=f, validate=False)[
                    "train"
                ]
            )
            for f in (0.1, 0.25, 0.5, 1.0)
        ]
        assert [len(t) for t in trains] == [2, 5, 9, 18]
        assert all(small < big for small, big in zip(trains, trains[1:], strict=False))


def test_split_json_records_both_seeds(decathlon, tmp_path):
    result = prepare_segmentation_split(decathlon, output_dir=tmp_path, seed=2, split_seed=7, validate=False)
    on_disk = json.loads((tmp_path / "split.json").read_text())
    assert on_disk == result
    assert (on_disk["seed"], on_disk["split_seed"]) == (2, 7)


@pytest.mark.parametrize("split_seed", [-1, 1.5, True, "0"])
def test_bad_split_seed(decathlon, split_seed):
    with pytest.raises(ValueError, match=r"split_seed must be a non-negative integer"):
        prepare_segmentation_split(decathlon, split_seed=split_seed, validate=False)
