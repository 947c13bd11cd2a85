"""Metrics and their ignite/MONAI handler wrappers: segmentation Dice summaries, classification metrics
(accuracy, F1, Cohen's kappa incl. QWK, ROC-AUC) and multi-label finding metrics (per-finding ROC-AUC, AP,
F1, Hamming loss) via scikit-learn."""

from __future__ import annotations

from .classification import (
    MulticlassAccuracy,
    MulticlassRocAuc,
    QuadraticKappa,
    classification_metrics,
    cohen_kappa,
    roc_auc_ovr,
)
from .classification_writer import ClassificationMetricsWriter
from .factories import accuracy_metric, roc_auc_metric
from .multilabel import MultilabelAccuracy, MultilabelRocAuc, multilabel_metrics, roc_auc_multilabel
from .segmentation import SegmentationMetricsWriter, dice_summary

__all__ = [
    "ClassificationMetricsWriter",
    "MulticlassAccuracy",
    "MulticlassRocAuc",
    "MultilabelAccuracy",
    "MultilabelRocAuc",
    "QuadraticKappa",
    "accuracy_metric",
    "roc_auc_metric",
    "SegmentationMetricsWriter",
    "classification_metrics",
    "cohen_kappa",
    "multilabel_metrics",
    "roc_auc_multilabel",
    "roc_auc_ovr",
    "dice_summary",
]
