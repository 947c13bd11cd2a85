"""Every pretrain_<task>.json runs through `python -m monai.bundle run`, and its encoder.pt fine-tunes."""

from __future__ import annotations

import json

import pytest
import torch

from medssl3d.nets import UNet, with_pretrained_encoder
from tests.bundles.conftest import check, run_bundle

# tiny but real settings per task for 8-10 phantom volumes (CPU seconds, not minutes)
TINY_3D = {
    "jigsaw": {"pretext_patch_size": 8, "jitter": 2},
    "rotation": {"input_size": 16},
    "rpl": {"pretext_patch_size": 8, "jitter": 1, "gap": 2},
    "exemplar": {"input_size": 16, "embedding_size": 32},
    "cpc": {"pretext_patch_size": 8, "code_size": 16},
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
            val_fraction=0.2,
            **TINY_3D[task],
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
