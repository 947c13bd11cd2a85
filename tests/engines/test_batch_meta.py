"""image_meta_dicts: the metadata MetricsSaver names each evaluated case by."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from medssl3d.engines import image_meta_dicts


def _item(name: str) -> dict:
    return {"image": MetaTensor(torch.zeros(1, 2, 2), meta={"filename_or_obj": name}), "label": torch.zeros(1)}


def test_one_meta_dict_per_item_in_batch_order():
    metas = image_meta_dicts([_item("a.nii.gz"), _item("b.nii.gz")])
    assert [m["filename_or_obj"] for m in metas] == ["a.nii.gz", "b.nii.gz"]
    assert image_meta_dicts([{"label": _item("c.nii.gz")["image"]}], key="label")[0]["filename_or_obj"] == "c.nii.gz"
    assert image_meta_dicts([]) == []


def test_a_batch_without_metadata_is_refused_naming_the_item():
    with pytest.raises(ValueError, match="batch item 1 has no 'image' entry"):
        image_meta_dicts([_item("a"), {"label": torch.zeros(1)}])
    with pytest.raises(ValueError, match="batch item 0: 'image' is a Tensor, not a MetaTensor"):
        image_meta_dicts([{"image": torch.zeros(1)}])
    with pytest.raises(ValueError, match="is the evaluator's batch decollated"):
        image_meta_dicts(["not a dict"])


def test_metricssaver_takes_it_as_batch_transform_from_a_config():
    from monai.bundle import ConfigParser

    parser = ConfigParser({"saver": {"_target_": "MetricsSaver", "save_dir": "unused", "metric_details": ["dice"],
                                     "batch_transform": {"_target_": "medssl3d.engines.image_meta_dicts",
                                                         "_mode_": "callable"}}})
    saver = parser.get_parsed_content("saver")
    assert saver.batch_transform is image_meta_dicts
