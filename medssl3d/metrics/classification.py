"""Classification metrics: quadratic weighted kappa (QWK) and friends (scikit-learn), and their ignite metrics.

Diabetic-retinopathy grading is ordinal (grades 0-4), so the headline number is Cohen's kappa with
quadratic weights (QWK), the Kaggle DR / APTOS score and the one Taleb et al. 2020 ("3D Self-Supervised
Methods for Medical Imaging", NeurIPS) report for fundus fine-tuning; a one-grade miss costs much less
than a four-grade miss. :func:`classification_metrics` adds accuracy, balanced accuracy, macro
precision/recall/F1, linear and unweighted kappa, per-class recall, one-vs-rest ROC-AUC and the
confusion matrix, all through scikit-learn. :class:`QuadraticKappa` is an ignite ``EpochMetric`` to use
as the key validation metric (best-model selection);
:class:`~medssl3d.metrics.classification_writer.ClassificationMetricsWriter` collects the predictions of an
evaluation and writes ``metrics.json``, ``predictions.csv`` and the figures.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from medssl3d.metrics.epoch import StackedEpochMetric
from medssl3d.metrics.outputs import as_numpy, class_indices, none_if_nan

__all__ = [
    "classification_metrics",
    "cohen_kappa",
    "QuadraticKappa",
    "MulticlassAccuracy",
    "MulticlassRocAuc",
    "roc_auc_ovr",
]

logger = logging.getLogger(__name__)

_KAPPA_WEIGHTS = (None, "linear", "quadratic")


def _check_range(name: str, labels: np.ndarray, num_classes: int) -> None:
    bad = np.unique(labels[(labels < 0) | (labels >= num_classes)])
    if bad.size:
        raise ValueError(
            f"{name} holds classes {bad.tolist()} outside [0, {num_classes - 1}] for num_classes={num_classes}."
        )


def cohen_kappa(y_true: Any, y_pred: Any, num_classes: int | None = None, weights: str | None = "quadratic") -> float:
    """Cohen's kappa of integer labels (scikit-learn), NaN when undefined.

    Kappa is undefined (0/0) exactly when labels and predictions all name one and the same class.

    Args:
        y_true: (N,) true classes.
        y_pred: (N,) predicted classes.
        num_classes: C, so the weights span ``0..C-1`` even when some grades are absent (default: inferred).
        weights: ``"quadratic"`` (QWK), ``"linear"`` or ``None`` (unweighted).

    Returns:
        kappa in [-1, 1], or NaN.

    Raises:
        ValueError: unknown ``weights``, different lengths, or classes outside ``[0, C)``.
    """
    from sklearn.metrics import cohen_kappa_score

    if weights not in _KAPPA_WEIGHTS:
        raise ValueError(f"weights must be one of {list(_KAPPA_WEIGHTS)}, got {weights!r}.")
    t, p = class_indices(y_true), class_indices(y_pred)
    if t.shape != p.shape or t.size == 0:
        raise ValueError(f"y_true and y_pred must be non-empty and of equal length, got {t.size} and {p.size}.")
    n = int(num_classes) if num_classes is not None else int(max(t.max(), p.max())) + 1
    _check_range("y_true", t, n)
    _check_range("y_pred", p, n)
    if np.unique(np.concatenate([t, p])).size < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(cohen_kappa_score(t, p, labels=list(range(n)), weights=weights))


def classification_metrics(
    y_true: Any,
    y_pred: Any = None,
    y_prob: Any = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Every classification metric of one evaluation, as a JSON-able dict (scikit-learn).

    Args:
        y_true: (N,) true classes (or one-hot (N, C)).
        y_pred: (N,) predicted classes; default ``argmax(y_prob)``.
        y_prob: (N, C) class probabilities, needed for ROC-AUC (``None``: AUCs are ``None``).
        num_classes: C (default: ``y_prob``'s width, else ``len(class_names)``, else the largest class + 1).
        class_names: C names used as keys of the per-class entries (default ``"0" .. "C-1"``).

    Returns:
        ``{"qwk"`` (quadratic weighted kappa), ``"accuracy", "balanced_accuracy"`` (mean recall over the classes
        present in ``y_true``), ``"kappa_linear", "kappa"`` (unweighted), ``"precision_macro", "recall_macro",
        "f1_macro"`` (scikit-learn's macro over the classes in ``y_true`` or ``y_pred``, 0 for 0/0),
        ``"roc_auc_ovr"`` (mean one-vs-rest AUC; ``None`` unless every class has positives and negatives),
        ``"recall_per_class", "roc_auc_per_class", "support_per_class"`` ({name: value}; ``None`` where
        undefined), ``"confusion_matrix"`` (rows true, columns predicted), ``"class_names", "num_classes",
        "num_samples"}``. Undefined values (a kappa of one class only) are ``None``.

    Raises:
        ValueError: empty input, inconsistent shapes, classes outside ``[0, C)``, or neither ``y_pred`` nor
            ``y_prob``.

    Example:
        >>> m = classification_metrics([0, 1, 2, 2], [0, 2, 2, 1], num_classes=3)
        >>> m["accuracy"], m["recall_per_class"]
        (0.5, {'0': 1.0, '1': 0.0, '2': 0.5})
    """
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support

    t, p, prob, n, names = _checked_classes(y_true, y_pred, y_prob, num_classes, class_names)
    cm = confusion_matrix(t, p, labels=list(range(n)))
    support = cm.sum(axis=1)
    recall = [float(cm[k, k] / support[k]) if support[k] else None for k in range(n)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true", 0/0 precision
        balanced = float(balanced_accuracy_score(t, p))
        precision_m, recall_m, f1_m, _ = precision_recall_fscore_support(t, p, average="macro", zero_division=0)
    auc = _auc_per_class(t, prob, n)
    roc_auc_ovr = float(np.mean(auc)) if all(a is not None for a in auc) else None

    return {
        "qwk": none_if_nan(cohen_kappa(t, p, n, "quadratic")),
        "accuracy": float(np.mean(t == p)),
        "balanced_accuracy": balanced,
        "kappa_linear": none_if_nan(cohen_kappa(t, p, n, "linear")),
        "kappa": none_if_nan(cohen_kappa(t, p, n, None)),
        "precision_macro": float(precision_m),
        "recall_macro": float(recall_m),
        "f1_macro": float(f1_m),
        "roc_auc_ovr": roc_auc_ovr,
        "recall_per_class": dict(zip(names, recall)),
        "roc_auc_per_class": dict(zip(names, auc)),
        "support_per_class": dict(zip(names, support.astype(int).tolist())),
        "confusion_matrix": cm.astype(int).tolist(),
        "class_names": names,
        "num_classes": n,
        "num_samples": int(t.size),
    }


def _checked_classes(
    y_true: Any, y_pred: Any, y_prob: Any, num_classes: int | None, class_names: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int, list[str]]:
    """Check the inputs of :func:`classification_metrics` and complete the defaults.

    Returns:
        (true classes, predicted classes, (N, C) probabilities or ``None``, number of classes C, C class names).
    """
    t = class_indices(y_true)
    if t.size == 0:
        raise ValueError("y_true is empty: no predictions to score.")
    prob = None
    if y_prob is not None:
        prob = as_numpy(y_prob, np.float64)
        if prob.ndim != 2 or prob.shape[0] != t.size:
            raise ValueError(f"y_prob must be (N, C) with N = {t.size} labels, got shape {prob.shape}.")
    if y_pred is None:
        if prob is None:
            raise ValueError("pass y_pred (classes) and/or y_prob (N, C probabilities).")
        p = prob.argmax(axis=1).astype(np.int64)
    else:
        p = class_indices(y_pred)
    if p.shape != t.shape:
        raise ValueError(f"y_pred has {p.size} entries but y_true has {t.size}.")
    if num_classes is None:
        if prob is not None:
            num_classes = prob.shape[1]
        else:
            num_classes = len(class_names) if class_names else int(max(t.max(), p.max())) + 1
    n = int(num_classes)
    if prob is not None and prob.shape[1] != n:
        raise ValueError(f"y_prob has {prob.shape[1]} columns but num_classes={n}.")
    names = [str(i) for i in range(n)] if class_names is None else [str(c) for c in class_names]
    if len(names) != n:
        raise ValueError(f"class_names has {len(names)} names but num_classes={n}; give one name per class.")
    _check_range("y_true", t, n)
    _check_range("y_pred", p, n)
    return t, p, prob, n, names


def _auc_per_class(t: np.ndarray, prob: np.ndarray | None, n: int) -> list[float | None]:
    """One-vs-rest ROC-AUC of each class; ``None`` without ``prob`` or for a class lacking positives or negatives."""
    from sklearn.metrics import roc_auc_score

    auc: list[float | None] = [None] * n
    if prob is not None:
        for k in range(n):
            positive = t == k
            if positive.any() and not positive.all():
                auc[k] = float(roc_auc_score(positive, prob[:, k]))
    return auc


def _pred_classes(y_pred: torch.Tensor) -> np.ndarray:
    """Classes from (N, C) scores (argmax) or (N,) class indices."""
    y_pred = y_pred.detach().cpu()
    return (y_pred.argmax(dim=1) if y_pred.ndim == 2 else y_pred.round()).numpy().astype(np.int64)


class QuadraticKappa(StackedEpochMetric):
    """Cohen's kappa (quadratic weights by default) over a whole evaluation, as an ignite metric.

    Use as ``key_val_metric`` of a MONAI ``SupervisedEvaluator`` for best-model selection by QWK.
    ``output_transform`` must give ``(y_pred, y)``: scores (N, C) (arg-maxed) or classes (N,), and labels
    (N,) / (N, 1) / one-hot; MONAI's decollated lists of per-item tensors are stacked. Under
    ``torch.distributed`` the predictions are gathered from every rank (ignite ``EpochMetric``). The value
    is NaN when undefined (every label and prediction the same class).

    Args:
        num_classes: C, so the kappa weights span all grades (default: inferred from the data).
        weights: ``"quadratic"``, ``"linear"`` or ``None``.
        output_transform: maps the engine output to ``(y_pred, y)``; default
            ``monai.handlers.from_engine(["pred", "label"])``.
        device: where the predictions are stored.

    Example::

        "key_metric": {"val_qwk": {"_target_": "medssl3d.metrics.QuadraticKappa", "num_classes": 5}}
    """

    def __init__(
        self,
        num_classes: int | None = None,
        weights: str | None = "quadratic",
        output_transform: Callable[[Any], Any] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if weights not in _KAPPA_WEIGHTS:
            raise ValueError(f"weights must be one of {list(_KAPPA_WEIGHTS)}, got {weights!r}.")
        self.num_classes = num_classes
        self.weights = weights

        def compute(y_pred: torch.Tensor, y: torch.Tensor) -> float:
            return cohen_kappa(y.cpu().numpy(), _pred_classes(y_pred), self.num_classes, self.weights)

        super().__init__(compute, output_transform, device)


class MulticlassAccuracy(StackedEpochMetric):
    """Fraction of correct argmax predictions over an evaluation (takes MONAI's decollated lists).

    Args:
        output_transform: maps the engine output to ``(y_pred, y)``; default reads ``pred`` and ``label``.
        device: where the predictions are stored.
    """

    def __init__(
        self, output_transform: Callable[[Any], Any] | None = None, device: str | torch.device = "cpu"
    ) -> None:
        def compute(y_pred: torch.Tensor, y: torch.Tensor) -> float:
            return float(np.mean(_pred_classes(y_pred) == y.cpu().numpy()))

        super().__init__(compute, output_transform, device)


def roc_auc_ovr(y_true: Any, y_prob: Any) -> float:
    """Mean one-vs-rest ROC-AUC of (N, C) class scores; for C = 2 the AUC of class 1 (scikit-learn).

    Args:
        y_true: (N,) classes in ``[0, C)``.
        y_prob: (N, C) scores (probabilities or logits; AUC depends only on their order per class).

    Returns:
        the AUC, NaN when undefined (a class with no positive or no negative item).

    Example:
        >>> roc_auc_ovr([0, 0, 1, 1], [[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8]])
        0.75
    """
    from sklearn.metrics import roc_auc_score

    t = class_indices(y_true)
    prob = as_numpy(y_prob, np.float64)
    if prob.ndim != 2 or prob.shape[0] != t.size:
        raise ValueError(f"y_prob must be (N, C) with N = {t.size} labels, got shape {prob.shape}.")
    aucs = []
    for k in range(prob.shape[1]):
        positive = t == k
        if not positive.any() or positive.all():
            return math.nan
        aucs.append(float(roc_auc_score(positive, prob[:, k])))
    return float(np.mean(aucs))


class MulticlassRocAuc(StackedEpochMetric):
    """Mean one-vs-rest ROC-AUC over an evaluation (binary: the AUC of class 1), as an ignite metric.

    The threshold-free score for best-model selection on binary or imbalanced tasks (normal/pneumonia);
    it equals ``roc_auc_ovr`` of :func:`classification_metrics`. NaN (never "best") when some class has no
    positive or no negative item in the evaluated part.

    Args:
        output_transform: maps the engine output to ``(y_pred, y)``: (N, C) scores and labels; default reads
            ``pred`` and ``label``.
        device: where the predictions are stored.

    Example::

        "key_metric": {"val_roc_auc": {"_target_": "medssl3d.metrics.MulticlassRocAuc"}}
    """

    def __init__(
        self, output_transform: Callable[[Any], Any] | None = None, device: str | torch.device = "cpu"
    ) -> None:
        def compute(y_pred: torch.Tensor, y: torch.Tensor) -> float:
            scores = y_pred.detach().cpu()
            if scores.ndim != 2:
                raise ValueError(f"MulticlassRocAuc needs (N, C) class scores, got shape {tuple(scores.shape)}.")
            return roc_auc_ovr(y.cpu().numpy(), scores.numpy())

        super().__init__(compute, output_transform, device)

