"""bundles/chest_xray_ssl with --multi_label true on a tiny ChestMNIST-style archive ((N, 3) multi-hot labels).

Two processes (train, evaluate) through `python -m monai.bundle run`; the config switch itself (loss,
activation, metrics) is checked in-process for both values of multi_label. The single-label runs are covered
by test_chest_xray_bundle.py.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.bundles.conftest import BUNDLES, check, run_bundle

pytestmark = pytest.mark.slow

BUNDLE = "chest_xray_ssl"
CONFIGS = BUNDLES / BUNDLE / "configs"
SMALL = {"image_size": 32, "backbone": "resnet18", "batch_size": 8, "device": "cpu"}
FINDINGS = ["atelectasis", "effusion", "mass"]


def make_multilabel_chest_npz(path: Path, sizes=(24, 8, 8), size: int = 28, seed: int = 0) -> Path:
    """(N, 28, 28) uint8 images and (N, 3) multi-hot labels; every finding is positive and negative in each part."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in zip(("train", "val", "test"), sizes):
        labels = ((np.arange(n)[:, None] >> np.arange(3)[None, :]) & 1).astype(np.uint8)  # the 8 combinations
        bands = np.zeros((3, size, size))
        for k in range(3):  # finding k brightens horizontal band k
            bands[k, k * size // 3 : (k + 1) * size // 3] = 80.0
        images = rng.normal(70, 20, (n, size, size)) + np.einsum("nk,khw->nhw", labels.astype(np.float64), bands)
        arrays[f"{part}_images"] = np.clip(images, 0, 255).astype(np.uint8)
        arrays[f"{part}_labels"] = labels
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def _parse(configs: list[str], **overrides):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / c) for c in configs])
    parser.update({"bundle_root": str(BUNDLES / BUNDLE), **overrides})
    return parser


@pytest.mark.parametrize("flag, loss, metric", [("false", "CrossEntropyLoss", "MulticlassRocAuc"),
                                                 ("true", "BCEWithLogitsLoss", "MultilabelRocAuc")])
def test_multi_label_switches_loss_activation_and_metrics(flag, loss, metric):
    parser = _parse(["train.json"], multi_label=flag)
    assert type(parser.get_parsed_content("loss")).__name__ == loss
    post = parser.get_parsed_content("validate#postprocessing")
    assert (post.sigmoid, post.softmax) == (((True,), (False,)) if flag == "true" else ((False,), (True,)))
    assert type(parser.get_parsed_content("validate#key_metric")["val_roc_auc"]).__name__ == metric


def _mode(parser) -> dict:
    """What the multi-label switch changes in train.json, resolved without data (no split is drawn)."""
    post = parser.get_parsed_content("validate#postprocessing")
    return {
        "multi": parser.get_parsed_content("multi"),
        "loss": type(parser.get_parsed_content("loss")).__name__,
        "activation": (post.sigmoid, post.softmax),
        "key_metric": type(parser.get_parsed_content("validate#key_metric")["val_roc_auc"]).__name__,
        "accuracy": type(parser.get_parsed_content("validate#additional_metrics")["val_accuracy"]).__name__,
        **{key: parser.get_parsed_content(key) for key in (
            "split#multi_label", "split#num_classes", "split#class_names", "train#preprocessing#multi_label",
            "validate#preprocessing#multi_label", "validate#best_model_saver#extra#multi_label")},
    }


def test_multi_label_override_file_equals_the_flag():
    """configs/multi_label.json (the documented way) and --multi_label true give the same multi-label wiring."""
    by_file = _mode(_parse(["train.json", "multi_label.json"], finding_names=FINDINGS))
    by_flag = _mode(_parse(["train.json"], multi_label="true", finding_names=FINDINGS))
    assert by_file == by_flag
    assert by_file["loss"] == "BCEWithLogitsLoss" and by_file["accuracy"] == "MultilabelAccuracy"
    assert by_file["split#num_classes"] is None and by_file["split#class_names"] == FINDINGS
    single = _mode(_parse(["train.json"], finding_names=FINDINGS))
    assert single["loss"] == "CrossEntropyLoss" and single["accuracy"] == "MulticlassAccuracy"
    assert single["split#class_names"] == ["normal", "pneumonia"] and single["split#num_classes"] == 2
    # the file only switches the mode: loss, metrics, activation and split follow multi_label
    assert json.loads((CONFIGS / "multi_label.json").read_text(encoding="utf-8")) == {"multi_label": True}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = make_multilabel_chest_npz(tmp_path_factory.mktemp("chestmnist") / "tinychestmnist.npz")
    out = tmp_path_factory.mktemp("multi")
    log = check(run_bundle(BUNDLE, ["train.json"], dataset_dir=str(data), output_dir=str(out), epochs=2,
                           multi_label="true", finding_names=FINDINGS, cache_rate=0.5, **SMALL))
    return out, log


def test_train_multi_label(trained):
    out, log = trained
    assert "val_roc_auc" in log and "val_accuracy" in log
    split = json.loads((out / "split.json").read_text(encoding="utf-8"))
    assert split["multi_label"] is True and split["num_classes"] == 3 and split["class_names"] == FINDINGS
    assert (len(split["train"]), len(split["validation"]), len(split["test"])) == (24, 8, 8)
    assert split["class_counts"]["test"] == [4, 4, 4] and len(split["test"][0]["label"]) == 3
    model = torch.load(out / "model.pt", weights_only=True)
    assert model["multi_label"] is True and model["num_classes"] == 3 and model["class_names"] == FINDINGS
    assert model["model"]["head.6.weight"].shape == (3, 128) and "val_roc_auc" in model["metric"]


def test_evaluate_multi_label(trained):
    out, _ = trained
    check(run_bundle(BUNDLE, ["train.json", "evaluate.json"], output_dir=str(out), multi_label="true", **SMALL))
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    for key in ("auc", "roc_auc_macro", "roc_auc_micro", "average_precision_macro", "f1_macro", "f1_micro",
                "subset_accuracy", "hamming_loss", "prevalence_per_class", "support_per_class", "metrics"):
        assert key in metrics, key
    assert metrics["multi_label"] is True and metrics["eval_split"] == "test" and metrics["num_samples"] == 8
    assert list(metrics["roc_auc_per_class"]) == FINDINGS and metrics["num_findings_with_auc"] == 3
    assert all(0.0 <= v <= 1.0 for v in metrics["roc_auc_per_class"].values())
    assert metrics["auc"] == pytest.approx(np.mean(list(metrics["roc_auc_per_class"].values())))
    assert metrics["support_per_class"] == {n: 4 for n in FINDINGS} and metrics["linear_probe"] is False
    rows = list(csv.DictReader((out / "predictions.csv").open(encoding="utf-8")))
    assert len(rows) == 8 and all("tinychestmnist.npz#test_images[" in r["source"] for r in rows)
    assert {f"prob_{n}" for n in FINDINGS} <= set(rows[0])
    assert (out / "roc_curves.png").read_bytes()[:4] == b"\x89PNG"
    # evaluation follows split.json when --multi_label is not given
    parser = _parse(["train.json", "evaluate.json"], output_dir=str(out), **SMALL)
    assert parser.get_parsed_content("multi") is True
    assert parser.get_parsed_content("validate#handlers")[1].multi_label is True


def test_inference_multi_label_gives_the_evaluation_probabilities(trained, tmp_path):
    """inference.json takes multi-label mode and the finding names from model.pt: sigmoid probabilities equal
    to evaluate.json's, and one 0/1 column per finding at the threshold."""
    out, _ = trained
    check(run_bundle(BUNDLE, ["train.json", "evaluate.json"], output_dir=str(out), **SMALL))
    archive = json.loads((out / "split.json").read_text(encoding="utf-8"))["test"][0]["image"].split("#")[0]
    check(run_bundle(BUNDLE, ["inference.json"], ckpt_path=str(out / "model.pt"), input=archive,
                     output_dir=str(tmp_path), threshold=0.4, device="cpu"))
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open(encoding="utf-8")))
    assert list(rows[0]) == ["source", *[f"pred_{n}" for n in FINDINGS], *[f"prob_{n}" for n in FINDINGS]]
    evaluated = {r["source"]: r for r in csv.DictReader((out / "predictions.csv").open(encoding="utf-8"))}
    assert sorted(r["source"] for r in rows) == sorted(evaluated) and len(rows) == 8
    for r in rows:
        for n in FINDINGS:
            assert float(r[f"prob_{n}"]) == pytest.approx(float(evaluated[r["source"]][f"prob_{n}"]), abs=2e-6)
            assert int(r[f"pred_{n}"]) == int(float(r[f"prob_{n}"]) >= 0.4)
