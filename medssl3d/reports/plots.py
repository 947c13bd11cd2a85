"""Figures of the reports, as PNG files: a classifier's confusion matrix and one-vs-rest ROC curves, a
data-efficiency study's metric against the label fraction, and several studies side by side.

Drawn with matplotlib's object API on the Agg canvas (no ``pyplot`` global state, no display needed) and
written atomically, so a killed evaluation never leaves a truncated PNG.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medssl3d.reports.results import pct, resolve_metric, summarise_results
from medssl3d.utils.io import atomic_write

__all__ = [
    "SPREADS",
    "check_spread",
    "plot_confusion_matrix",
    "plot_roc_curves",
    "plot_data_efficiency",
    "plot_comparison",
]

PathLike = str | os.PathLike

SPREADS: tuple[str, ...] = ("minmax", "std")
"""Bands of :func:`plot_data_efficiency`: min to max over repeats, or mean ± sample std."""


def check_spread(spread: Any) -> str:
    """``spread`` if it is one of :data:`SPREADS` (``ValueError`` otherwise)."""
    if spread not in SPREADS:
        raise ValueError(f"spread must be 'minmax' or 'std', got {spread!r}.")
    return spread


def _figure(size: tuple[float, float], dpi: int = 100) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: PathLike) -> Path:
    """Write ``fig`` cropped to its content (the classification figures)."""
    return atomic_write(path, lambda f: fig.savefig(f, format="png", bbox_inches="tight"))


def _save_laid_out(fig: Any, path: PathLike) -> Path:
    """Write ``fig`` at its own size after ``tight_layout`` (the study figures)."""
    fig.tight_layout()
    return atomic_write(Path(os.fspath(path)), lambda f: fig.savefig(f, format="png"))


def _names(class_names: Sequence[str] | None, n: int) -> list[str]:
    names = [str(i) for i in range(n)] if class_names is None else [str(c) for c in class_names]
    if len(names) != n:
        raise ValueError(f"class_names has {len(names)} names but there are {n} classes; give one name per class.")
    return names


def plot_confusion_matrix(
    confusion: Sequence[Sequence[int]] | np.ndarray,
    path: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    title: str = "Confusion matrix",
) -> Path:
    """Write a confusion matrix (rows: true class, columns: predicted) as a PNG.

    Cells are coloured by the row-normalised rate (recall per true class) and labelled with the count
    and the rate, so rare classes stay readable.

    Args:
        confusion: (C, C) counts.
        path: output PNG; parent folders are created.
        class_names: C names (default ``"0" .. "C-1"``).
        title: figure title.

    Returns:
        the path written.

    Raises:
        ValueError: ``confusion`` is not square or the names do not match.
    """
    cm = np.asarray(confusion, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion must be a square (C, C) matrix, got shape {cm.shape}.")
    n = cm.shape[0]
    names = _names(class_names, n)
    totals = cm.sum(axis=1, keepdims=True)
    rates = np.divide(cm, totals, out=np.zeros(cm.shape, dtype=np.float64), where=totals > 0)
    side = 1.2 + 0.7 * n
    fig = _figure((side + 1.0, side))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(n), labels=names, rotation=45, ha="right")
    ax.set_yticks(range(n), labels=names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{cm[i, j]}\n{rates[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if rates[i, j] > 0.5 else "black")
    return _save(fig, path)


def plot_roc_curves(
    y_true: Sequence[int] | np.ndarray,
    y_prob: Sequence[Sequence[float]] | np.ndarray,
    path: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    title: str = "ROC curves (one vs rest)",
) -> Path:
    """Write one-vs-rest ROC curves (one per class, AUC in the legend) as a PNG.

    A class absent from ``y_true`` (or the only class present) has no ROC curve; it is listed in the
    legend as "undefined". Multi-label data (several findings per image) gives (N, C) multi-hot ``y_true``:
    one curve per finding, its column against its scores.

    Args:
        y_true: (N,) integer labels in ``[0, C)``, or (N, C) 0/1 indicators (multi-label findings).
        y_prob: (N, C) class probabilities (or any scores).
        path: output PNG.
        class_names: C names.
        title: figure title.

    Returns:
        the path written.

    Raises:
        ValueError: inconsistent shapes.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    labels = np.asarray(y_true, dtype=np.int64)
    labels = labels if labels.ndim == 2 else labels.reshape(-1)
    prob = np.asarray(y_prob, dtype=np.float64)
    if prob.ndim != 2 or prob.shape[0] != labels.shape[0]:
        raise ValueError(f"y_prob must be (N, C) with N = {labels.shape[0]} labels, got shape {prob.shape}.")
    n = prob.shape[1]
    if labels.ndim == 2 and labels.shape != prob.shape:
        raise ValueError(f"(N, C) indicator labels must have the shape of y_prob {prob.shape}, got {labels.shape}.")
    names = _names(class_names, n)
    fig = _figure((5.5, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    for k in range(n):
        positive = labels[:, k] == 1 if labels.ndim == 2 else labels == k
        if positive.all() or not positive.any():
            ax.plot([], [], label=f"{names[k]} (undefined: {int(positive.sum())} of {labels.size} positive)")
            continue
        fpr, tpr, _ = roc_curve(positive, prob[:, k])
        ax.plot(fpr, tpr, label=f"{names[k]} (AUC {roc_auc_score(positive, prob[:, k]):.3f})")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _band(stats: Sequence[Mapping[str, float]], spread: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, low and high edge of the band (``spread``: min-max or ± std) of each fraction's statistics."""
    mean = np.array([s["mean"] for s in stats])
    if spread == "minmax":
        return mean, np.array([s["min"] for s in stats]), np.array([s["max"] for s in stats])
    std = np.array([s["std"] for s in stats])
    return mean, mean - std, mean + std


def plot_data_efficiency(
    rows: Sequence[Mapping[str, Any]],
    path: PathLike,
    metric: str = "auto",
    spread: str = "minmax",
    title: str = "",
) -> Path:
    """Plot ``metric`` against the label fraction (log axis, in percent), one line per method (PNG).

    Like Figures 3-4 of Taleb et al. 2020: the line is the mean over repeats, the band the spread.

    Args:
        rows: rows of a study's ``results.csv`` (:func:`medssl3d.reports.results.read_results`).
        path: output ``.png``; parent folders are created; written atomically.
        metric: the column to plot, or ``"auto"`` (:func:`medssl3d.reports.results.resolve_metric`).
        spread: ``"minmax"`` (band from min to max over repeats) or ``"std"`` (mean ± sample std).
        title: figure title (default: the metric name).

    Returns:
        the path written.

    Raises:
        ValueError: unknown ``spread`` or ``metric``.
    """
    check_spread(spread)
    from matplotlib.ticker import NullFormatter, NullLocator

    metric = resolve_metric(rows, metric)
    summary = summarise_results(rows, metric)
    fig = _figure((6.4, 4.4), dpi=150)
    ax = fig.add_subplot(1, 1, 1)
    fractions = sorted({f for by_fraction in summary.values() for f in by_fraction})
    for method, by_fraction in summary.items():
        xs = [f for f in sorted(by_fraction) if by_fraction[f]["n"] > 0]
        if not xs:
            continue
        mean, low, high = _band([by_fraction[f] for f in xs], spread)
        (line,) = ax.plot(xs, mean, marker="o", label=method)
        ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(fractions)
    ax.set_xticklabels([f"{pct(f)} %" for f in fractions])
    ax.set_xlabel("labelled training cases")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} vs label fraction ({'min-max' if spread == 'minmax' else '± std'} over repeats)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    return _save_laid_out(fig, path)


def plot_comparison(
    values: Mapping[str, Mapping[str, Sequence[float]]],
    methods: Sequence[str],
    metric: str,
    path: PathLike,
    title: str = "",
) -> Path:
    """Grouped bars (one group per method, one bar per study: the mean) with each repeat as a dot (PNG).

    Args:
        values: ``{study label: {method: [metric value of each repeat]}}``, as in
            :class:`medssl3d.reports.comparison.StudyComparison`.
        methods: the groups, in order.
        metric: the y-axis label.
        path: output ``.png``; written atomically.
        title: figure title (default: names the metric and what bars and dots are).

    Returns:
        the path written.
    """
    labels = list(values)
    fig = _figure((max(5.0, 1.6 * len(methods) + 1.5), 4.2), dpi=150)
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
    return _save_laid_out(fig, path)
