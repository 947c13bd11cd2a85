"""Tests of medssl3d.reports.comparison and scripts/compare_studies.py (hand-made results.csv files)."""

from __future__ import annotations

import csv
import runpy
import sys
from pathlib import Path

import pytest

from medssl3d.reports.comparison import compare_studies

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_results(folder: Path, rows: list[tuple[str, float, int, float]], metric: str = "auc") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "results.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "fraction", "repeat", metric])
        writer.writerows(rows)
    return folder


@pytest.fixture
def studies(tmp_path):
    probe = write_results(
        tmp_path / "probe",
        [
            ("scratch", 10, 0, 0.60),
            ("scratch", 10, 1, 0.62),
            ("simclr", 10, 0, 0.80),
            ("simclr", 10, 1, 0.84),
            ("scratch", 100, 0, 0.7),
            ("simclr", 100, 0, 0.9),
        ],
    )
    finetune = write_results(
        tmp_path / "finetune",
        [
            ("simclr", 10, 0, 0.90),
            ("scratch", 10, 0, 0.85),
            ("simclr", 10, 1, 0.92),
            ("scratch", 10, 1, 0.87),
            ("triplet", 10, 0, 0.95),
        ],
    )
    return {"linear probe": probe, "fine-tuning": finetune}


def test_table_by_hand(studies, tmp_path):
    result = compare_studies(studies, plot_path=tmp_path / "cmp.png")
    assert result.metric == "auc" and result.fraction == 10.0  # the only shared fraction
    assert result.methods == ["scratch", "simclr", "triplet"]  # scratch first, then in first-seen order
    assert result.values["fine-tuning"]["simclr"] == [0.90, 0.92]
    lines = result.markdown.splitlines()
    assert (
        lines[2] == "| method | linear probe | fine-tuning | linear probe: Δ vs scratch | fine-tuning: Δ vs scratch |"
    )
    # probe scratch 0.61 ± 0.014 (sample std of 0.60, 0.62); simclr 0.82, Δ +0.21; fine-tuning simclr Δ +0.05
    assert lines[4] == "| scratch | 0.610 ± 0.014 (2) | 0.860 ± 0.014 (2) |  |  |"
    assert lines[5] == "| simclr | 0.820 ± 0.028 (2) | 0.910 ± 0.014 (2) | +0.210 | +0.050 |"
    assert lines[6] == "| triplet |  | 0.950 ± 0.000 (1) |  | +0.090 |"
    assert result.plot_path.read_bytes()[:8] == PNG_SIGNATURE and result.plot_path.stat().st_size > 5_000


def test_a_study_without_scratch_gets_no_difference_column(studies, tmp_path):
    variant = write_results(tmp_path / "variant", [("simclr", 10, 0, 0.70), ("simclr", 10, 1, 0.74)])
    result = compare_studies({**studies, "variant": variant})
    lines = result.markdown.splitlines()
    assert lines[2] == (
        "| method | linear probe | fine-tuning | variant | linear probe: Δ vs scratch | fine-tuning: Δ vs scratch |"
    )
    assert lines[4] == "| scratch | 0.610 ± 0.014 (2) | 0.860 ± 0.014 (2) |  |  |  |"
    assert lines[5] == "| simclr | 0.820 ± 0.028 (2) | 0.910 ± 0.014 (2) | 0.720 ± 0.028 (2) | +0.210 | +0.050 |"
    assert lines[6] == "| triplet |  | 0.950 ± 0.000 (1) |  |  | +0.090 |"
    assert all(line.count("|") == lines[2].count("|") for line in lines[2:7])


def test_errors(studies, tmp_path):
    with pytest.raises(ValueError, match="fraction 100 % is not in every study; shared fractions: \\[10.0\\]"):
        compare_studies(studies, fraction=100)
    with pytest.raises(ValueError, match="metric 'qwk' is not in the results"):
        compare_studies(studies, metric="qwk")
    with pytest.raises(FileNotFoundError, match="Cannot find study results"):
        compare_studies({"x": tmp_path / "nope"})
    with pytest.raises(ValueError, match="at least one"):
        compare_studies({})
    other = write_results(tmp_path / "other", [("scratch", 50, 0, 0.5)])
    with pytest.raises(ValueError, match="share no label fraction"):
        compare_studies({**studies, "other": other})


def test_cli_writes_section_with_relative_image_link(studies, tmp_path, monkeypatch, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "benchmarks.md").write_text("# Benchmarks\n", encoding="utf-8")
    argv = [
        "compare_studies.py",
        "--study",
        f"linear probe={studies['linear probe']}",
        "--study",
        f"fine-tuning={studies['fine-tuning']}",
        "--plot",
        str(docs / "images" / "cmp.png"),
        "--benchmarks",
        str(docs / "benchmarks.md"),
        "--section",
        "cmp",
        "--title",
        "Probe vs fine-tuning",
        "--note",
        "Settings: tiny.",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "scripts" / "compare_studies.py"), run_name="__main__")
    assert exit_info.value.code == 0
    text = (docs / "benchmarks.md").read_text(encoding="utf-8")
    assert "Settings: tiny." in text and "| simclr | 0.820 ± 0.028 (2)" in text
    assert "![Probe vs fine-tuning](images/cmp.png)" in text and (docs / "images" / "cmp.png").is_file()
    assert "plot:" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["compare_studies.py", "--study", "nolabel"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "scripts" / "compare_studies.py"), run_name="__main__")
    assert exit_info.value.code == 2
