"""Classification metrics: quadratic weighted kappa (QWK) and friends, an ignite QWK metric, a report writer.

Diabetic-retinopathy grading is ordinal (grades 0-4), so the headline number is Cohen's kappa with
quadratic weights (QWK), the Kaggle DR / APTOS score and the one Taleb et al. 2020 ("3D Self-Supervised
Methods for Medical Imaging", NeurIPS) report for fundus fine-tuning; a one-grade miss costs much less
than a four-grade miss. :func:`classification_metrics` adds accuracy, balanced accuracy, macro
precision/recall/F1, linear and unweighted kappa, per-class recall, one-vs-rest ROC-AUC and the
confusion matrix, all through scikit-learn. :class:`QuadraticKappa` is an ignite ``EpochMetric`` to use
as the key validation metric (best-model selection); :class:`ClassificationMetricsWriter` collects the
predictions of an evaluation and writes ``metrics.json``, ``predictions.csv`` and the figures.
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from ignite.metrics import EpochMetric

from medssl3d.engines.distributed import is_main_process
from medssl3d.engines.predictions import batch_sources
from medssl3d.utils.io import atomic_write, atomic_write_json

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = [
    "classification_metrics",
    "cohen_kappa",
    "QuadraticKappa",
    "MulticlassAccuracy",
    "MulticlassRocAuc",
    "roc_auc_ovr",
    "ClassificationMetricsWriter",
]

logger = logging.getLogger(__name__)

_KAPPA_WEIGHTS = (None, "linear", "quadratic")
# ignite >= 0.5.1 can hand a metric a batch's lists in one call instead of one item at a time
_NO_UNROLLING = (
    {"skip_unrolling": True} if "skip_unrolling" in inspect.signature(EpochMetric.__init__).parameters else {}
)


def _as_numpy(value: Any, dtype: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().astype(dtype)
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
        return torch.stack([torch.as_tensor(v).detach().cpu() for v in value]).numpy().astype(dtype)
    return np.asarray(value, dtype=dtype)


def _to_labels(y_true: Any) -> np.ndarray:
    """(N,) integer labels from (N,), (N, 1) or one-hot (N, C) input."""
    arr = _as_numpy(y_true, np.float64)
    if arr.ndim == 2 and arr.shape[1] > 1:
        arr = arr.argmax(axis=1)
    arr = arr.reshape(-1)
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise ValueError("labels must be integer class indices (or one-hot rows); got non-integer values.")
    return arr.astype(np.int64)


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
    t, p = _to_labels(y_true), _to_labels(y_pred)
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


def _none_if_nan(value: float) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


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
    from sklearn.metrics import (
        balanced_accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    t = _to_labels(y_true)
    if t.size == 0:
        raise ValueError("y_true is empty: no predictions to score.")
    prob = None
    if y_prob is not None:
        prob = _as_numpy(y_prob, np.float64)
        if prob.ndim != 2 or prob.shape[0] != t.size:
            raise ValueError(f"y_prob must be (N, C) with N = {t.size} labels, got shape {prob.shape}.")
    if y_pred is None:
        if prob is None:
            raise ValueError("pass y_pred (classes) and/or y_prob (N, C probabilities).")
        p = prob.argmax(axis=1).astype(np.int64)
    else:
        p = _to_labels(y_pred)
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

    cm = confusion_matrix(t, p, labels=list(range(n)))
    support = cm.sum(axis=1)
    recall = [float(cm[k, k] / support[k]) if support[k] else None for k in range(n)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true", 0/0 precision
        balanced = float(balanced_accuracy_score(t, p))
        precision_m, recall_m, f1_m, _ = precision_recall_fscore_support(t, p, average="macro", zero_division=0)

    auc: list[float | None] = [None] * n
    if prob is not None:
        for k in range(n):
            positive = t == k
            if positive.any() and not positive.all():
                auc[k] = float(roc_auc_score(positive, prob[:, k]))
    roc_auc_ovr = float(np.mean(auc)) if all(a is not None for a in auc) else None

    return {
        "qwk": _none_if_nan(cohen_kappa(t, p, n, "quadratic")),
        "accuracy": float(np.mean(t == p)),
        "balanced_accuracy": balanced,
        "kappa_linear": _none_if_nan(cohen_kappa(t, p, n, "linear")),
        "kappa": _none_if_nan(cohen_kappa(t, p, n, None)),
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


class _StackedEpochMetric(EpochMetric):
    """``EpochMetric`` that also takes MONAI's decollated output: lists of per-item (C,) / () tensors.

    Subclasses pass ``skip_unrolling=True`` (where ignite has it) so a batch's lists are stacked here in
    one step instead of ignite feeding them one item at a time. With ``multi_hot`` (multi-label metrics) the
    labels stay (N, C) float rows instead of becoming class indices.
    """

    multi_hot = False

    def __init__(
        self,
        compute_fn: Callable[[torch.Tensor, torch.Tensor], float],
        output_transform: Callable[[Any], Any] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        """``compute_fn(y_pred, y)`` on the stacked epoch; the output transform defaults to ``pred``/``label``."""
        super().__init__(
            compute_fn,
            output_transform=output_transform or _from_pred_label,
            check_compute_fn=False,
            device=device,
            **_NO_UNROLLING,
        )

    def update(self, output: Sequence[Any]) -> None:
        y_pred, y = output
        if isinstance(y_pred, (list, tuple)):
            y_pred = torch.stack([torch.as_tensor(v) for v in y_pred])
        if isinstance(y, (list, tuple)):
            y = torch.stack([torch.as_tensor(v) for v in y])
        y = torch.as_tensor(y)
        if self.multi_hot:
            y_pred = torch.as_tensor(y_pred).float()
            super().update((y_pred.reshape(y_pred.shape[0], -1), y.float().reshape(y.shape[0], -1)))
            return
        if y.ndim == 2 and y.shape[1] > 1:  # one-hot labels
            y = y.argmax(dim=1)
        super().update((torch.as_tensor(y_pred).float(), y.reshape(-1).long()))


def _pred_classes(y_pred: torch.Tensor) -> np.ndarray:
    """Classes from (N, C) scores (argmax) or (N,) class indices."""
    y_pred = y_pred.detach().cpu()
    return (y_pred.argmax(dim=1) if y_pred.ndim == 2 else y_pred.round()).numpy().astype(np.int64)


class QuadraticKappa(_StackedEpochMetric):
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


class MulticlassAccuracy(_StackedEpochMetric):
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

    t = _to_labels(y_true)
    prob = _as_numpy(y_prob, np.float64)
    if prob.ndim != 2 or prob.shape[0] != t.size:
        raise ValueError(f"y_prob must be (N, C) with N = {t.size} labels, got shape {prob.shape}.")
    aucs = []
    for k in range(prob.shape[1]):
        positive = t == k
        if not positive.any() or positive.all():
            return math.nan
        aucs.append(float(roc_auc_score(positive, prob[:, k])))
    return float(np.mean(aucs))


class MulticlassRocAuc(_StackedEpochMetric):
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


def _from_pred_label(output: Any) -> tuple[Any, Any]:
    from monai.handlers import from_engine

    return from_engine(["pred", "label"])(output)


def _sigmoid_probabilities(scores: np.ndarray) -> np.ndarray:
    """Multi-label scores already in [0, 1] are kept; anything else (logits) goes through a sigmoid."""
    if scores.size and np.all(scores >= 0) and np.all(scores <= 1):
        return scores
    return 0.5 * (1.0 + np.tanh(0.5 * scores))  # the logistic function, without overflow


def _probabilities(scores: np.ndarray) -> np.ndarray:
    """Rows that are already probabilities are kept; anything else (logits) goes through softmax."""
    if scores.size and np.all(scores >= 0) and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3):
        return scores
    shifted = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


class ClassificationMetricsWriter:
    """Collect an evaluation's predictions; write ``metrics.json``, ``predictions.csv`` and the figures.

    Attach to a MONAI ``SupervisedEvaluator`` whose (decollated) output holds per-item class scores
    ``pred`` (C,) (probabilities, e.g. after ``Activationsd(softmax=True)``; logits are soft-maxed here) and
    ``label``. On ``Events.COMPLETED`` it writes, in ``output_dir``:

    - ``metrics.json``: :func:`classification_metrics` (QWK first), ``"metrics"`` (the engine's other
      scalar metrics, e.g. the key metric) and ``extra``, atomically, NaN as ``null``;
    - ``predictions.csv``: one row per item: source file (the ``source_key`` of the batch, e.g. the image
      path kept by :class:`~medssl3d.transforms.classification.LoadClassificationImaged`), label, predicted
      class and the C probabilities;
    - ``confusion_matrix.png`` and ``roc_curves.png`` (:mod:`medssl3d.reports.plots`), with ``plots``.

    With ``multi_label`` (several findings per image: ``pred`` holds C sigmoid probabilities, logits are
    passed through a sigmoid here, and ``label`` C multi-hot values) ``metrics.json`` holds
    :func:`~medssl3d.metrics.multilabel.multilabel_metrics` (macro ROC-AUC first), ``predictions.csv`` one
    ``label_<finding>``, ``pred_<finding>`` (at ``threshold``) and ``prob_<finding>`` column per finding, and
    ``roc_curves.png`` one ROC curve per finding; there is no confusion matrix.

    Under ``torch.distributed`` every rank's items are gathered and rank 0 writes.

    Args:
        output_dir: folder for the files (created).
        class_names: C names (default ``"0" .. "C-1"``).
        output_transform: engine output -> ``(preds, labels)``; default ``from_engine(["pred", "label"])``.
        source_key: key of each item's source name in ``engine.state.batch``; ``None`` numbers the rows.
        metrics_file: name of the JSON file.
        plots: write the PNG figures.
        extra: JSON-able entries merged into the top level of ``metrics.json`` (checkpoint, split ...).
        multi_label: score multi-label findings (see above); also takes the strings ``"true"``/``"false"``.
        threshold: multi-label only: probability from which a finding is predicted.

    Raises:
        TypeError: ``extra`` is not JSON-able (checked in ``__init__``).
        ValueError: a bad ``threshold``; when collecting, multi-label labels that are not 0/1; when writing,
            no item was evaluated, or the scores do not match ``class_names``.

    Example::

        ClassificationMetricsWriter("out", ["No DR", "Mild", "Moderate", "Severe", "PDR"]).attach(evaluator)
    """

    def __init__(
        self,
        output_dir: str | os.PathLike = ".",
        class_names: Sequence[str] | None = None,
        output_transform: Callable[[Any], Any] | None = None,
        source_key: str | None = "source",
        metrics_file: str = "metrics.json",
        plots: bool = True,
        extra: Mapping[str, Any] | None = None,
        multi_label: bool = False,
        threshold: float = 0.5,
    ) -> None:
        from medssl3d.utils.flags import as_flag

        if isinstance(class_names, str):
            raise TypeError(f"class_names must be a sequence of names, got the string {class_names!r}.")
        self.output_dir = Path(output_dir)
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.output_transform = output_transform or _from_pred_label
        self.source_key = source_key
        self.metrics_file = metrics_file
        self.plots = bool(plots)
        self.extra = dict(extra or {})
        self.multi_label = as_flag(multi_label, "multi_label")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a probability in [0, 1], got {threshold!r}.")
        self.threshold = float(threshold)
        try:
            json.dumps(self.extra, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"extra must be JSON-able (convert paths with str()), got {self.extra!r}: {e}") from e
        self.reset()

    def reset(self, engine: Engine | None = None) -> None:
        self._scores: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._sources: list[str] = []

    def attach(self, engine: Engine) -> None:
        """Register on ``engine``: reset at ``STARTED``, collect at ``ITERATION_COMPLETED``, write at ``COMPLETED``."""
        from ignite.engine import Events

        if not engine.has_event_handler(self, Events.COMPLETED):
            engine.add_event_handler(Events.STARTED, self.reset)
            engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)
            engine.add_event_handler(Events.COMPLETED, self)

    def collect(self, engine: Engine) -> None:
        """Keep the scores, labels and source names of one iteration."""
        preds, labels = self.output_transform(engine.state.output)
        scores = _as_numpy(preds, np.float64)
        scores = scores.reshape(scores.shape[0], -1)
        self._scores.append(scores)
        if self.multi_label:
            from medssl3d.metrics.multilabel import multi_hot

            self._labels.append(multi_hot(labels, scores.shape[1]))
        else:
            self._labels.append(_to_labels(labels))
        self._sources.extend(batch_sources(engine.state.batch, self.source_key, scores.shape[0]))

    def _gathered(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        if not self._scores:
            raise ValueError("ClassificationMetricsWriter saw no predictions; is the evaluation data loader empty?")
        scores, labels, sources = np.concatenate(self._scores), np.concatenate(self._labels), list(self._sources)
        import ignite.distributed as idist

        if idist.get_world_size() > 1:
            parts = idist.all_gather((scores.tolist(), labels.tolist(), sources))
            scores = np.asarray([row for part in parts for row in part[0]], dtype=np.float64)
            labels = np.asarray([v for part in parts for v in part[1]], dtype=np.int64)
            sources = [s for part in parts for s in part[2]]
        return scores, labels, sources

    def summary(
        self, scores: np.ndarray, labels: np.ndarray, metrics: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The ``metrics.json`` payload for (N, C) ``scores`` and (N,) ``labels`` (multi-label: (N, C))."""
        prob = self._probabilities(scores)
        names = self.class_names
        if names is not None and prob.shape[1] != len(names):
            raise ValueError(
                f"the network gives {prob.shape[1]} class scores but class_names has {len(names)} names ({names})."
            )
        if self.multi_label:
            from medssl3d.metrics.multilabel import multilabel_metrics

            payload = multilabel_metrics(labels, prob, names, self.threshold)
        else:
            payload = classification_metrics(labels, y_prob=prob, num_classes=prob.shape[1], class_names=names)
        others = {}
        for name, value in (metrics or {}).items():
            if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
                others[name] = _none_if_nan(float(value))
            elif isinstance(value, torch.Tensor) and value.numel() == 1:
                others[name] = _none_if_nan(float(value.item()))
        payload["metrics"] = others
        payload.update(self.extra)
        return payload

    def __call__(self, engine: Engine) -> None:
        """Write the files for the evaluation that just completed (rank 0 only)."""
        scores, labels, sources = self._gathered()
        if not is_main_process():
            return
        payload = self.summary(scores, labels, engine.state.metrics)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(payload, self.output_dir / self.metrics_file, allow_nan=False)
        prob = self._probabilities(scores)
        if self.multi_label:
            self._write_multilabel(payload, prob, labels, sources)
            return
        self._write_predictions(prob, labels, sources, payload["class_names"])
        if self.plots:
            from medssl3d.reports.plots import plot_confusion_matrix, plot_roc_curves

            names = payload["class_names"]
            plot_confusion_matrix(payload["confusion_matrix"], self.output_dir / "confusion_matrix.png", names)
            plot_roc_curves(labels, prob, self.output_dir / "roc_curves.png", payload["class_names"])
        logger.info(
            "wrote %s: QWK %s, accuracy %.4f on %d images",
            self.output_dir / self.metrics_file, payload["qwk"], payload["accuracy"], payload["num_samples"],
        )

    def _probabilities(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        return _sigmoid_probabilities(scores) if self.multi_label else _probabilities(scores)

    def _write_multilabel(self, payload: Mapping[str, Any], prob: np.ndarray, labels: np.ndarray,
                          sources: list[str]) -> None:
        """predictions.csv (label, thresholded prediction and probability per finding) and roc_curves.png."""
        names = payload["class_names"]
        preds = (prob >= self.threshold).astype(np.int64)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            ["source", *[f"label_{n}" for n in names], *[f"pred_{n}" for n in names], *[f"prob_{n}" for n in names]]
        )
        table = np.concatenate([labels.astype(np.int64), preds], axis=1).tolist()
        writer.writerows(
            [sources[i] or str(i), *table[i], *[f"{v:.6g}" for v in prob[i]]] for i in range(labels.shape[0])
        )
        text = buffer.getvalue()
        atomic_write(self.output_dir / "predictions.csv", lambda f: f.write(text), mode="w")
        if self.plots:
            from medssl3d.reports.plots import plot_roc_curves

            plot_roc_curves(labels, prob, self.output_dir / "roc_curves.png", names, title="ROC curves per finding")
        logger.info(
            "wrote %s: macro ROC-AUC %s over %d of %d findings, F1 macro %.4f on %d images",
            self.output_dir / self.metrics_file, payload["roc_auc_macro"], payload["num_findings_with_auc"],
            payload["num_classes"], payload["f1_macro"], payload["num_samples"],
        )

    def _write_predictions(self, prob: np.ndarray, labels: np.ndarray, sources: list[str], names: list[str]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["source", "label", "pred", *[f"prob_{n}" for n in names]])
        preds = prob.argmax(axis=1)
        for i in range(labels.size):
            writer.writerow([sources[i] or str(i), int(labels[i]), int(preds[i]), *[f"{v:.6g}" for v in prob[i]]])
        text = buffer.getvalue()
        atomic_write(self.output_dir / "predictions.csv", lambda f: f.write(text), mode="w")
