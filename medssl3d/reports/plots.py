"""Figures for classification reports: a confusion matrix and one-vs-rest ROC curves, as PNG files.

Drawn with matplotlib's object API on the Agg canvas (no ``pyplot`` global state, no display needed) and
written atomically, so a killed evaluation never leaves a truncated PNG.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medssl3d.utils.io import atomic_write

__all__ = ["plot_confusion_matrix", "plot_roc_curves"]


def _figure(size: tuple[float, float]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike) -> Path:
    return atomic_write(path, lambda f: fig.savefig(f, format="png", bbox_inches="tight"))


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
