"""Shared fixtures for bundle smoke tests: a phantom Decathlon folder and a runner for `python -m monai.bundle`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLES = ROOT / "bundles"


def bundle_cmd(bundle: str, configs: list[str], **overrides) -> list[str]:
    """Command line of `python -m monai.bundle run` for ``bundle`` with config files merged in order."""
    files = [str(BUNDLES / bundle / "configs" / c) for c in configs]
    config_arg = files[0] if len(files) == 1 else "[" + ",".join(f"'{f}'" for f in files) + "]"
    cmd = [
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        config_arg,
        "--meta_file",
        str(BUNDLES / bundle / "configs" / "metadata.json"),
        "--logging_file",
        str(BUNDLES / bundle / "configs" / "logging.conf"),
        "--bundle_root",
        str(BUNDLES / bundle),
    ]
    for k, v in overrides.items():
        # None as the expression "$None": monai.bundle drops overrides that parse to None
        cmd += [f"--{k}", "$None" if v is None else v if isinstance(v, str) else repr(v).replace(" ", "")]
    return cmd


def run_bundle(bundle: str, configs: list[str], timeout: int = 600, **overrides) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"), PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, *bundle_cmd(bundle, configs, **overrides)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def check(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory) -> Path:
    from medssl3d.data import generate_phantom_dataset

    return generate_phantom_dataset(tmp_path_factory.mktemp("phantoms") / "Task00_Phantom", num_cases=8, num_test=2, seed=0)


def export_bundle(
    bundle: str, filepath: Path, ckpt_file: Path, timeout: int = 600, **overrides
) -> subprocess.CompletedProcess:
    """The model zoo's export, run from the bundle folder: ``python -m monai.bundle ckpt_export network_def
    --filepath ... --ckpt_file ... --config_file "['configs/train.json','configs/inference.json']"
    --key_in_ckpt model`` (plus ``--ckpt_path``, the file inference.json reads the architecture from)."""
    cmd = [
        sys.executable, "-m", "monai.bundle", "ckpt_export", "network_def",
        "--filepath", str(filepath),
        "--ckpt_file", str(ckpt_file),
        "--config_file", "['configs/train.json','configs/inference.json']",
        "--key_in_ckpt", "model",
        "--ckpt_path", str(ckpt_file),
    ]
    for k, v in overrides.items():
        cmd += [f"--{k}", v if isinstance(v, str) else repr(v).replace(" ", "")]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"), PYTHONUNBUFFERED="1")
    return subprocess.run(
        cmd, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout, env=env,
        cwd=BUNDLES / bundle,
    )


def assert_export_matches_eager(ts_path: Path, ckpt: Path, shape: tuple[int, ...]) -> None:
    """The exported TorchScript model gives the eager network's output (from ``model.pt``) to 1e-5."""
    import torch

    from medssl3d.nets import load_inference_network

    eager, scripted = load_inference_network(ckpt), torch.jit.load(str(ts_path))
    torch.manual_seed(0)
    x = torch.rand(shape)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), eager(x), atol=1e-5, rtol=0)
