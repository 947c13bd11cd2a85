"""Compare data-efficiency studies side by side, e.g. a linear probe and full fine-tuning of the same encoders.

Each study (``scripts/data_efficiency.py``) scores methods (``scratch`` = random-init encoder, and one per
pretraining method) at label fractions. Two studies that share their encoders (``--pretrain-dir``) but
differ in how the encoder is used downstream answer the usual SSL evaluation question: how good are the
frozen features (linear probe), and how much does fine-tuning add, each against the same protocol from a
random-init encoder. :func:`compare_studies` puts them in one table (mean ± std over repeats, with the
difference to ``scratch`` of the same study) and one grouped bar chart with every repeat drawn as a dot
(:func:`medssl3d.reports.plots.plot_comparison`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medssl3d.reports.plots import plot_comparison
from medssl3d.reports.results import pct, read_results, resolve_metric, summarise_results
from medssl3d.reports.study_settings import SCRATCH

__all__ = ["StudyComparison", "compare_studies", "comparison_markdown"]

PathLike = str | os.PathLike


@dataclass
class StudyComparison:
    """What :func:`compare_studies` found and wrote."""

    metric: str
    fraction: float
    methods: list[str]
    #: {study label: {method: [metric value of each repeat]}}
    values: dict[str, dict[str, list[float]]]
    markdown: str
    plot_path: Path | None


def _values(rows: Sequence[Mapping[str, Any]], metric: str, fraction: float) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for row in sorted(rows, key=lambda r: int(r["repeat"])):
        if pct(row["fraction"]) == pct(fraction):
            value = float(row.get(metric, math.nan))
            out.setdefault(row["method"], [])
            if not math.isnan(value):
                out[row["method"]].append(value)
    return out


def comparison_markdown(
    values: Mapping[str, Mapping[str, Sequence[float]]],
    methods: Sequence[str],
    metric: str,
    fraction: float,
    digits: int = 3,
) -> str:
    """A Markdown table: one row per method, one column per study (mean ± sample std, n repeats), plus, for
    each study that has ``scratch``, a column with the difference of the means to it (a study without
    ``scratch``, e.g. one variant of one method, gets no difference column)."""
    labels = list(values)
    with_scratch = [label for label in labels if len(values[label].get(SCRATCH, [])) > 0]  # Δ only where defined
    header = ["method"] + [f"{label}" for label in labels] + [f"{label}: Δ vs scratch" for label in with_scratch]
    lines = [
        f"`{metric}` at {pct(fraction)} % labels, mean ± std over repeats (n); Δ: difference of the means "
        "to the random-init encoder (`scratch`) under the same protocol.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    fmt = f"{{:.{digits}f}}"
    for method in methods:
        runs = {label: np.asarray(values[label].get(method, []), dtype=np.float64) for label in labels}
        cells = [
            f"{fmt.format(v.mean())} ± {fmt.format(float(v.std(ddof=1)) if v.size > 1 else 0.0)} ({v.size})"
            if v.size
            else ""
            for v in runs.values()
        ]
        deltas = [
            f"{float(runs[label].mean() - np.mean(values[label][SCRATCH])):+.{digits}f}"
            if method != SCRATCH and runs[label].size
            else ""
            for label in with_scratch
        ]
        lines.append("| " + " | ".join([method, *cells, *deltas]) + " |")
    return "\n".join(lines) + "\n"


def compare_studies(
    studies: Mapping[str, PathLike],
    metric: str = "auto",
    fraction: float | None = None,
    plot_path: PathLike | None = None,
    title: str = "",
) -> StudyComparison:
    """Table (and optionally a PNG) of several studies' results at one label fraction.

    Args:
        studies: ``{label: study folder or results.csv}``, e.g. ``{"linear probe": "runs/probe",
            "fine-tuning": "runs/finetune"}``; the order is kept.
        metric: the metric column, or ``"auto"`` (resolved on the first study's rows).
        fraction: label fraction in percent; default: the smallest one every study has.
        plot_path: where to write the bar chart (none when ``None``).
        title: plot title.

    Returns:
        a :class:`StudyComparison`.

    Raises:
        ValueError: no studies, a metric missing from a study, or a fraction no study has.
        FileNotFoundError: a study without ``results.csv``.
    """
    if not studies:
        raise ValueError("studies must map at least one label to a study folder, e.g. {'probe': 'runs/probe'}.")
    rows = {label: read_results(path) for label, path in studies.items()}
    first = next(iter(rows.values()))
    metric = resolve_metric(first, metric)
    for label, r in rows.items():
        resolve_metric(r, metric)  # the same column everywhere
    common = set.intersection(*({pct(row["fraction"]) for row in r} for r in rows.values()))
    if fraction is None:
        if not common:
            raise ValueError(
                f"the studies share no label fraction: {[sorted({r['fraction'] for r in v}) for v in rows.values()]}."
            )
        fraction = min(float(f) for f in common)
    elif pct(fraction) not in common:
        raise ValueError(
            f"fraction {fraction} % is not in every study; shared fractions: {sorted(map(float, common))}."
        )
    values = {label: _values(r, metric, fraction) for label, r in rows.items()}
    methods: list[str] = []
    for label in rows:
        for method in summarise_results(rows[label], metric):
            if method not in methods:
                methods.append(method)
    if SCRATCH in methods:  # the baseline first
        methods.remove(SCRATCH)
        methods.insert(0, SCRATCH)
    markdown = comparison_markdown(values, methods, metric, fraction)
    written = None
    if plot_path is not None:
        written = plot_comparison(values, methods, metric, plot_path, title=title)
    return StudyComparison(metric, float(fraction), methods, values, markdown, written)
