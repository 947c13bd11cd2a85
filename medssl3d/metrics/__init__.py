"""Metrics and their ignite/MONAI handler wrappers: segmentation Dice summaries, classification metrics
(accuracy, F1, Cohen's kappa incl. QWK, ROC-AUC) via scikit-learn."""

from __future__ import annotations

from .classification import (
    ClassificationMetricsWriter,
    MulticlassAccuracy,
    MulticlassRocAuc,
    QuadraticKappa,
    classification_metrics,
    cohen_kappa,
    roc_auc_ovr,
)
from .segmentation import SegmentationMetricsWriter, dice_summary

__all__ = [
    "ClassificationMetricsWriter",
    "MulticlassAccuracy",
    "MulticlassRocAuc",
    "QuadraticKappa",
    "SegmentationMetricsWriter",
    "classification_metrics",
    "cohen_kappa",
    "roc_auc_ovr",
    "dice_summary",
]
