"""Smoke tests of bundles/fundus_dr_ssl through the real `python -m monai.bundle run` entry point.

Three processes in all (about 7 s of imports each): train from a pretrained encoder with a one-epoch
freeze, evaluate, and a bad label column that must fail before training with the column named.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.bundles.conftest import assert_export_matches_eager, check, export_bundle, run_bundle
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


@pytest.fixture(scope="module")
def evaluated(trained) -> Path:
    out, _, _ = trained
    check(run_bundle(BUNDLE, ["train.json", "evaluate.json"], output_dir=str(out), **SMALL))
    return out


def _probabilities(path: Path) -> dict[str, np.ndarray]:
    return {r["source"]: np.array([float(r[f"prob_{n}"]) for n in DR_NAMES]) for r in csv.DictReader(path.open())}


def test_evaluate_writes_metrics_and_figures(evaluated):
    out = evaluated
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


def test_inference_on_a_csv_gives_the_evaluation_probabilities(evaluated, tmp_path):
    """inference.json on a CSV of the test images writes the evaluate step's probabilities; model.ts too."""
    out = evaluated
    test_images = [d["image"] for d in json.loads((out / "split.json").read_text())["test"]]
    listing = tmp_path / "new_images.csv"
    listing.write_text("image,comment\n" + "".join(f"{p},unlabelled\n" for p in test_images))
    check(run_bundle(BUNDLE, ["inference.json"], ckpt_path=str(out / "model.pt"), input=str(listing),
                     output_dir=str(tmp_path / "pt"), device="cpu"))
    rows = list(csv.DictReader((tmp_path / "pt" / "predictions.csv").open()))
    assert list(rows[0]) == ["source", "pred", "pred_class", *[f"prob_{n}" for n in DR_NAMES]]
    inferred, evaluation = _probabilities(tmp_path / "pt" / "predictions.csv"), _probabilities(out / "predictions.csv")
    assert list(inferred) == test_images  # the CSV's order
    for source, prob in inferred.items():
        np.testing.assert_allclose(prob, evaluation[source], atol=2e-6)
    assert all(r["pred_class"] == DR_NAMES[int(np.argmax(inferred[r["source"]]))] for r in rows)
    ts = tmp_path / "model.ts"
    check(export_bundle(BUNDLE, ts, out / "model.pt"))
    assert_export_matches_eager(ts, out / "model.pt", (2, 3, 32, 32))
    check(run_bundle(BUNDLE, ["inference.json"], ckpt_path=str(ts), input=str(listing),
                     output_dir=str(tmp_path / "ts"), device="cpu"))
    for source, prob in _probabilities(tmp_path / "ts" / "predictions.csv").items():
        np.testing.assert_allclose(prob, inferred[source], atol=2e-6)


def test_bad_images_are_named_before_any_prediction_or_skipped_and_listed(trained, dataset, tmp_path):
    import shutil

    from PIL import Image

    out, _, _ = trained
    folder = tmp_path / "new"
    folder.mkdir()
    for path in sorted((dataset / "images").glob("*.png"))[:3]:
        shutil.copy(path, folder / path.name)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    Image.fromarray(np.full((40, 40), 1000, np.uint16)).save(folder / "sixteen_bit.png")
    run = {"ckpt_path": str(out / "model.pt"), "input": str(folder), "device": "cpu"}
    proc = run_bundle(BUNDLE, ["inference.json"], output_dir=str(tmp_path / "refused"), **run)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "2 of 5 image(s) cannot be classified" in log
    assert "broken.png" in log and "sixteen_bit.png" in log and "uint16 but image_dtype=uint8" in log
    assert not (tmp_path / "refused" / "predictions.csv").exists()
    check(run_bundle(BUNDLE, ["inference.json"], output_dir=str(tmp_path / "skip"), on_bad_image="skip", **run))
    rows = list(csv.DictReader((tmp_path / "skip" / "predictions.csv").open()))
    assert [Path(r["source"]).name for r in rows] == sorted(p.name for p in (dataset / "images").glob("*.png"))[:3]
    skipped = list(csv.DictReader((tmp_path / "skip" / "skipped_images.csv").open()))
    assert sorted(Path(r["image"]).name for r in skipped) == ["broken.png", "sixteen_bit.png"]


@pytest.fixture(scope="module")
def resnet50_encoder(dataset, tmp_path_factory) -> Path:
    """pretrain_sicova.json's ResNet-50, tiny: one epoch at 32 px."""
    out = tmp_path_factory.mktemp("sicova")
    check(run_bundle(BUNDLE, ["pretrain_base.json", "pretrain_sicova.json"], dataset_dir=str(dataset),
                     output_dir=str(out), epochs=1, batch_size=4, image_size=32, expander_dim=64,
                     accumulation_steps=1, val_fraction=0.25, device="cpu"))
    assert torch.load(out / "encoder.pt", weights_only=True)["encoder_config"]["name"] == "resnet50"
    return out / "encoder.pt"


def test_finetuning_takes_the_backbone_from_encoder_pt(dataset, resnet50_encoder, tmp_path):
    args = {k: v for k, v in SMALL.items() if k != "backbone"}  # no --backbone: the file says resnet50
    log = check(run_bundle(BUNDLE, ["train.json"], dataset_dir=str(dataset), output_dir=str(tmp_path), epochs=1,
                           pretrained_encoder=str(resnet50_encoder), **args))
    assert re.search(r"architecture from \S*encoder\.pt: backbone='resnet50', in_channels=3", log)
    model = torch.load(tmp_path / "model.pt", weights_only=True)
    assert model["backbone"] == "resnet50" and model["network_config"]["encoder"]["name"] == "resnet50"
    assert model["model"]["head.1.weight"].shape == (5, 2048)
    # evaluation reads the architecture from model.pt: no --backbone there either
    check(run_bundle(BUNDLE, ["train.json", "evaluate.json"], output_dir=str(tmp_path), **args))
    assert json.loads((tmp_path / "metrics.json").read_text())["backbone"] == "resnet50"


def test_a_contradicting_backbone_is_refused_with_the_override_to_pass(dataset, resnet50_encoder, tmp_path):
    proc = run_bundle(BUNDLE, ["train.json"], dataset_dir=str(dataset), output_dir=str(tmp_path), epochs=1,
                      pretrained_encoder=str(resnet50_encoder), **{**SMALL, "backbone": "densenet121"})
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "backbone=densenet121 contradicts pretrained_encoder" in log
    assert "pass --backbone resnet50" in log and not (tmp_path / "split.json").exists()
