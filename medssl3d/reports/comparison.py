"""Compare data-efficiency studies side by side, e.g. a linear probe and full fine-tuning of the same encoders.

Each study (``scripts/data_efficiency.py``) scores methods (``scratch`` = random-init encoder, and one per
pretraining method) at label fractions. Two studies that share their encoders (``--pretrain-dir``) but
differ in how the encoder is used downstream answer the usual SSL evaluation question: how good are the
frozen features (linear probe), and how much does fine-tuning add, each against the same protocol from a
random-init encoder. :func:`compare_studies` puts them in one table (mean ± std over repeats, with the
difference to ``scratch`` of the same study) and one grouped bar chart with every repeat drawn as a dot.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medssl3d.reports.data_efficiency import SCRATCH, _pct, read_results, resolve_metric, summarise_results
from medssl3d.utils.io import atomic_write

__all__ = ["StudyComparison", "compare_studies", "comparison_markdown", "plot_comparison"]

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
        if _pct(row["fraction"]) == _pct(fraction):
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
        f"`{metric}` at {_pct(fraction)} % labels, mean ± std over repeats (n); Δ: difference of the means "
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


def plot_comparison(
    values: Mapping[str, Mapping[str, Sequence[float]]],
    methods: Sequence[str],
    metric: str,
    path: PathLike,
    title: str = "",
) -> Path:
    """Grouped bars (one group per method, one bar per study: the mean) with each repeat as a dot (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = list(values)
    fig = Figure(figsize=(max(5.0, 1.6 * len(methods) + 1.5), 4.2), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(labels))
    x = np.arange(len(methods), dtype=np.float64)
    for k, label in enumerate(labels):
        offset = x - 0.4 + width * (k + 0.5)
        means = [np.mean(values[label][m]) if values[label].get(m) else np.nan for m in methods]
        ax.bar(offset, means, width=width * 0.9, label=label, alpha=0.75)
        for i, method in enumerate(methods):
            points = values[label].get(method, [])
            if points:
                jitter = np.linspace(-width * 0.25, width * 0.25, len(points)) if len(points) > 1 else [0.0]
                ax.scatter(offset[i] + np.asarray(jitter), points, s=14, color="black", zorder=3)
    ax.set_xticks(x)
    ax.set_xticklabels(methods)
    ax.set_ylabel(metric)
    finite = [v for label in labels for m in methods for v in values[label].get(m, [])]
    if finite:
        low, high = min(finite), max(finite)
        pad = max(0.02, 0.15 * (high - low))
        ax.set_ylim(low - 2 * pad, high + pad)  # zoomed on the values: bars start below the visible range
    ax.set_title(title or f"{metric} per method (bars: mean, dots: repeats)")
    ax.grid(True, axis="y", alpha=0.3)
    # below the axes, so it never hides a repeat's dot
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(len(labels), 4), fontsize=8, frameon=False)
    fig.tight_layout()
    return atomic_write(Path(os.fspath(path)), lambda f: fig.savefig(f, format="png"))


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
    common = set.intersection(*({_pct(row["fraction"]) for row in r} for r in rows.values()))
    if fraction is None:
        if not common:
            raise ValueError(
                f"the studies share no label fraction: {[sorted({r['fraction'] for r in v}) for v in rows.values()]}."
            )
        fraction = min(float(f) for f in common)
    elif _pct(fraction) not in common:
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
