"""Transforms: preprocessing presets for segmentation (CT windowing, MR normalisation)."""

from __future__ import annotations

from medssl3d.transforms.preprocessing import (
    INTENSITY_MODES,
    resolve_intensity_mode,
    segmentation_postprocessing,
    segmentation_transforms,
)

__all__ = ["INTENSITY_MODES", "resolve_intensity_mode", "segmentation_postprocessing", "segmentation_transforms"]
