"""The validation metrics of a classification bundle's mode (single-label or multi-label), by name.

A bundle switches mode with one flag (``multi_label``); these factories pick the matching ignite metric so
that the config holds no ``_target_`` chosen by an expression.
"""

from __future__ import annotations

from typing import Any

from medssl3d.metrics.classification import MulticlassAccuracy, MulticlassRocAuc
from medssl3d.metrics.epoch import StackedEpochMetric
from medssl3d.metrics.multilabel import MultilabelAccuracy, MultilabelRocAuc
from medssl3d.utils.flags import as_flag

__all__ = ["roc_auc_metric", "accuracy_metric"]


def roc_auc_metric(multi_label: Any = False, **kwargs: Any) -> StackedEpochMetric:
    """:class:`MultilabelRocAuc` (macro mean per-finding ROC-AUC) or :class:`MulticlassRocAuc` (one-vs-rest).

    Args:
        multi_label: the mode, a bool or a config string (:func:`~medssl3d.utils.flags.as_flag`).
        kwargs: passed to the metric (``output_transform``, ``device``).

    Example (bundle JSON)::

        "key_metric": {"val_roc_auc": {"_target_": "medssl3d.metrics.roc_auc_metric", "multi_label": "@multi"}}
    """
    return (MultilabelRocAuc if as_flag(multi_label, "multi_label") else MulticlassRocAuc)(**kwargs)


def accuracy_metric(multi_label: Any = False, **kwargs: Any) -> StackedEpochMetric:
    """:class:`MultilabelAccuracy` (right (image, finding) decisions) or :class:`MulticlassAccuracy`.

    Args:
        multi_label: the mode, a bool or a config string (:func:`~medssl3d.utils.flags.as_flag`).
        kwargs: passed to the metric (``output_transform``, ``device``; multi-label: ``threshold``).
    """
    return (MultilabelAccuracy if as_flag(multi_label, "multi_label") else MulticlassAccuracy)(**kwargs)
