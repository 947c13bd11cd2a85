"""Smoke test of scripts/sicova_steps.py (the SiCoVa step-budget diagnostic) on a tiny MedMNIST-like archive."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_sicova_steps_script_reports_terms_and_retrieval(tmp_path, capsys, monkeypatch):
    """scripts/sicova_steps.py on a tiny MedMNIST-like archive: one line per report with the VICReg terms."""
    rng = np.random.default_rng(0)
    archive = tmp_path / "tiny.npz"
    np.savez(archive, train_images=rng.integers(0, 255, (16, 28, 28), dtype=np.uint8),
             val_images=rng.integers(0, 255, (8, 28, 28), dtype=np.uint8))
    argv = [str(archive), "--steps", "2", "--every", "1", "--batch-size", "4", "--expander-dim", "32",
            "--jigsaw-grid-sizes", "1", "--optimizer", "adamw"]
    monkeypatch.setattr(sys, "argv", ["sicova_steps.py", *argv])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(ROOT / "scripts" / "sicova_steps.py"), run_name="__main__")
    assert done.value.code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("adamw jigsaw=[1] step 0: retrieval")
    for line in lines[1:]:
        assert all(k in line for k in ("'invariance'", "'variance'", "'covariance'", "'cross_correlation'"))
    np.savez(archive, images=np.zeros((4, 28, 28), np.uint8))
    monkeypatch.setattr(sys, "argv", ["sicova_steps.py", str(archive)])
    with pytest.raises(SystemExit) as bad:
        runpy.run_path(str(ROOT / "scripts" / "sicova_steps.py"), run_name="__main__")
    assert bad.value.code == 2 and "no train_images/val_images" in capsys.readouterr().err
