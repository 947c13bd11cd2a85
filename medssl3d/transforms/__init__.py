"""Transforms: preprocessing presets for segmentation (CT windowing, MR normalisation), 2D classification
and pretraining."""

from __future__ import annotations

from medssl3d.transforms.classification import (
    CLASSIFICATION_STAGES,
    LoadClassificationImage,
    LoadClassificationImaged,
    classification_transforms,
)
from medssl3d.transforms.preprocessing import (
    INTENSITY_MODES,
    resolve_intensity_mode,
    segmentation_postprocessing,
    segmentation_transforms,
    volume_loading_transforms,
)
from medssl3d.transforms.pretraining import MatchChannelsd, pretraining_transforms

__all__ = [
    "CLASSIFICATION_STAGES",
    "LoadClassificationImage",
    "LoadClassificationImaged",
    "classification_transforms",
    "INTENSITY_MODES",
    "MatchChannelsd",
    "pretraining_transforms",
    "resolve_intensity_mode",
    "segmentation_postprocessing",
    "segmentation_transforms",
    "volume_loading_transforms",
]
