"""Smoke tests of bundles/fundus_dr_ssl through the real `python -m monai.bundle run` entry point.

Three processes in all (about 7 s of imports each): train from a pretrained encoder with a one-epoch
freeze, evaluate, and a bad label column that must fail before training with the column named.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch

from tests.bundles.conftest import check, run_bundle
from tests.data.test_classification import make_fundus_dataset

pytestmark = pytest.mark.slow

BUNDLE = "fundus_dr_ssl"
SMALL = {"image_size": 32, "backbone": "resnet18", "batch_size": 8, "device": "cpu"}
DR_NAMES = ["No DR", "Mild", "Moderate", "Severe", "Proliferative DR"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_fundus_dataset(tmp_path_factory.mktemp("fundus") / "dr", n_patients=15, size=40)


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    from medssl3d.nets import create_encoder, save_encoder

    out = tmp_path_factory.mktemp("train")
    torch.manual_seed(0)
    encoder = save_encoder(create_encoder("resnet18", 2, 3), out / "pretrained" / "encoder.pt", task="test")
    log = check(
        run_bundle(
            BUNDLE,
            ["train.json"],
            dataset_dir=str(dataset),
            output_dir=str(out),
            epochs=2,
            pretrained_encoder=str(encoder),
            freeze_encoder_epochs=1,
            **SMALL,
        )
    )
    return out, log, encoder


def _patient(path: str) -> str:
    return re.search(r"Patient\d+", Path(path).name).group(0)


def test_train_outputs(trained):
    out, log, encoder = trained
    assert "froze encoder" in log and "unfroze encoder" in log and "val_qwk" in log
    split = json.loads((out / "split.json").read_text())
    assert split["num_skipped"] == 1 and split["group_pattern"] == r"(Patient\d+)"
    sides = {part: {_patient(d["image"]) for d in split[part]} for part in ("train", "validation", "test")}
    assert not (sides["train"] & sides["validation"]) and not (sides["train"] & sides["test"])
    assert not (sides["validation"] & sides["test"])  # left and right eye of a patient stay together
    assert split["train_full_size"] + len(split["validation"]) + len(split["test"]) == 30
    ckpt = torch.load(out / "model.pt", weights_only=True)
    assert ckpt["class_names"] == DR_NAMES and ckpt["backbone"] == "resnet18" and "val_qwk" in ckpt["metric"]
    assert ckpt["model"]["head.1.weight"].shape == (5, 512)  # dropout, then linear 512 -> 5 grades
    assert (out / "checkpoints" / "checkpoint_epoch=2.pt").is_file()
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    # epoch 1 trained with the pretrained encoder frozen: its weights are still the loaded ones
    first = torch.load(out / "checkpoints" / "checkpoint_epoch=1.pt", weights_only=True)["model"]
    pretrained = torch.load(encoder, weights_only=True)["model"]
    conv = [k for k in pretrained if k.endswith("conv1.weight")]
    assert conv and all(torch.equal(first["encoder." + k], pretrained[k]) for k in conv)
    last = torch.load(out / "checkpoints" / "checkpoint_epoch=2.pt", weights_only=True)["model"]
    assert any(not torch.equal(last["encoder." + k], pretrained[k]) for k in conv)  # trained once unfrozen


def test_evaluate_writes_metrics_and_figures(trained):
    out, _, _ = trained
    check(run_bundle(BUNDLE, ["train.json", "evaluate.json"], output_dir=str(out), **SMALL))
    metrics = json.loads((out / "metrics.json").read_text())
    split = json.loads((out / "split.json").read_text())
    n_test = len(split["test"])
    assert list(metrics)[:2] == ["qwk", "accuracy"] and metrics["eval_split"] == "test"
    assert metrics["qwk"] is None or -1.0 <= metrics["qwk"] <= 1.0
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["num_samples"] == n_test
    assert list(metrics["recall_per_class"]) == DR_NAMES
    assert sum(map(sum, metrics["confusion_matrix"])) == n_test
    assert metrics["support_per_class"] == dict(zip(DR_NAMES, split["class_counts"]["test"]))
    correct = sum(metrics["confusion_matrix"][k][k] for k in range(5))
    assert metrics["accuracy"] == pytest.approx(correct / n_test)
    assert metrics["checkpoint"].endswith("model.pt") and metrics["split_seed"] == 0
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert sorted(r["source"] for r in rows) == sorted(d["image"] for d in split["test"])
    assert all(abs(sum(float(r[f"prob_{n}"]) for n in DR_NAMES) - 1.0) < 1e-4 for r in rows)
    for png in ("confusion_matrix.png", "roc_curves.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_bad_label_column_fails_before_training(dataset, tmp_path):
    proc = run_bundle(
        BUNDLE, ["train.json"], dataset_dir=str(dataset), output_dir=str(tmp_path), label_column="grade", **SMALL
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "label column 'grade' not found" in out and "['file', 'grade_name', 'dr_grade']" in out
    assert "Loading dataset" not in out and not (tmp_path / "split.json").exists()


def test_linear_probe_of_a_random_init_encoder(dataset, tmp_path):
    """linear_probe=true without a pretrained encoder: the lower-bound baseline; the encoder never changes."""
    log = check(
        run_bundle(
            BUNDLE, ["train.json"], dataset_dir=str(dataset), output_dir=str(tmp_path), epochs=2,
            linear_probe="true", **SMALL,
        )
    )
    assert "froze encoder" in log and "unfroze" not in log
    first, last = (
        torch.load(tmp_path / "checkpoints" / f"checkpoint_epoch={e}.pt", weights_only=True)["model"] for e in (1, 2)
    )
    encoder_keys = [k for k in last if k.startswith("encoder.")]
    assert encoder_keys and all(torch.equal(first[k], last[k]) for k in encoder_keys)  # BatchNorm statistics too
    assert any(not torch.equal(first[k], last[k]) for k in last if k.startswith("head."))
    assert torch.load(tmp_path / "model.pt", weights_only=True)["linear_probe"] is True
    check(run_bundle(BUNDLE, ["train.json", "evaluate.json"], output_dir=str(tmp_path), **SMALL))
    assert json.loads((tmp_path / "metrics.json").read_text())["linear_probe"] is True
