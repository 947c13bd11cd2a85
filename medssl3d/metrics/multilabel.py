"""Multi-label (several findings per image) classification metrics and their ignite wrappers.

A chest radiograph can show several findings at once (NIH ChestX-ray14, CheXpert, ChestMNIST: 14), so the
network has one sigmoid output per finding and each finding is scored on its own. The headline number is
the macro mean of the per-finding ROC-AUCs (threshold-free, the score the ChestX-ray14 and CheXpert papers
report); :func:`multilabel_metrics` adds per-finding average precision, F1 (macro and micro), subset
accuracy and Hamming loss at a probability threshold, and the per-finding prevalence, all through
scikit-learn. :class:`MultilabelRocAuc` is the ignite metric for best-model selection, and
:class:`~medssl3d.metrics.classification_writer.ClassificationMetricsWriter` with ``multi_label=True`` writes the
report of an evaluation.

References: Wang X. et al. 2017, "ChestX-ray8: Hospital-scale Chest X-ray Database and Benchmarks" (CVPR);
Irvin J. et al. 2019, "CheXpert" (AAAI); Yang J. et al. 2023, "MedMNIST v2" (ChestMNIST).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from medssl3d.metrics.epoch import StackedEpochMetric
from medssl3d.metrics.outputs import as_numpy
from medssl3d.utils.checks import check_probability

__all__ = ["multilabel_metrics", "roc_auc_multilabel", "MultilabelRocAuc", "MultilabelAccuracy", "multi_hot"]


def multi_hot(y_true: Any, num_findings: int | None = None) -> np.ndarray:
    """(N, C) int64 multi-hot labels from (N, C) 0/1 values (ints, floats or bools); (N,) is read as C = 1.

    Args:
        y_true: the labels (array, tensor, or list of per-item (C,) tensors).
        num_findings: C, checked when given.

    Returns:
        the (N, C) int64 array.

    Raises:
        ValueError: values other than 0 and 1, more than two dimensions, or not C columns.
    """
    arr = as_numpy(y_true, np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"multi-label labels must be (N, C) multi-hot rows, got shape {arr.shape}.")
    bad = np.unique(arr[(arr != 0) & (arr != 1)])
    if bad.size:
        raise ValueError(
            f"multi-label labels must be 0 or 1, got {bad[:5].tolist()}; pass multi-hot rows (one column per finding)."
        )
    if num_findings is not None and arr.shape[1] != num_findings:
        raise ValueError(f"labels have {arr.shape[1]} columns but there are {num_findings} findings.")
    return arr.astype(np.int64)


def _scores(y_prob: Any, shape: tuple[int, int]) -> np.ndarray:
    prob = as_numpy(y_prob, np.float64)
    if prob.ndim == 1:
        prob = prob.reshape(-1, 1)
    if prob.shape != shape:
        raise ValueError(f"y_prob must have the shape of the labels {shape} (N images, C findings), got {prob.shape}.")
    if not np.all(np.isfinite(prob)):
        raise ValueError("y_prob holds NaN or infinite scores.")
    return prob


def _defined(t: np.ndarray) -> np.ndarray:
    """(C,) bool: findings with both positive and negative images, whose ROC-AUC is defined."""
    positives = t.sum(axis=0)
    return (positives > 0) & (positives < t.shape[0])


def _auc_per_finding(t: np.ndarray, prob: np.ndarray) -> list[float | None]:
    from sklearn.metrics import roc_auc_score

    defined = _defined(t)
    return [float(roc_auc_score(t[:, k], prob[:, k])) if defined[k] else None for k in range(t.shape[1])]


def _mean_defined(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def roc_auc_multilabel(y_true: Any, y_prob: Any) -> float:
    """Macro mean ROC-AUC over the findings whose AUC is defined (scikit-learn, one AUC per column).

    Args:
        y_true: (N, C) multi-hot labels.
        y_prob: (N, C) scores (sigmoid probabilities or logits: the AUC depends only on their order).

    Returns:
        the mean AUC over the findings with both positive and negative images; NaN when no finding has both.

    Raises:
        ValueError: labels that are not 0/1, or shapes that differ.

    Example:
        >>> roc_auc_multilabel([[1, 0], [0, 1], [1, 1], [0, 0]], [[0.9, 0.2], [0.3, 0.4], [0.6, 0.1], [0.2, 0.3]])
        0.75
    """
    t = multi_hot(y_true)
    value = _mean_defined(_auc_per_finding(t, _scores(y_prob, t.shape)))
    return math.nan if value is None else value


def multilabel_metrics(
    y_true: Any,
    y_prob: Any,
    class_names: Sequence[str] | None = None,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Every multi-label metric of one evaluation, as a JSON-able dict (scikit-learn).

    Threshold-free scores (ROC-AUC, average precision) use ``y_prob`` as it is; the thresholded ones
    predict a finding where ``y_prob >= threshold``, so pass probabilities (after a sigmoid).

    Args:
        y_true: (N, C) multi-hot labels (0/1).
        y_prob: (N, C) finding probabilities.
        class_names: C finding names used as keys of the per-finding entries (default ``"0" .. "C-1"``).
        threshold: probability from which a finding is predicted, in [0, 1].

    Returns:
        ``{"auc"`` (= ``"roc_auc_macro"``, the headline picked by ``scripts/data_efficiency.py --metric auto``),
        ``"roc_auc_macro"`` (mean ROC-AUC over the findings where it is defined, i.e. with positive and negative
        images; ``None`` if none is), ``"roc_auc_micro"`` (one AUC over all (image, finding) pairs),
        ``"average_precision_macro"`` (mean AP over the findings with a positive image), ``"f1_macro",
        "f1_micro", "precision_macro", "recall_macro"`` (scikit-learn's averages over all C findings, 0 for 0/0),
        ``"subset_accuracy"`` (exact match of all C findings), ``"hamming_loss"`` (fraction of wrong
        (image, finding) decisions), ``"roc_auc_per_class", "average_precision_per_class", "f1_per_class",
        "prevalence_per_class"`` (fraction of positive images), ``"support_per_class"`` (positive images;
        all ``{name: value}``, ``None`` where undefined), ``"num_findings_with_auc", "threshold",
        "multi_label"`` (True), ``"class_names", "num_classes"`` (C), ``"num_samples"}``.

    Raises:
        ValueError: empty input, labels that are not 0/1, shapes that differ, a bad threshold, or not one
            name per finding.

    Example:
        >>> m = multilabel_metrics([[1, 0], [0, 1], [1, 1], [0, 0]], [[0.9, 0.2], [0.3, 0.4], [0.6, 0.1], [0.2, 0.3]],
        ...                        ["effusion", "mass"])
        >>> m["roc_auc_per_class"], m["subset_accuracy"]
        ({'effusion': 1.0, 'mass': 0.5}, 0.5)
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    t, prob, threshold, names = _checked_findings(y_true, y_prob, class_names, threshold)
    n = t.shape[1]
    pred = (prob >= threshold).astype(np.int64)
    auc = _auc_per_finding(t, prob)
    positives = t.sum(axis=0)
    ap = [float(average_precision_score(t[:, k], prob[:, k])) if positives[k] else None for k in range(n)]
    flat = t.reshape(-1)
    micro_auc = float(roc_auc_score(flat, prob.reshape(-1))) if 0 < flat.sum() < flat.size else None
    decisions = _thresholded_scores(t, pred)
    macro = _mean_defined(auc)
    return {
        "auc": macro,
        "roc_auc_macro": macro,
        "roc_auc_micro": micro_auc,
        "average_precision_macro": _mean_defined(ap),
        "f1_macro": decisions["f1_macro"],
        "f1_micro": decisions["f1_micro"],
        "precision_macro": decisions["precision_macro"],
        "recall_macro": decisions["recall_macro"],
        "subset_accuracy": decisions["subset_accuracy"],
        "hamming_loss": decisions["hamming_loss"],
        "roc_auc_per_class": dict(zip(names, auc)),
        "average_precision_per_class": dict(zip(names, ap)),
        "f1_per_class": dict(zip(names, decisions["f1_per_class"])),
        "prevalence_per_class": dict(zip(names, (positives / t.shape[0]).tolist())),
        "support_per_class": dict(zip(names, positives.astype(int).tolist())),
        "num_findings_with_auc": int(sum(a is not None for a in auc)),
        "threshold": float(threshold),
        "multi_label": True,
        "class_names": names,
        "num_classes": n,
        "num_samples": int(t.shape[0]),
    }


def _checked_findings(
    y_true: Any, y_prob: Any, class_names: Sequence[str] | None, threshold: float
) -> tuple[np.ndarray, np.ndarray, float, list[str]]:
    """Check the inputs of :func:`multilabel_metrics`.

    Returns:
        ((N, C) multi-hot labels, (N, C) scores, the threshold, C finding names).
    """
    t = multi_hot(y_true)
    if t.shape[0] == 0:
        raise ValueError("y_true is empty: no predictions to score.")
    prob = _scores(y_prob, t.shape)
    threshold = check_probability("threshold", threshold)
    n = t.shape[1]
    names = [str(i) for i in range(n)] if class_names is None else [str(c) for c in class_names]
    if len(names) != n:
        raise ValueError(f"class_names has {len(names)} names but there are {n} findings; give one name per finding.")
    return t, prob, threshold, names


def _thresholded_scores(t: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """The scores of the (N, C) 0/1 decisions ``pred`` against the labels ``t`` (scikit-learn).

    Returns:
        ``{"f1_macro", "f1_micro", "precision_macro", "recall_macro"`` (averages over all C findings, 0 for 0/0),
        ``"subset_accuracy", "hamming_loss", "f1_per_class"}`` (a list of C floats).
    """
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss, precision_recall_fscore_support

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 0/0 precision or recall of a finding never predicted / never present
        precision_m, recall_m, f1_m, _ = precision_recall_fscore_support(t, pred, average="macro", zero_division=0)
        f1_micro = float(f1_score(t, pred, average="micro", zero_division=0))
        f1_each = f1_score(t, pred, average=None, zero_division=0)
    return {
        "f1_macro": float(f1_m),
        "f1_micro": f1_micro,
        "precision_macro": float(precision_m),
        "recall_macro": float(recall_m),
        "subset_accuracy": float(accuracy_score(t, pred)),
        "hamming_loss": float(hamming_loss(t, pred)),
        "f1_per_class": np.asarray(f1_each, dtype=np.float64).tolist(),
    }


class MultilabelRocAuc(StackedEpochMetric):
    """Macro mean per-finding ROC-AUC over an evaluation (:func:`roc_auc_multilabel`), as an ignite metric.

    The key metric for best-model selection of a multi-label classifier; it equals ``roc_auc_macro`` of
    :func:`multilabel_metrics`. Findings without both positive and negative images in the evaluated part
    are left out of the mean; NaN (never "best") when no finding has both. Takes MONAI's decollated lists
    of per-item (C,) scores and multi-hot labels; under ``torch.distributed`` every rank's items are
    gathered (ignite ``EpochMetric``).

    Args:
        output_transform: maps the engine output to ``(y_pred, y)``: (N, C) scores (sigmoid probabilities or
            logits) and (N, C) multi-hot labels; default reads ``pred`` and ``label``.
        device: where the predictions are stored.

    Example::

        "key_metric": {"val_roc_auc": {"_target_": "medssl3d.metrics.MultilabelRocAuc"}}
    """

    multi_hot = True

    def __init__(
        self, output_transform: Callable[[Any], Any] | None = None, device: str | torch.device = "cpu"
    ) -> None:
        def compute(y_pred: torch.Tensor, y: torch.Tensor) -> float:
            scores, labels = y_pred.detach().cpu().numpy(), y.detach().cpu().numpy()
            return roc_auc_multilabel(labels.reshape(labels.shape[0], -1), scores.reshape(scores.shape[0], -1))

        super().__init__(compute, output_transform, device)


class MultilabelAccuracy(StackedEpochMetric):
    """Fraction of correct (image, finding) decisions at ``threshold`` (1 - Hamming loss), as an ignite metric.

    Logged beside :class:`MultilabelRocAuc` during validation. Subset (exact-match) accuracy, reported in
    ``metrics.json``, is too strict to follow training with 14 findings.

    Args:
        threshold: probability from which a finding is predicted (the outputs must be probabilities, e.g.
            after ``Activationsd(sigmoid=True)``).
        output_transform: maps the engine output to ``(y_pred, y)``; default reads ``pred`` and ``label``.
        device: where the predictions are stored.
    """

    multi_hot = True

    def __init__(
        self,
        threshold: float = 0.5,
        output_transform: Callable[[Any], Any] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.threshold = float(threshold)

        def compute(y_pred: torch.Tensor, y: torch.Tensor) -> float:
            pred = (y_pred.detach().cpu() >= self.threshold).reshape(y_pred.shape[0], -1)
            return float((pred == (y.detach().cpu().reshape(y.shape[0], -1) > 0.5)).float().mean())

        super().__init__(compute, output_transform, device)
