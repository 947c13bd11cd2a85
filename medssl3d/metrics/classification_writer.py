"""The report of a classification evaluation: ``metrics.json``, ``predictions.csv`` and the figures.

:class:`ClassificationMetricsWriter` is the handler the classification bundles attach to their evaluator; it
scores single-label runs with :func:`~medssl3d.metrics.classification.classification_metrics` and
multi-label runs with :func:`~medssl3d.metrics.multilabel.multilabel_metrics`, and draws with
:mod:`medssl3d.reports.plots`.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from medssl3d.metrics.classification import classification_metrics
from medssl3d.metrics.epoch import EpochCollector
from medssl3d.metrics.multilabel import multi_hot, multilabel_metrics
from medssl3d.metrics.outputs import (
    as_numpy,
    batch_sources,
    class_indices,
    from_pred_label,
    none_if_nan,
    sigmoid_probabilities,
    softmax_probabilities,
)
from medssl3d.reports.plots import plot_confusion_matrix, plot_roc_curves
from medssl3d.utils.checks import check_probability
from medssl3d.utils.distributed import is_main_process
from medssl3d.utils.flags import as_flag
from medssl3d.utils.io import atomic_write, atomic_write_json

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["ClassificationMetricsWriter"]

logger = logging.getLogger(__name__)


class ClassificationMetricsWriter(EpochCollector):
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
        if isinstance(class_names, str):
            raise TypeError(f"class_names must be a sequence of names, got the string {class_names!r}.")
        self.output_dir = Path(output_dir)
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.output_transform = output_transform or from_pred_label
        self.source_key = source_key
        self.metrics_file = metrics_file
        self.plots = bool(plots)
        self.extra = dict(extra or {})
        self.multi_label = as_flag(multi_label, "multi_label")
        self.threshold = check_probability("threshold", threshold)
        try:
            json.dumps(self.extra, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"extra must be JSON-able (convert paths with str()), got {self.extra!r}: {e}") from e
        self.reset()

    def reset(self, engine: Engine | None = None) -> None:
        self._scores: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._sources: list[str] = []

    def collect(self, engine: Engine) -> None:
        """Keep the scores, labels and source names of one iteration."""
        preds, labels = self.output_transform(engine.state.output)
        scores = as_numpy(preds, np.float64)
        scores = scores.reshape(scores.shape[0], -1)
        self._scores.append(scores)
        if self.multi_label:
            self._labels.append(multi_hot(labels, scores.shape[1]))
        else:
            self._labels.append(class_indices(labels))
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
        prob = self.softmax_probabilities(scores)
        names = self.class_names
        if names is not None and prob.shape[1] != len(names):
            raise ValueError(
                f"the network gives {prob.shape[1]} class scores but class_names has {len(names)} names ({names})."
            )
        if self.multi_label:
            payload = multilabel_metrics(labels, prob, names, self.threshold)
        else:
            payload = classification_metrics(labels, y_prob=prob, num_classes=prob.shape[1], class_names=names)
        others = {}
        for name, value in (metrics or {}).items():
            if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
                others[name] = none_if_nan(float(value))
            elif isinstance(value, torch.Tensor) and value.numel() == 1:
                others[name] = none_if_nan(float(value.item()))
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
        prob = self.softmax_probabilities(scores)
        if self.multi_label:
            self._write_multilabel(payload, prob, labels, sources)
            return
        self._write_predictions(prob, labels, sources, payload["class_names"])
        if self.plots:
            names = payload["class_names"]
            plot_confusion_matrix(payload["confusion_matrix"], self.output_dir / "confusion_matrix.png", names)
            plot_roc_curves(labels, prob, self.output_dir / "roc_curves.png", payload["class_names"])
        logger.info(
            "wrote %s: QWK %s, accuracy %.4f on %d images",
            self.output_dir / self.metrics_file, payload["qwk"], payload["accuracy"], payload["num_samples"],
        )

    def softmax_probabilities(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        return sigmoid_probabilities(scores) if self.multi_label else softmax_probabilities(scores)

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
