"""Smoke tests of bundles/chest_xray_ssl on a tiny MedMNIST-style archive, through `python -m monai.bundle run`.

Four processes in all (about 7 s of imports each): SimCLR pretraining on the .npz, full fine-tuning from its
encoder (frozen for one of two epochs), evaluation, and a linear probe. The other pretraining configs are
resolved in-process (one batch through their transforms, network and loss), and the real PneumoniaMNIST
loads through the bundle's wiring when MEDSSL3D_REAL_DATA is set (no training).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.bundles.conftest import BUNDLES, assert_export_matches_eager, check, export_bundle, run_bundle

pytestmark = pytest.mark.slow

BUNDLE = "chest_xray_ssl"
CONFIGS = BUNDLES / BUNDLE / "configs"
SMALL = {"image_size": 32, "backbone": "resnet18", "batch_size": 8, "device": "cpu"}
NAMES = ["normal", "pneumonia"]
REAL = os.environ.get("MEDSSL3D_REAL_DATA", "")


def make_chest_npz(path: Path, sizes=(40, 10, 10), size: int = 28, seed: int = 0) -> Path:
    """A PneumoniaMNIST look-alike: (N, 28, 28) uint8, labels (N, 1); class 1 ("pneumonia") has a bright blob."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    blob = ((yy - size / 2) ** 2 + (xx - size / 3) ** 2 < (size / 4) ** 2).astype(np.float64)
    arrays = {}
    for part, n in zip(("train", "val", "test"), sizes):
        labels = np.arange(n) % 2
        images = rng.normal(70, 20, (n, size, size)) + 120 * labels[:, None, None] * blob
        arrays[f"{part}_images"] = np.clip(images, 0, 255).astype(np.uint8)
        arrays[f"{part}_labels"] = labels.reshape(n, 1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


@pytest.fixture(scope="module")
def chest_npz(tmp_path_factory) -> Path:
    return make_chest_npz(tmp_path_factory.mktemp("chest") / "tinychest.npz")


@pytest.fixture(scope="module")
def pretrained(chest_npz, tmp_path_factory) -> Path:
    """SimCLR pretraining on every image of the archive (labels unused): its encoder.pt."""
    out = tmp_path_factory.mktemp("pretrain")
    log = check(
        run_bundle(
            BUNDLE,
            ["pretrain_base.json", "pretrain_simclr.json"],
            dataset_dir=str(chest_npz),
            output_dir=str(out),
            epochs=1,
            projection_dim=16,
            val_fraction=0.2,
            **SMALL,
        )
    )
    assert "heldout_pretext_accuracy" in log
    split = json.loads((out / "pretrain_split.json").read_text())
    pooled = split["train"] + split["validation"]
    assert split["num_images"] == 60 == len(pooled) and len(split["validation"]) == 12
    assert all("tinychest.npz#" in it["image"] and set(it) == {"image"} for it in pooled)
    ckpt = torch.load(out / "encoder.pt", weights_only=True)
    assert ckpt["task"] == "simclr" and ckpt["encoder_config"]["name"] == "resnet18"
    assert ckpt["encoder_config"]["in_channels"] == 1
    return out / "encoder.pt"


@pytest.fixture(scope="module")
def trained(chest_npz, pretrained, tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    log = check(
        run_bundle(
            BUNDLE,
            ["train.json"],
            dataset_dir=str(chest_npz),
            output_dir=str(out),
            epochs=2,
            freeze_encoder_epochs=1,
            pretrained_encoder=str(pretrained),
            **SMALL,
        )
    )
    return out, log


def _encoder_state(path: Path) -> dict:
    return torch.load(path, weights_only=True)["model"]


def test_finetune_from_pretrained_encoder(trained, pretrained):
    out, log = trained
    assert "froze encoder" in log and "unfroze encoder" in log and "val_roc_auc" in log
    split = json.loads((out / "split.json").read_text())
    assert (len(split["train"]), len(split["validation"]), len(split["test"])) == (40, 10, 10)
    assert split["class_names"] == NAMES and split["layout"] == "npz" and split["group_pattern"] is None
    model = torch.load(out / "model.pt", weights_only=True)
    assert model["class_names"] == NAMES and model["head"] == "mlp" and "val_roc_auc" in model["metric"]
    assert model["in_channels"] == 1 and model["linear_probe"] is False and model["hidden"] == [256, 128]
    # the MLP head 512 -> 256 -> 128 -> 2 with ReLU and dropout
    shapes = {k: tuple(v.shape) for k, v in model["model"].items() if k.startswith("head.") and k.endswith("weight")}
    assert shapes == {"head.0.weight": (256, 512), "head.3.weight": (128, 256), "head.6.weight": (2, 128)}
    # the pretrained encoder loaded, stayed frozen in epoch 1, then trained at a tenth of the head's rate
    pretrained_state = _encoder_state(pretrained)
    first = torch.load(out / "checkpoints" / "checkpoint_epoch=1.pt", weights_only=True)
    convs = [k for k in pretrained_state if k.endswith("conv1.weight")]
    assert convs and all(torch.equal(first["model"]["encoder." + k], pretrained_state[k]) for k in convs)
    last = torch.load(out / "checkpoints" / "checkpoint_epoch=2.pt", weights_only=True)
    assert any(not torch.equal(last["model"]["encoder." + k], pretrained_state[k]) for k in convs)
    encoder_group, head_group = last["optimizer"]["param_groups"]
    assert encoder_group["lr"] == pytest.approx(0.1 * head_group["lr"])


@pytest.fixture(scope="module")
def evaluated(trained) -> Path:
    out, _ = trained
    check(run_bundle(BUNDLE, ["train.json", "evaluate.json"], output_dir=str(out), **SMALL))
    return out


def _probabilities(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    return {r["source"]: np.array([float(r[f"prob_{n}"]) for n in names]) for r in csv.DictReader(path.open())}


def test_evaluate_writes_binary_metrics(evaluated):
    out = evaluated
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eval_split"] == "test" and metrics["num_samples"] == 10 and metrics["class_names"] == NAMES
    assert metrics["support_per_class"] == {"normal": 5, "pneumonia": 5}
    assert 0.0 <= metrics["roc_auc_ovr"] <= 1.0
    assert metrics["roc_auc_per_class"]["pneumonia"] == pytest.approx(metrics["roc_auc_ovr"])  # binary: one AUC
    assert 0.0 <= metrics["accuracy"] <= 1.0 and sum(map(sum, metrics["confusion_matrix"])) == 10
    assert metrics["head"] == "mlp" and metrics["linear_probe"] is False
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == 10 and all("tinychest.npz#test_images[" in r["source"] for r in rows)
    assert all(abs(float(r["prob_normal"]) + float(r["prob_pneumonia"]) - 1.0) < 1e-4 for r in rows)
    assert (out / "roc_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_inference_and_torchscript_export_give_the_evaluation_probabilities(evaluated, chest_npz, tmp_path):
    """inference.json on the archive (its test_images) writes the evaluate step's probabilities; the model zoo's
    ckpt_export gives a model.ts equal to the eager network, and inference from model.ts writes the same CSV."""
    out = evaluated
    check(run_bundle(BUNDLE, ["inference.json"], ckpt_path=str(out / "model.pt"), input=str(chest_npz),
                     output_dir=str(tmp_path / "pt"), device="cpu"))
    table = tmp_path / "pt" / "predictions.csv"
    rows = list(csv.DictReader(table.open()))
    assert list(rows[0]) == ["source", "pred", "pred_class", "prob_normal", "prob_pneumonia"]
    evaluation = _probabilities(out / "predictions.csv", NAMES)
    inferred = _probabilities(table, NAMES)
    assert list(inferred) == sorted(evaluation, key=lambda s: int(s.split("[")[1][:-1])) and len(inferred) == 10
    for source, prob in inferred.items():
        np.testing.assert_allclose(prob, evaluation[source], atol=2e-6)
    assert all(r["pred_class"] == NAMES[int(r["pred"])] == NAMES[int(np.argmax(inferred[r["source"]]))] for r in rows)

    ts = tmp_path / "model.ts"
    check(export_bundle(BUNDLE, ts, out / "model.pt"))
    assert_export_matches_eager(ts, out / "model.pt", (4, 1, 32, 32))
    check(run_bundle(BUNDLE, ["inference.json"], ckpt_path=str(ts), input=str(chest_npz),
                     output_dir=str(tmp_path / "ts"), device="cpu"))
    from_ts = _probabilities(tmp_path / "ts" / "predictions.csv", NAMES)
    assert list(from_ts) == list(inferred)
    for source, prob in from_ts.items():
        np.testing.assert_allclose(prob, inferred[source], atol=2e-6)


def test_linear_probe_keeps_the_encoder_exactly(chest_npz, pretrained, tmp_path):
    """linear_probe=True: frozen for every epoch (whatever freeze_encoder_epochs says), BatchNorm statistics too."""
    log = check(
        run_bundle(
            BUNDLE,
            ["train.json"],
            dataset_dir=str(chest_npz),
            output_dir=str(tmp_path),
            epochs=2,
            linear_probe=True,
            head="linear",
            pretrained_encoder=str(pretrained),
            **SMALL,
        )
    )
    assert "froze encoder" in log and "unfroze" not in log
    pretrained_state = _encoder_state(pretrained)
    last = torch.load(tmp_path / "checkpoints" / "checkpoint_epoch=2.pt", weights_only=True)["model"]
    for key, value in pretrained_state.items():  # weights and BatchNorm running statistics
        assert torch.equal(last["encoder." + key], value), key
    model = torch.load(tmp_path / "model.pt", weights_only=True)
    assert model["linear_probe"] is True and model["model"]["head.1.weight"].shape == (2, 512)
    first = torch.load(tmp_path / "checkpoints" / "checkpoint_epoch=1.pt", weights_only=True)["model"]
    assert not torch.equal(first["head.1.weight"], last["head.1.weight"])  # the head did train
    # evaluate.json reports the probe from model.pt, with no --linear_probe at evaluation (resolved in-process)
    parser = _parse(["train.json", "evaluate.json"], output_dir=str(tmp_path), head="linear", **SMALL)
    writer = parser.get_parsed_content("validate#handlers")[1]
    assert writer.extra["linear_probe"] is True and writer.extra["head"] == "linear"


def _parse(configs: list[str], **overrides):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / c) for c in configs])
    parser.update({"bundle_root": str(BUNDLES / BUNDLE), **overrides})
    return parser


TINY_PRETRAIN = {
    "simclr": {"projection_dim": 16},
    "sicova": {"expander_dim": 32, "accumulation_steps": 1},
    "triplet": {"embedding_dim": 16},
}


@pytest.mark.parametrize("task", sorted(TINY_PRETRAIN))
def test_pretrain_configs_resolve_on_grey_npz_images(task, chest_npz, tmp_path):
    """Each pretraining config: the npz pool (or, for triplet, the labelled split), one grey batch, a finite loss."""
    from monai.data import list_data_collate

    parser = _parse(["pretrain_base.json", f"pretrain_{task}.json"], dataset_dir=str(chest_npz),
                    output_dir=str(tmp_path), backbone="resnet18", image_size=32, device="cpu", **TINY_PRETRAIN[task])
    split = parser.get_parsed_content("split")
    assert len(split["train"]) == (40 if task == "triplet" else 54)  # triplet: labelled train part only
    transform = parser.get_parsed_content("preprocessing")
    batch = list_data_collate([transform(dict(item)) for item in split["train"][:6]])
    network, loss = parser.get_parsed_content("network"), parser.get_parsed_content("loss")
    assert network.encoder.in_channels == 1
    image = batch["image"]
    # every method stacks two views per image: (B, 2, 1, H, W), one grey channel each
    assert tuple(image.shape[1:]) == (2, 1, 32, 32)
    pred = network(image)
    value = loss(pred, batch.get("label"))
    assert torch.isfinite(value)


def test_sicova_learning_rate_scales_with_the_effective_batch(tmp_path):
    """VICReg's rule, base 0.2 x batch x accumulation / 256; an explicit learning_rate wins."""
    files = ["pretrain_base.json", "pretrain_sicova.json"]
    assert _parse(files, output_dir=str(tmp_path)).get_parsed_content("learning_rate") == pytest.approx(0.2)
    scaled = _parse(files, output_dir=str(tmp_path), batch_size=64, accumulation_steps=8)
    assert scaled.get_parsed_content("learning_rate") == pytest.approx(0.4)
    assert _parse(files, output_dir=str(tmp_path), learning_rate=0.003).get_parsed_content("learning_rate") == 0.003


@pytest.mark.parametrize("pattern", ["test_images", "#test_images"])
def test_pretraining_pool_leaves_test_images_out_through_the_config(pattern, chest_npz, tmp_path):
    """MONAI's parser turns "#" in a value into "::"; the documented patterns still keep the test part out."""
    parser = _parse(["pretrain_base.json", "pretrain_simclr.json"], dataset_dir=str(chest_npz),
                    output_dir=str(tmp_path), exclude_pattern=pattern)
    split = parser.get_parsed_content("split")
    pooled = [it["image"] for it in split["train"] + split["validation"]]
    assert pooled and not any("#test_images[" in ref for ref in pooled)
    everything = _parse(["pretrain_base.json", "pretrain_simclr.json"], dataset_dir=str(chest_npz),
                        output_dir=str(tmp_path / "all")).get_parsed_content("split")
    assert split["num_images"] < everything["num_images"]


@pytest.mark.realdata
@pytest.mark.skipif(not REAL, reason="MEDSSL3D_REAL_DATA is not set; point it at the shared real-data folder")
def test_real_pneumoniamnist_loads_through_the_bundle(tmp_path):
    mnist = Path(REAL) / "pneumoniamnist" / "pneumoniamnist.npz"
    if not mnist.is_file():
        pytest.skip(f"{mnist} not found")
    parser = _parse(["train.json"], dataset_dir=str(mnist), output_dir=str(tmp_path / "ft"), device="cpu")
    split = parser.get_parsed_content("split")  # every image decoded once (validate_data)
    assert (split["train_full_size"], len(split["validation"]), len(split["test"])) == (4708, 524, 624)
    assert split["class_names"] == NAMES and sum(split["class_counts"]["test"]) == 624
    item = parser.get_parsed_content("validate#preprocessing")(dict(split["test"][0]))
    image = item["image"]
    assert tuple(image.shape) == (1, 64, 64) and 0.0 <= float(image.min()) <= float(image.max()) <= 1.0
    pool = _parse(["pretrain_base.json", "pretrain_simclr.json"], dataset_dir=str(mnist),
                  output_dir=str(tmp_path / "pre"), device="cpu").get_parsed_content("split")
    assert pool["num_images"] == 4708 + 524 + 624
