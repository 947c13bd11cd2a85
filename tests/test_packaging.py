"""The installed package's requirements: a torch range (so medssl3d installs beside MONAI Label's torch), no pins."""

from __future__ import annotations

from importlib.metadata import requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
TESTED_TORCH = ("2.13.0", "2.14.1")  # the project's .venv and scripts/test_monailabel.sh's environment


def _requirements() -> list[Requirement]:
    return [Requirement(r) for r in requires("medssl3d") or []]


def test_torch_is_a_range_holding_every_tested_version():
    torch = [r for r in _requirements() if r.name == "torch"]
    assert len(torch) == 1, [str(r) for r in _requirements()]
    spec = torch[0].specifier
    assert not any(s.operator in ("==", "===") for s in spec), f"exact torch pin in the metadata: {spec}"
    assert all(spec.contains(v) for v in TESTED_TORCH), f"{spec} excludes a tested torch {TESTED_TORCH}"
    assert not spec.contains("2.12.0") and not spec.contains("3.0.0"), f"{spec} admits an untested torch"


def test_no_dependency_is_pinned_exactly():
    pinned = [str(r) for r in _requirements() if any(s.operator in ("==", "===") for s in r.specifier)]
    assert not pinned, f"exact pins in the package metadata: {pinned}; pin in scripts/constraints.txt instead"


def test_project_environment_pins_the_cpu_torch_through_constraints():
    lines = [ln.strip() for ln in (ROOT / "scripts" / "constraints.txt").read_text().splitlines()]
    assert "torch==2.13.0" in lines
    assert '-c "$ROOT/scripts/constraints.txt"' in (ROOT / "scripts" / "_env.sh").read_text()
