"""Transforms: preprocessing presets for segmentation (CT windowing, MR normalisation), 2D classification
pretraining, and
medical augmentations for joint-embedding SSL (CLAHE, background removal, crops, multi-stage jigsaw, views)."""

from __future__ import annotations

from medssl3d.transforms.classification import (
    CLASSIFICATION_STAGES,
    LoadClassificationImage,
    LoadClassificationImaged,
    classification_transforms,
)
from medssl3d.transforms.intensity import CLAHE, CLAHEd, RemoveBackground, RemoveBackgroundd
from medssl3d.transforms.preprocessing import (
    INTENSITY_MODES,
    resolve_intensity_mode,
    segmentation_postprocessing,
    segmentation_transforms,
    volume_loading_transforms,
)
from medssl3d.transforms.pretraining import pretraining_transforms
from medssl3d.transforms.views import (
    MultiStageRandomChoiceJigsaw,
    MultiStageRandomChoiceJigsawd,
    MultiViewd,
    RandCropWithFallback,
    RandCropWithFallbackd,
    RandResizedCrop,
    RandResizedCropd,
    shuffle_tiles,
    simclr_medical_augmentations,
)

__all__ = [
    "CLAHE",
    "CLAHEd",
    "RemoveBackground",
    "RemoveBackgroundd",
    "MultiStageRandomChoiceJigsaw",
    "MultiStageRandomChoiceJigsawd",
    "MultiViewd",
    "RandCropWithFallback",
    "RandCropWithFallbackd",
    "RandResizedCrop",
    "RandResizedCropd",
    "shuffle_tiles",
    "simclr_medical_augmentations",
    "CLASSIFICATION_STAGES",
    "LoadClassificationImage",
    "LoadClassificationImaged",
    "classification_transforms",
    "INTENSITY_MODES",
    "pretraining_transforms",
    "resolve_intensity_mode",
    "segmentation_postprocessing",
    "segmentation_transforms",
    "volume_loading_transforms",
]
