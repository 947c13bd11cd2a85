"""Transforms that make the views a self-supervised method trains on: crops, multi-scale jigsaw, the SimCLR
augmentation set for medical images, and an n-view generator.

Every random transform draws through its own ``self.R`` in ``randomize()`` (MONAI ``Randomizable``), so
``set_determinism`` / ``Compose.set_random_state`` make a whole pipeline reproducible; a composite transform
shares its ``RandomState`` with the MONAI transform it wraps. Dictionary versions draw once per call and apply
the same crop / grid / permutation to every key (image and label stay aligned); their keys must share one
spatial shape. Everything works for 2D ``(C, X, Y)`` and 3D ``(C, X, Y, Z)`` channel-first images.

The transforms live in one module per concept and are re-exported here: crops in
:mod:`medssl3d.transforms.crops`, the multi-scale jigsaw in :mod:`medssl3d.transforms.tile_shuffle`, the n-view
generator in :mod:`medssl3d.transforms.multiview` and the SimCLR recipe in
:mod:`medssl3d.transforms.simclr_augmentations`.

References:
    * Fundus SiCoVa / triplet pretraining (README, "Key Components"): "``RandomCropWithFallback`` – Adaptive
      random/center cropping", "``MultiStageRandomChoiceJigsaw`` – Multi-scale puzzle at [8, 4, 2, 1]",
      "``ContrastiveLearningViewGenerator`` – Multiple independent views".
    * SimCLR for healthcare images (README, "Augmentation Pipeline"): "RandomResizedCrop (scale: 0.8-1.0)",
      "RandomHorizontalFlip (p=0.5)", "RandomRotation (±15°)", "ColorJitter (brightness: 0.3, contrast: 0.3)",
      "GaussianBlur (p=0.3)", "Normalization (ImageNet stats)"; Chen et al., "A simple framework for
      contrastive learning of visual representations", ICML 2020.
"""

from __future__ import annotations

from medssl3d.transforms.crops import RandCropWithFallback, RandCropWithFallbackd, RandResizedCrop, RandResizedCropd
from medssl3d.transforms.multiview import MultiViewd
from medssl3d.transforms.simclr_augmentations import simclr_medical_augmentations
from medssl3d.transforms.tile_shuffle import MultiStageRandomChoiceJigsaw, MultiStageRandomChoiceJigsawd, shuffle_tiles

__all__ = [
    "MultiStageRandomChoiceJigsaw",
    "MultiStageRandomChoiceJigsawd",
    "MultiViewd",
    "RandCropWithFallback",
    "RandCropWithFallbackd",
    "RandResizedCrop",
    "RandResizedCropd",
    "shuffle_tiles",
    "simclr_medical_augmentations",
]
