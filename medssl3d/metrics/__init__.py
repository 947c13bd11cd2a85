"""Metrics and their ignite/MONAI handler wrappers: segmentation Dice summaries, classification metrics
(accuracy, F1, Cohen's kappa incl. QWK, ROC-AUC) via scikit-learn."""

from __future__ import annotations

from .classification import (
    ClassificationMetricsWriter,
    MulticlassAccuracy,
    QuadraticKappa,
    classification_metrics,
    cohen_kappa,
)
from .segmentation import SegmentationMetricsWriter, dice_summary

__all__ = [
    "ClassificationMetricsWriter",
    "MulticlassAccuracy",
    "QuadraticKappa",
    "SegmentationMetricsWriter",
    "classification_metrics",
    "cohen_kappa",
    "dice_summary",
]
