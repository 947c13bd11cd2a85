"""The bundle JSON holds wiring only, and the blocks the bundles share on purpose cannot drift apart.

1. No ``$`` expression in ``bundles/**/*.json`` is longer than :data:`MAX_EXPRESSION` characters. A longer
   one is logic: a call with many arguments becomes a ``_target_`` dictionary (keyword arguments, each a
   ``@reference`` or a short value), and a decision (``x if @flag else y``, a choice of ``_target_``, a
   loop, a lambda) becomes a package function that the config names (e.g.
   ``medssl3d.losses.classification_loss``, ``medssl3d.optimizers.encoder_head_param_groups``).

2. Configs that several bundles share are identical except for the keys listed in :data:`SHARED`, the
   settings each bundle sets for its own data (dataset defaults, encoder, preprocessing, hyper-parameter
   defaults). Keys are compared as MONAI ids (``train#handlers#0#epochs``); a key one bundle lacks counts as
   different. Which files are shared, and why:

   - ``pretrain_base.json`` (all three bundles): the pretraining engine, its handlers, checkpoints and
     held-out metrics. Per bundle: the pool's defaults, the encoder and the preprocessing (3D: CT intensity,
     spacing, HU window; 2D: image size, backbone, channels);
   - every ``pretrain_<task>.json`` present in more than one bundle (a new one must be added here): the task,
     its optimiser and schedule. Per bundle: the task's hyper-parameter defaults (sizes, batch, backbone,
     accumulation, CLAHE, jigsaw stages) and, for the labelled triplet task, the dataset's classes;
   - the 2D classification configs of ``fundus_dr_ssl`` and ``chest_xray_ssl`` (``train.json``,
     ``evaluate.json``, ``inference.json``): the fine-tuning, evaluation and inference engines. Per bundle:
     dataset defaults and hyper-parameters, the key metric (QWK for DR grades, ROC-AUC for chest X-rays) and
     the chest bundle's multi-label mode (``multi_label``, its loss and metric factories, ``num_outputs``).

   The segmentation bundle's ``train.json``/``evaluate.json``/``inference.json`` have no counterpart and are
   not compared. A listed key that no longer differs anywhere is reported too, so the lists stay exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.bundles.conftest import BUNDLES

MAX_EXPRESSION = 120

ALL = ("chest_xray_ssl", "fundus_dr_ssl", "pancreas_ct_ssl")
TWO_D = ("chest_xray_ssl", "fundus_dr_ssl")

# config file -> (bundles that share it, keys (MONAI ids; a key covers the ids below it) allowed to differ)
SHARED: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "pretrain_base.json": (ALL, frozenset({
        # the pool's defaults
        "group_pattern", "batch_size",
        # preprocessing: 3D CT intensity presets and spacing, 2D resizing
        "modality", "spacing", "hu_window", "resize", "intensity",
        "preprocessing#intensity", "preprocessing#spacing", "preprocessing#hu_window",
        # the encoder: a 3D UNet encoder or a 2D backbone
        "spatial_dims", "in_channels", "base_filters", "levels", "image_size", "backbone", "encoder",
    })),
    "pretrain_simclr.json": (ALL, frozenset({"input_size", "backbone", "batch_size"})),
    "pretrain_sicova.json": (ALL, frozenset({
        "input_size", "backbone", "epochs", "batch_size", "clahe", "jigsaw_grid_sizes", "accumulation_steps",
    })),
    "pretrain_triplet.json": (TWO_D, frozenset({"num_classes", "class_names"})),
    "pretrain_cpc.json": (("fundus_dr_ssl", "pancreas_ct_ssl"), frozenset({"pretext_patch_size", "grid_size"})),
    "pretrain_exemplar.json": (("fundus_dr_ssl", "pancreas_ct_ssl"), frozenset({"input_size"})),
    "pretrain_jigsaw.json": (("fundus_dr_ssl", "pancreas_ct_ssl"), frozenset({"pretext_patch_size", "jitter"})),
    "pretrain_rotation.json": (("fundus_dr_ssl", "pancreas_ct_ssl"), frozenset({"input_size"})),
    "pretrain_rpl.json": (("fundus_dr_ssl", "pancreas_ct_ssl"), frozenset({"pretext_patch_size", "jitter", "gap"})),
    "train.json": (TWO_D, frozenset({
        # dataset defaults and hyper-parameters
        "class_names", "num_classes", "group_pattern", "default_architecture", "head", "hidden", "image_size",
        "epochs", "batch_size", "learning_rate", "freeze_encoder_epochs", "encoder_lr_factor",
        "network_def#hidden", "validate#best_model_saver#extra#hidden",
        # the key metric: QWK (DR grades) or ROC-AUC (chest X-rays)
        "validate#key_metric", "validate#best_model_saver#metric_name",
        # chest_xray_ssl's multi-label mode
        "multi_label", "multi", "finding_names", "label_columns", "no_finding", "num_outputs", "loss",
        "split#num_classes", "split#class_names", "split#multi_label", "split#label_columns", "split#no_finding",
        "network_def#num_classes", "train#preprocessing#multi_label", "validate#preprocessing#multi_label",
        "validate#postprocessing", "validate#additional_metrics#val_accuracy",
        "validate#best_model_saver#extra#num_classes", "validate#best_model_saver#extra#multi_label",
    })),
    "evaluate.json": (TWO_D, frozenset({
        # chest_xray_ssl's multi-label mode (from split.json) and its report
        "multi_label", "validate#handlers#1#multi_label", "validate#handlers#1#extra#multi_label",
        "validate#handlers#1#extra#head",
    })),
    "inference.json": (TWO_D, frozenset({"batch_size", "default_network"})),
}


def long_expressions(config: Any, limit: int = MAX_EXPRESSION, path: str = "") -> list[tuple[str, int]]:
    """``(MONAI id, length)`` of every ``$`` expression in ``config`` longer than ``limit`` characters."""
    found: list[tuple[str, int]] = []
    if isinstance(config, Mapping):
        items: Iterable[tuple[Any, Any]] = config.items()
    elif isinstance(config, list):
        items = enumerate(config)
    else:
        if isinstance(config, str) and config.startswith("$") and len(config) > limit:
            found.append((path, len(config)))
        return found
    for key, value in items:
        found += long_expressions(value, limit, f"{path}#{key}" if path else str(key))
    return found


def flatten(config: Any, path: str = "") -> dict[str, Any]:
    """``{MONAI id: value}`` of every leaf of ``config``; a list of plain values is one leaf."""
    if isinstance(config, Mapping):
        children: Iterable[tuple[Any, Any]] = config.items()
    elif isinstance(config, list) and any(isinstance(v, (Mapping, list)) for v in config):
        children = enumerate(config)
    else:
        return {path: config}
    out: dict[str, Any] = {}
    for key, value in children:
        out.update(flatten(value, f"{path}#{key}" if path else str(key)))
    return out


MISSING = "<missing>"


def _allowed(key: str, allowed: Iterable[str]) -> bool:
    return any(key == a or key.startswith(a + "#") for a in allowed)


def drift(name: str, configs: Mapping[str, Any], allowed: Iterable[str]) -> list[str]:
    """What keeps ``configs`` (bundle -> the parsed ``name``) from being one shared block: each key that
    differs between bundles and is not ``allowed``, and each ``allowed`` key that differs nowhere."""
    allowed = sorted(allowed)
    flat = {bundle: flatten(config) for bundle, config in configs.items()}
    keys = sorted(set().union(*flat.values()))
    problems, differing = [], []
    for key in keys:
        values = {bundle: f.get(key, MISSING) for bundle, f in flat.items()}
        if all(v == next(iter(values.values())) for v in values.values()):
            continue
        differing.append(key)
        if not _allowed(key, allowed):
            shown = ", ".join(f"{bundle}: {value!r}" for bundle, value in values.items())
            problems.append(f"{name}: key {key!r} differs between bundles ({shown}); make them equal, or list "
                            f"{key!r} as per-bundle in SHARED if it is a setting of the bundle's data")
    for key in allowed:
        if not any(_allowed(d, [key]) for d in differing):
            problems.append(f"{name}: {key!r} is listed as per-bundle in SHARED but is the same in "
                            f"{', '.join(configs)}; remove it from the list")
    return problems


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_no_long_expression_in_bundle_json():
    found = [
        f"{path.relative_to(BUNDLES.parent)}: {key} ({length} characters)"
        for path in sorted(BUNDLES.rglob("*.json"))
        for key, length in long_expressions(_load(path))
    ]
    assert not found, (
        f"$ expressions over {MAX_EXPRESSION} characters (logic belongs in a package function, called through "
        "a _target_ dictionary):\n" + "\n".join(found)
    )


@pytest.mark.parametrize("name", sorted(SHARED))
def test_shared_config_is_identical_except_per_bundle_keys(name):
    bundles, allowed = SHARED[name]
    configs = {b: _load(BUNDLES / b / "configs" / name) for b in bundles}
    problems = drift(name, configs, allowed)
    assert not problems, "\n".join(problems)


def test_every_pretraining_config_of_several_bundles_is_declared_shared():
    present: dict[str, list[str]] = {}
    for path in sorted(BUNDLES.glob("*/configs/pretrain_*.json")):
        present.setdefault(path.name, []).append(path.parts[-3])
    for name, bundles in present.items():
        if len(bundles) > 1:
            assert name in SHARED, f"{name} is in {bundles} but not in SHARED; declare what may differ"
            assert sorted(SHARED[name][0]) == bundles, f"SHARED[{name!r}] names {SHARED[name][0]}, present in {bundles}"


# the checks themselves: they find what they are for


def test_long_expressions_names_the_id_and_length():
    config = {"a": "$" + "x" * 119, "b": {"c": ["$short", "$" + "y" * 200]}, "d": "not an expression " * 10}
    assert long_expressions(config) == [("b#c#1", 201)]


def test_drift_names_the_key_and_each_bundle_value():
    base = {"epochs": 10, "train": {"handlers": [{"_target_": "A", "every": 1}]}, "batch_size": 4}
    other = {"epochs": 10, "train": {"handlers": [{"_target_": "A", "every": 2}]}, "batch_size": 8}
    problems = drift("pretrain_x.json", {"one": base, "two": other}, {"batch_size"})
    assert problems == [
        "pretrain_x.json: key 'train#handlers#0#every' differs between bundles (one: 1, two: 2); make them equal, "
        "or list 'train#handlers#0#every' as per-bundle in SHARED if it is a setting of the bundle's data"
    ]
    missing = drift("f.json", {"one": base, "two": {**base, "extra": 1}}, {"epochs"})
    assert "key 'extra' differs between bundles (one: '<missing>', two: 1)" in missing[0]
    assert "'epochs' is listed as per-bundle in SHARED but is the same in one, two" in missing[1]
    assert drift("f.json", {"one": base, "two": other}, {"batch_size", "train#handlers"}) == []
