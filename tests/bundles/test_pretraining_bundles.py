"""Every pretrain_<task>.json runs through `python -m monai.bundle run`, and its encoder.pt fine-tunes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from medssl3d.nets import UNet, with_pretrained_encoder
from tests.bundles.conftest import check, run_bundle

# tiny but real settings per task for 8-10 phantom volumes (CPU seconds, not minutes)
TINY_3D = {
    "jigsaw": {"pretext_patch_size": 8, "jitter": 2},
    "rotation": {"input_size": 16},
    "rpl": {"pretext_patch_size": 8, "jitter": 1, "gap": 2},
    # 3 held-out images in batches of 2: the last held-out batch of one is dropped, not fed to the triplet head
    "exemplar": {"input_size": 16, "embedding_size": 32, "val_fraction": 0.3},
    "cpc": {"pretext_patch_size": 8, "code_size": 16},
    # joint-embedding methods on the 3D UNet encoder (two views per volume)
    "simclr": {"input_size": 16, "projection_dim": 8},
    "sicova": {"input_size": 16, "expander_dim": 32, "jigsaw_grid_sizes": [2, 1]},
}


@pytest.mark.parametrize("task", sorted(TINY_3D))
def test_pretrain_3d_writes_encoder_that_loads_into_segmentation(task, phantom_dir, tmp_path):
    out = tmp_path / task
    log = check(
        run_bundle(
            "pancreas_ct_ssl",
            ["pretrain_base.json", f"pretrain_{task}.json"],
            dataset_dir=str(phantom_dir),
            output_dir=str(out),
            epochs=2,
            batch_size=2,
            base_filters=4,
            levels=2,
            **{"val_fraction": 0.2, **TINY_3D[task]},
        )
    )
    assert "heldout_pretext_accuracy" in log and "heldout_pretext_loss" in log
    ckpt = torch.load(out / "encoder.pt", weights_only=True)
    assert ckpt["task"] == task and ckpt["task_state"]["name"] == task and ckpt["epochs"] == 2
    assert set(ckpt["heldout_metrics"]) == {"heldout_pretext_accuracy", "heldout_pretext_loss"}
    split = json.loads((out / "pretrain_split.json").read_text())
    assert split["num_images"] == 10  # labelled and test images, labels unused
    assert (out / "tensorboard").is_dir() and list((out / "checkpoints").glob("checkpoint_epoch=2.pt"))
    net = with_pretrained_encoder(UNet(3, 1, 3, base_filters=4, levels=2), str(out / "encoder.pt"))
    for key, value in ckpt["model"].items():
        assert torch.equal(net.encoder.state_dict()[key], value), key


# 2D: ResNet-18 stands in for DenseNet-121 (same encoder interface, a fraction of the CPU time)
TINY_2D = {
    "jigsaw": {"pretext_patch_size": 16, "jitter": 2},
    "rotation": {"input_size": 32},
    "rpl": {"pretext_patch_size": 16, "jitter": 2, "gap": 2},
    "exemplar": {"input_size": 32, "embedding_size": 32},
    "cpc": {"pretext_patch_size": 16, "grid_size": 3, "code_size": 16, "context_size": 16},
    "simclr": {"input_size": 32, "projection_dim": 16},
    "sicova": {"input_size": 32, "expander_dim": 64, "accumulation_steps": 2},
    # labelled: the classification split of 6 patients, unstratified (stratified, each grade has too few patients
    # for a validation part); split seed 3 puts two same-grade eyes in the held-out batch, so it judges some
    "triplet": {"input_size": 32, "embedding_dim": 16, "stratify": False, "split_seed": 3},
}


# loss parts each method logs to TensorBoard next to pretext_loss (medssl3d.engines.LossTerms)
TB_PARTS = {
    "sicova": {"invariance", "variance", "covariance", "cross_correlation"},
    "triplet": {"fraction_active_triplets", "valid_triplets"},
}


def tensorboard_scalar_tags(folder: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for events in folder.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags.update(acc.Tags()["scalars"])
    return tags


@pytest.fixture(scope="module")
def fundus_dir(tmp_path_factory):
    from tests.data.test_classification import make_fundus_dataset

    return make_fundus_dataset(tmp_path_factory.mktemp("fundus"), n_patients=6, size=48)


@pytest.mark.parametrize("task", sorted(TINY_2D))
def test_pretrain_2d_writes_encoder_that_loads_into_classifier(task, fundus_dir, tmp_path):
    from medssl3d.data import prepare_classification_split
    from medssl3d.nets import Classifier, create_encoder

    out = tmp_path / task
    log = check(
        run_bundle(
            "fundus_dr_ssl",
            ["pretrain_base.json", f"pretrain_{task}.json"],
            dataset_dir=str(fundus_dir),
            output_dir=str(out),
            epochs=1,
            batch_size=4,
            backbone="resnet18",
            **{"val_fraction": 0.25, **TINY_2D[task]},
        )
    )
    assert "heldout_pretext_accuracy" in log
    # the training plan is logged before the first step, and a one-epoch run is flagged as too short
    plan = rf"pretraining {task}: 1 epochs x \d+ iterations \(batch 4\), accumulation \d+ -> \d+ optimiser"
    assert re.search(plan, log)
    assert f"pretraining {task} will take only" in log
    tags = tensorboard_scalar_tags(out / "tensorboard")
    parts = {t.split("/", 1)[1] for t in tags if t.startswith("pretext_loss/")}
    assert "pretext_loss" in tags and parts == TB_PARTS.get(task, set()), tags
    ckpt = torch.load(out / "encoder.pt", weights_only=True)
    assert ckpt["task"] == task and ckpt["encoder_config"]["name"] == "resnet18"
    if task == "triplet":  # labelled: the training part of the fine-tuning split, never its test patients
        split = json.loads((out / "split.json").read_text())
        expected = prepare_classification_split(
            fundus_dir, None, split_seed=3, val_fraction=0.25, num_classes=5, stratify=False, validate=False
        )
        for part in ("train", "validation", "test"):
            assert [(Path(p["image"]).name, p["label"]) for p in split[part]] == [
                (Path(p["image"]).name, p["label"]) for p in expected[part]
            ], part
        assert ckpt["config"]["num_train_images"] == len(expected["train"]) and ckpt["config"]["uses_labels"]
        test_patients = {p["image"].split("Patient")[1][:3] for p in split["test"]}
        assert test_patients and test_patients.isdisjoint(
            {p["image"].split("Patient")[1][:3] for p in split["train"] + split["validation"]}
        )
    else:
        split = json.loads((out / "pretrain_split.json").read_text())
        assert split["num_images"] == len(list(fundus_dir.rglob("*.png")))  # every image, graded or not
    held_out = {p["image"].split("Patient")[1][:3] for p in split["validation"]}
    assert held_out.isdisjoint({p["image"].split("Patient")[1][:3] for p in split["train"]})  # patients, not eyes
    net = with_pretrained_encoder(Classifier(create_encoder("resnet18", 2, 3), num_classes=5), str(out / "encoder.pt"))
    for key, value in ckpt["model"].items():
        assert torch.equal(net.encoder.state_dict()[key], value), key
