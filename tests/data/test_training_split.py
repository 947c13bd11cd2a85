"""segmentation_training_split: a Decathlon folder's split, or the class names of lists given directly."""

from __future__ import annotations

import inspect

import pytest

from medssl3d.data import datalist_split, prepare_segmentation_split, segmentation_training_split
from medssl3d.data import training_split as module

NAMES = ["background", "pancreas", "tumour"]


@pytest.mark.parametrize("dataset_dir", ["", None])
def test_without_a_dataset_dir_the_lists_come_from_outside(dataset_dir):
    split = segmentation_training_split(dataset_dir, NAMES, output_dir="unused", n_folds=5)
    assert split == datalist_split(NAMES) and split["source"] == "datalists" and split["train"] == []


def test_a_dataset_dir_is_split_with_every_argument_passed_on(monkeypatch):
    calls = []
    monkeypatch.setattr(module, "prepare_segmentation_split", lambda **kw: calls.append(kw) or {"train": []})
    args = dict(output_dir="OUT", seed=3, split_seed=4, fold=1, n_folds=5, label_fraction=0.1, val_fraction=0.3,
                test_fraction=0.25, group_pattern="(p\\d+)", validate=False, progress=True)
    assert segmentation_training_split("/data/Task07", NAMES, **args) == {"train": []}
    assert calls == [{"dataset_dir": "/data/Task07", **args}]
    # every argument of prepare_segmentation_split is exposed, with its default
    ours = inspect.signature(segmentation_training_split).parameters
    for name, param in inspect.signature(prepare_segmentation_split).parameters.items():
        assert name in ours and ours[name].default == param.default, name


def test_a_missing_dataset_dir_is_prepare_segmentation_splits_error(tmp_path):
    with pytest.raises(Exception, match="Cannot find dataset directory"):
        segmentation_training_split(str(tmp_path / "nope"), NAMES, validate=False)
