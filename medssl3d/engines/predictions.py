"""Prediction files of unlabelled inference: :class:`ClassificationPredictionWriter` (one CSV row per image).

The inference counterpart of :class:`~medssl3d.metrics.classification_writer.ClassificationMetricsWriter`: it
collects the per-item class scores of a MONAI ``SupervisedEvaluator`` run over images without labels and
writes the predicted class and the probabilities of every image.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medssl3d.metrics.epoch import EpochCollector
from medssl3d.metrics.outputs import as_numpy, batch_sources, sigmoid_probabilities, softmax_probabilities
from medssl3d.utils.checks import check_probability
from medssl3d.utils.distributed import is_main_process
from medssl3d.utils.flags import as_flag
from medssl3d.utils.io import atomic_write

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["ClassificationPredictionWriter"]

logger = logging.getLogger(__name__)


def _from_pred(output: Any) -> Any:
    """The ``pred`` entries of MONAI's (decollated) engine output."""
    if isinstance(output, Mapping):
        return output["pred"]
    return [item["pred"] for item in output]


class ClassificationPredictionWriter(EpochCollector):
    """Collect an inference run's class scores and write one CSV row per image (no labels needed).

    Attach to a MONAI ``SupervisedEvaluator`` (or any ignite engine) whose decollated output holds per-item
    class scores ``pred`` (C,): probabilities (after ``Activationsd(softmax=True)``, or a sigmoid for
    ``multi_label``) or logits, which are soft-maxed (multi-label: passed through a sigmoid) here, as
    :class:`~medssl3d.metrics.classification_writer.ClassificationMetricsWriter` does. On ``Events.COMPLETED`` rank 0
    writes ``output_file`` atomically (parent folders created) with the columns

    - single-label: ``source, pred, pred_class, prob_<name>...`` (``pred`` the argmax index, ``pred_class``
      its name);
    - multi-label: ``source, pred_<name>...`` (1 when the finding's probability is >= ``threshold``, else 0),
      ``prob_<name>...``.

    ``source`` is the item's ``source_key`` in ``engine.state.batch`` (the image path or npz reference kept by
    :class:`~medssl3d.transforms.classification.LoadClassificationImaged`), else the row number. Probabilities
    are written with 6 significant digits. Under ``torch.distributed`` every rank's items are gathered first.

    Args:
        output_file: the CSV to write, e.g. ``"predictions.csv"``.
        class_names: the C class (multi-label: finding) names, in the network's output order.
        multi_label: sigmoid findings instead of soft-maxed classes; also takes ``"true"``/``"false"``.
        threshold: multi-label only: probability from which a finding is predicted.
        source_key: key of each item's source name in ``engine.state.batch``; ``None`` numbers the rows.
        output_transform: engine output -> the batch's scores (a list of (C,) tensors or an (N, C) tensor);
            default: the ``pred`` of each item.

    Raises:
        TypeError, ValueError: ``class_names`` is a string or empty, a bad ``threshold``.
        ValueError: when collecting or writing, scores per item that differ from ``len(class_names)``; when
            writing, no item was predicted.

    Example::

        ClassificationPredictionWriter("out/predictions.csv", ["No DR", "Mild", "Moderate", "Severe", "PDR"]).attach(
            evaluator
        )
    """

    def __init__(
        self,
        output_file: str | os.PathLike,
        class_names: Sequence[str],
        multi_label: bool = False,
        threshold: float = 0.5,
        source_key: str | None = "source",
        output_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        if isinstance(class_names, str):
            raise TypeError(f"class_names must be a sequence of names, got the string {class_names!r}.")
        if class_names is None or len(class_names) == 0:
            raise ValueError("class_names must name the network's classes (one per output score), got none.")
        self.output_file = Path(output_file)
        self.class_names = [str(c) for c in class_names]
        self.multi_label = as_flag(multi_label, "multi_label")
        self.threshold = check_probability("threshold", threshold)
        self.source_key = source_key
        self.output_transform = output_transform or _from_pred
        self.reset()

    def reset(self, engine: Engine | None = None) -> None:
        self._scores: list[np.ndarray] = []
        self._sources: list[str] = []

    def _check_width(self, width: int) -> None:
        if width != len(self.class_names):
            raise ValueError(
                f"the network gives {width} scores per image but class_names has {len(self.class_names)} names "
                f"({self.class_names}); pass the names of the model's {width} outputs, in order."
            )

    def collect(self, engine: Engine) -> None:
        """Keep the scores and source names of one iteration."""
        scores = as_numpy(self.output_transform(engine.state.output), np.float64)
        scores = scores.reshape(scores.shape[0], -1)
        self._check_width(scores.shape[1])
        self._scores.append(scores)
        self._sources.extend(batch_sources(engine.state.batch, self.source_key, scores.shape[0]))

    def _gathered(self) -> tuple[np.ndarray, list[str]]:
        import ignite.distributed as idist

        width = len(self.class_names)
        scores = np.concatenate(self._scores) if self._scores else np.zeros((0, width))
        sources = list(self._sources)
        if idist.get_world_size() > 1:
            parts = idist.all_gather((scores.tolist(), sources))
            scores = np.asarray([row for part in parts for row in part[0]], dtype=np.float64).reshape(-1, width)
            sources = [s for part in parts for s in part[1]]
        if scores.shape[0] == 0:
            raise ValueError(
                "ClassificationPredictionWriter saw no predictions; is the inference data loader empty (no images "
                "listed, or all skipped)?"
            )
        return scores, sources

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """(N, C) probabilities of (N, C) scores: kept when they already are, else softmax (multi-label: sigmoid)."""
        scores = np.asarray(scores, dtype=np.float64)
        self._check_width(scores.shape[1])
        return sigmoid_probabilities(scores) if self.multi_label else softmax_probabilities(scores)

    def rows(self, scores: np.ndarray, sources: Sequence[str]) -> list[list[Any]]:
        """The CSV table (header first) for (N, C) ``scores`` and N source names."""
        prob = self.probabilities(scores)
        names = self.class_names
        probs = [[f"{v:.6g}" for v in row] for row in prob]
        srcs = [sources[i] or str(i) for i in range(prob.shape[0])]
        if self.multi_label:
            hits = (prob >= self.threshold).astype(np.int64).tolist()
            header = ["source", *[f"pred_{n}" for n in names], *[f"prob_{n}" for n in names]]
            return [header] + [[srcs[i], *hits[i], *probs[i]] for i in range(prob.shape[0])]
        preds = prob.argmax(axis=1).tolist()
        header = ["source", "pred", "pred_class", *[f"prob_{n}" for n in names]]
        return [header] + [[srcs[i], preds[i], names[preds[i]], *probs[i]] for i in range(prob.shape[0])]

    def __call__(self, engine: Engine) -> None:
        """Write ``output_file`` for the run that just completed (rank 0 only)."""
        scores, sources = self._gathered()
        if not is_main_process():
            return
        buffer = io.StringIO()
        csv.writer(buffer).writerows(self.rows(scores, sources))
        text = buffer.getvalue()
        atomic_write(self.output_file, lambda f: f.write(text), mode="w")
        logger.info("wrote %s: predictions for %d images", self.output_file, scores.shape[0])
