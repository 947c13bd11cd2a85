"""Metrics and their ignite/MONAI handler wrappers."""

from __future__ import annotations

from .segmentation import SegmentationMetricsWriter, dice_summary

__all__ = ["SegmentationMetricsWriter", "dice_summary"]
