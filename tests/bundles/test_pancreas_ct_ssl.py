"""Smoke tests of bundles/pancreas_ct_ssl through the real `python -m monai.bundle run` entry point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pytest
import torch

from tests.bundles.conftest import ROOT, assert_export_matches_eager, bundle_cmd, check, export_bundle, run_bundle

pytestmark = pytest.mark.slow

SMALL = {"patch_size": [32, 32, 32], "base_filters": 4, "batch_size": 2, "num_samples": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def trained(phantom_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    log = check(
        run_bundle("pancreas_ct_ssl", ["train.json"], dataset_dir=str(phantom_dir), output_dir=str(out), epochs=2, **SMALL)
    )
    return out, log


def test_train_outputs(trained, phantom_dir):
    out, log = trained
    ckpt = torch.load(out / "model.pt", weights_only=True)
    assert "model" in ckpt and ckpt["class_names"] == ["background", "pancreas", "tumour"]
    assert any(k.startswith("encoder.") for k in ckpt["model"])
    split = json.loads((out / "split.json").read_text())
    names = [os.path.basename(d["image"]) for part in ("train", "validation", "test") for d in split[part]]
    assert len(names) == len(set(names)) == 8
    assert sorted(p.name for p in (out / "checkpoints").iterdir())[-1] == "checkpoint_epoch=2.pt"
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert "val_mean_dice" in log


def test_evaluate_writes_metrics(trained):
    out, _ = trained
    check(run_bundle("pancreas_ct_ssl", ["train.json", "evaluate.json"], output_dir=str(out), **SMALL))
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["dice_per_class"]) == {"background", "pancreas", "tumour"}
    fg = [v for k, v in metrics["dice_per_class"].items() if k != "background" and v is not None]
    assert metrics["mean_dice_foreground"] == pytest.approx(float(np.mean(fg)))
    assert metrics["eval_split"] == "test"
    # per-case Dice (one row per test case, named by file) for statistics across cases
    rows = (out / "dice_per_class_raw.csv").read_text().strip().splitlines()
    split = json.loads((out / "split.json").read_text())
    assert len(rows) == 1 + len(split["test"])
    assert all(os.path.basename(d["image"]).split(".")[0] in "\n".join(rows) for d in split["test"])
    assert (out / "dice_per_class_summary.csv").is_file()


def test_inference_writes_nifti_in_input_space(trained, phantom_dir, tmp_path):
    out, _ = trained
    pred_dir = tmp_path / "pred"
    check(
        run_bundle(
            "pancreas_ct_ssl",
            ["inference.json"],
            dataset_dir=str(phantom_dir),
            ckpt_path=str(out / "model.pt"),
            output_dir=str(pred_dir),
            patch_size=[32, 32, 32],
            base_filters=4,
        )
    )
    inputs = sorted((phantom_dir / "imagesTs").glob("*.nii.gz"))
    preds = sorted(pred_dir.glob("*_seg.nii.gz"))
    assert len(preds) == len(inputs) == 2
    for i, p in zip(inputs, preds):
        img, seg = nib.load(i), nib.load(p)
        assert seg.shape[:3] == img.shape[:3]
        np.testing.assert_allclose(seg.affine, img.affine, atol=1e-4)
        assert set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2}


def test_torchscript_export_predicts_like_model_pt(trained, phantom_dir, tmp_path):
    """The model zoo's ckpt_export writes a model.ts equal to the eager UNet; inference.json runs from it."""
    out, _ = trained
    ts = tmp_path / "model.ts"
    check(export_bundle("pancreas_ct_ssl", ts, out / "model.pt"))
    assert_export_matches_eager(ts, out / "model.pt", (1, 1, 32, 32, 32))
    for name, ckpt in (("pt", out / "model.pt"), ("ts", ts)):  # no --base_filters: both files record 4
        check(run_bundle("pancreas_ct_ssl", ["inference.json"], dataset_dir=str(phantom_dir), ckpt_path=str(ckpt),
                         output_dir=str(tmp_path / name), patch_size=[32, 32, 32]))
    preds = sorted((tmp_path / "pt").glob("*_seg.nii.gz"))
    assert len(preds) == 2
    for pt in preds:
        np.testing.assert_array_equal(nib.load(tmp_path / "ts" / pt.name).get_fdata(), nib.load(pt).get_fdata())


def test_pretrained_encoder_and_freeze(phantom_dir, tmp_path):
    from medssl3d.nets import UNet, save_encoder

    enc = UNet(spatial_dims=3, in_channels=1, out_channels=3, base_filters=4).encoder
    save_encoder(enc, tmp_path / "encoder.pt", task="test")
    out = tmp_path / "ft"
    log = check(
        run_bundle(
            "pancreas_ct_ssl",
            ["train.json"],
            dataset_dir=str(phantom_dir),
            output_dir=str(out),
            epochs=2,
            pretrained_encoder=str(tmp_path / "encoder.pt"),
            freeze_encoder_epochs=1,
            **SMALL,
        )
    )
    assert "froze encoder" in log and "unfroze encoder" in log
    # a mismatched encoder (8 base filters into a 4-filter UNet) fails before training with the key named
    big = UNet(spatial_dims=3, in_channels=1, out_channels=3, base_filters=8).encoder
    save_encoder(big, tmp_path / "big.pt", task="test")
    proc = run_bundle(
        "pancreas_ct_ssl",
        ["train.json"],
        dataset_dir=str(phantom_dir),
        output_dir=str(tmp_path / "bad"),
        epochs=1,
        pretrained_encoder=str(tmp_path / "big.pt"),
        **SMALL,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "base_filters=4 contradicts pretrained_encoder" in log
    assert "pass --base_filters 8" in log and not (tmp_path / "bad" / "split.json").exists()
    # without --base_filters the UNet takes the encoder's 8 (two epochs would do; one shows it builds and trains)
    args = {k: v for k, v in SMALL.items() if k != "base_filters"}
    log = check(run_bundle("pancreas_ct_ssl", ["train.json"], dataset_dir=str(phantom_dir),
                           output_dir=str(tmp_path / "big"), epochs=1, pretrained_encoder=str(tmp_path / "big.pt"), **args))
    assert "architecture from" in log and "base_filters=8" in log
    model = torch.load(tmp_path / "big" / "model.pt", weights_only=True)
    assert model["base_filters"] == 8 and model["network_config"]["encoder"]["base_filters"] == 8
    # a 2D encoder is refused naming both dimensions
    from medssl3d.nets import create_encoder

    save_encoder(create_encoder("resnet18", 2, 1), tmp_path / "flat.pt", task="test")
    proc = run_bundle("pancreas_ct_ssl", ["train.json"], dataset_dir=str(phantom_dir),
                      output_dir=str(tmp_path / "flat"), pretrained_encoder=str(tmp_path / "flat.pt"), **SMALL)
    assert proc.returncode != 0 and "holds a 2D resnet18 encoder but this bundle builds a 3D network" in (
        proc.stdout + proc.stderr
    )


def test_missing_dataset_dir_is_a_clear_error(tmp_path):
    proc = run_bundle("pancreas_ct_ssl", ["train.json"], dataset_dir=str(tmp_path / "nope"), output_dir=str(tmp_path), **SMALL)
    assert proc.returncode != 0 and "Cannot find dataset directory" in proc.stdout + proc.stderr


def test_no_dataset_dir_and_no_lists_says_what_to_pass(tmp_path):
    proc = run_bundle("pancreas_ct_ssl", ["train.json"], output_dir=str(tmp_path), **SMALL)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "no training cases: pass dataset_dir" in out and "train#dataset#data" in out


# MONAI Label 0.8.5's BundleTrainTask.run_single_gpu, with the override keys it sets (its train#handlers
# override is the config's own list, read back raw); run in a subprocess like the other bundle runs.
MONAILABEL_RUN = """
import json, sys
import monai.bundle
from monai.bundle import ConfigParser

bundle, items, extra = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
config = ConfigParser()
config.read_config(bundle + "/configs/train.json")
handlers = config.get("train#handlers", [])
assert all(isinstance(h, dict) for h in handlers), "MONAI Label calls .get on every train#handlers entry"
overrides = {
    "bundle_root": bundle,
    "train#trainer#max_epochs": 1,
    "train#dataset#data": items[:3],
    "device": "cpu",
    "train#handlers": handlers,
    "validate#dataset#data": items[3:],
    **extra,
}
monai.bundle.run(
    run_id="run", init_id=None, final_id=None, meta_file=bundle + "/configs/metadata.json",
    config_file=bundle + "/configs/train.json", **overrides
)
"""


def test_train_through_monailabel_override_keys(phantom_dir, tmp_path):
    """Training from lists given directly, no dataset_dir: what MONAI Label's datastore training needs."""
    import shutil

    from medssl3d.data import load_decathlon

    bundle = tmp_path / "pancreas_ct_ssl"
    shutil.copytree(ROOT / "bundles" / "pancreas_ct_ssl", bundle, ignore=shutil.ignore_patterns("models", "predictions"))
    items = [{"image": d["image"], "label": d["label"]} for d in load_decathlon(phantom_dir)][:4]
    small = {k: v for k, v in SMALL.items() if k != "device"}
    proc = subprocess.run(
        [sys.executable, "-c", MONAILABEL_RUN, str(bundle), json.dumps(items), json.dumps(small)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env=dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2")),
    )
    out = check(proc)
    model = torch.load(bundle / "models" / "model.pt", weights_only=True)  # where MONAI Label infers from
    assert model["validated"] is True and model["class_names"] == ["background", "pancreas", "tumour"]
    split = json.loads((bundle / "models" / "split.json").read_text())
    assert split["source"] == "datalists" and split["train"] == items[:3] and split["validation"] == items[3:]
    assert "val_mean_dice" in out


def test_monailabel_defaults_agree_with_inference_and_metadata():
    """Without a dataset.json, training takes class names and modality from train.json: they must be
    the ones MONAI Label shows (metadata channel_def) and inference.json uses."""
    configs = ROOT / "bundles" / "pancreas_ct_ssl" / "configs"
    train = json.loads((configs / "train.json").read_text())
    infer = json.loads((configs / "inference.json").read_text())
    meta = json.loads((configs / "metadata.json").read_text())["network_data_format"]
    channels = meta["outputs"]["pred"]["channel_def"]
    assert train["default_class_names"] == infer["class_names"] == [channels[str(i)] for i in range(len(channels))]
    assert train["default_modality"] == infer["modality"] == meta["inputs"]["image"]["modality"]
    assert train["default_architecture"] == infer["default_architecture"]
    assert train["default_architecture"]["in_channels"] == meta["inputs"]["image"]["num_channels"]

def test_bad_patch_size_fails_before_data_loading(phantom_dir, tmp_path):
    args = {**SMALL, "patch_size": [30, 32, 32]}
    proc = run_bundle("pancreas_ct_ssl", ["train.json"], dataset_dir=str(phantom_dir), output_dir=str(tmp_path), **args)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "not divisible by 2**levels = 16" in out and "[32, 32, 32]" in out
    assert "Loading dataset" not in out and not (tmp_path / "split.json").exists()


def test_torchrun_two_cpu_processes_with_frozen_encoder_warmup(phantom_dir, tmp_path):
    """DDP over Gloo; the encoder is frozen in epoch 1 and trained in epoch 2, which DDP must tolerate."""
    from medssl3d.nets import UNet, save_encoder

    save_encoder(UNet(spatial_dims=3, in_channels=1, out_channels=3, base_filters=4).encoder, tmp_path / "enc.pt")
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += bundle_cmd(
        "pancreas_ct_ssl",
        ["train.json", "multi_gpu_train.json"],
        dataset_dir=str(phantom_dir),
        output_dir=str(out),
        epochs=2,
        pretrained_encoder=str(tmp_path / "enc.pt"),
        freeze_encoder_epochs=1,
        **SMALL,
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    log = proc.stdout + proc.stderr
    assert "froze encoder" in log and "unfroze encoder" in log
    assert (out / "model.pt").is_file() and (out / "checkpoints" / "checkpoint_epoch=2.pt").is_file()
    ckpt = torch.load(out / "checkpoints" / "checkpoint_epoch=2.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in ckpt["model"])  # saved unwrapped, loads without DDP
    first = torch.load(out / "checkpoints" / "checkpoint_epoch=1.pt", weights_only=True)["model"]
    enc = [k for k in first if k.startswith("encoder.") and k.endswith(".weight")]
    assert all(torch.equal(first[k], torch.load(tmp_path / "enc.pt", weights_only=True)["model"][k[len("encoder."):]]) for k in enc)
    assert any(not torch.equal(first[k], ckpt["model"][k]) for k in enc)  # trained once unfrozen


def test_kill_and_resume(phantom_dir, tmp_path):
    out = tmp_path / "resume"
    args = dict(dataset_dir=str(phantom_dir), output_dir=str(out), epochs=4, **SMALL)
    env = dict(os.environ, OMP_NUM_THREADS="2")
    proc = subprocess.Popen(
        [sys.executable, *bundle_cmd("pancreas_ct_ssl", ["train.json"], **args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    deadline = time.time() + 300
    while not (out / "checkpoints" / "checkpoint_epoch=1.pt").exists():
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.time() < deadline, "no checkpoint after 300 s"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert "checkpoint_epoch=4.pt" not in done
    log = check(run_bundle("pancreas_ct_ssl", ["train.json"], resume=True, **args))
    assert "resumed from" in log
    final = torch.load(out / "checkpoints" / "checkpoint_epoch=4.pt", weights_only=True)
    epoch_length = final["trainer"]["epoch_length"]
    assert final["trainer"]["iteration"] == 4 * epoch_length
    assert not list((out / "checkpoints").glob("*.tmp"))
