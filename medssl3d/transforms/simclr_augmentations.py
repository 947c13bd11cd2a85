"""The SimCLR augmentation recipe for medical images, as a MONAI ``Compose`` of dictionary transforms (2D or 3D).

References:
    * SimCLR for healthcare images (README, "Augmentation Pipeline"): "RandomResizedCrop (scale: 0.8-1.0)",
      "RandomHorizontalFlip (p=0.5)", "RandomRotation (±15°)", "ColorJitter (brightness: 0.3, contrast: 0.3)",
      "GaussianBlur (p=0.3)", "Normalization (ImageNet stats)"; Chen et al., "A simple framework for
      contrastive learning of visual representations", ICML 2020.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import (
    Compose,
    NormalizeIntensityd,
    RandFlipd,
    RandGaussianSmoothd,
    RandRotated,
    RandScaleIntensityd,
    RandScaleIntensityFixedMeand,
    ScaleIntensityRanged,
)
from monai.utils import ensure_tuple

from medssl3d.transforms.crops import RandResizedCropd
from medssl3d.utils.checks import check_size

__all__ = ["simclr_medical_augmentations"]


def simclr_medical_augmentations(
    image_size: Sequence[int] | int,
    spatial_dims: int = 2,
    keys: KeysCollection = "image",
    scale: Sequence[float] = (0.8, 1.0),
    ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
    flip_prob: float = 0.5,
    flip_axis: Sequence[int] | int | None = 0,
    rotate_degrees: float = 15.0,
    brightness: float = 0.3,
    contrast: float = 0.3,
    blur_prob: float = 0.3,
    blur_sigma: Sequence[float] = (0.1, 2.0),
    value_range: Sequence[float] | None = (0.0, 1.0),
    normalize: tuple[Sequence[float], Sequence[float]] | None = None,
) -> Compose:
    """The SimCLR augmentation set for medical images, as MONAI dictionary transforms (2D or 3D).

    The healthcare SimCLR recipe (README, "Augmentation Pipeline"): "RandomResizedCrop (scale: 0.8-1.0)",
    "RandomHorizontalFlip (p=0.5)", "RandomRotation (±15°)", "ColorJitter (brightness: 0.3, contrast: 0.3)",
    "GaussianBlur (p=0.3)", "Normalization (ImageNet stats)". In order:

    1. :class:`~medssl3d.transforms.RandResizedCropd` to ``image_size``, area/volume fraction in ``scale``;
    2. ``RandFlipd(prob=flip_prob, spatial_axis=flip_axis)``: axis 0 is left-right both for 2D images read by
       MONAI's PIL reader (``(W, H)`` order) and for RAS volumes;
    3. ``RandRotated`` by an angle uniform in ``±rotate_degrees`` (always), in the plane of the first two spatial
       axes (the axial plane of a RAS volume), zero padding, size kept;
    4. brightness ``x * (1 + b)``, ``b`` uniform in ``±brightness`` (``RandScaleIntensityd``), then contrast
       ``(x - mean) * (1 + c) + mean``, ``c`` uniform in ``±contrast`` (``RandScaleIntensityFixedMeand``): the
       two factors of torchvision's ``ColorJitter``, always applied, in this fixed order;
    5. clipping to ``value_range`` (``ScaleIntensityRanged(clip=True)``) as torchvision clamps to [0, 1];
    6. ``RandGaussianSmoothd`` with probability ``blur_prob``, sigma (in pixels) uniform in ``blur_sigma`` per axis
       (SimCLR's 0.1-2.0);
    7. optionally ``NormalizeIntensityd`` channel-wise with ``normalize = (mean, std)``; the recipe used
       ImageNet statistics, ``((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))``, which only suit RGB encoders
       pretrained on ImageNet, so the default is none.

    A stage whose strength is 0 is left out. Inputs are expected in [0, 1] (see ``pretraining_transforms``).

    Args:
        image_size: output spatial size (an int is used on every axis).
        spatial_dims: 2 or 3.
        keys: keys to augment (same random draws for all, e.g. an image and its mask).
        scale, ratio: see :class:`~medssl3d.transforms.RandResizedCrop`.
        flip_prob, flip_axis: random flip probability and spatial axis (or axes, flipped together).
        rotate_degrees: largest rotation angle in degrees, >= 0.
        brightness, contrast: jitter strengths in [0, 1).
        blur_prob: probability of the Gaussian blur.
        blur_sigma: range of the blur's sigma in pixels.
        value_range: range to clip to after the jitter; ``None``: no clipping.
        normalize: ``(mean, std)`` per channel, or ``None``.

    Returns:
        A MONAI ``Compose`` of dictionary transforms; wrap it in :class:`~medssl3d.transforms.MultiViewd` for
        two views.

    Raises:
        ValueError: naming the first bad argument.
    """
    size, sigma = _checked_recipe(
        image_size, spatial_dims, flip_prob, flip_axis, rotate_degrees, brightness, contrast, blur_prob, blur_sigma,
        value_range,
    )
    xforms = _geometric_stages(keys, size, scale, ratio, flip_prob, flip_axis, rotate_degrees)
    xforms += _appearance_stages(keys, brightness, contrast, value_range, blur_prob, sigma, normalize)
    return Compose(xforms)


def _checked_recipe(
    image_size: Sequence[int] | int,
    spatial_dims: int,
    flip_prob: float,
    flip_axis: Sequence[int] | int | None,
    rotate_degrees: float,
    brightness: float,
    contrast: float,
    blur_prob: float,
    blur_sigma: Sequence[float],
    value_range: Sequence[float] | None,
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Check the arguments of :func:`simclr_medical_augmentations`; return the output size and blur sigma range."""
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    size = check_size("image_size", image_size)
    if len(size) == 1:
        size = size * spatial_dims
    if len(size) != spatial_dims:
        raise ValueError(f"image_size {list(size)} must hold {spatial_dims} sizes (spatial_dims={spatial_dims}).")
    for name, value in (("flip_prob", flip_prob), ("blur_prob", blur_prob)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}.")
    for name, value in (("brightness", brightness), ("contrast", contrast)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value!r}.")
    if not 0.0 <= rotate_degrees <= 180.0:
        raise ValueError(f"rotate_degrees must be in [0, 180], got {rotate_degrees!r}.")
    sigma = tuple(float(s) for s in blur_sigma)
    if len(sigma) != 2 or not 0.0 < sigma[0] <= sigma[1]:
        raise ValueError(f"blur_sigma must be a pair with 0 < blur_sigma[0] <= blur_sigma[1], got {blur_sigma!r}.")
    if value_range is not None and (len(value_range) != 2 or not value_range[0] < value_range[1]):
        raise ValueError(f"value_range must be a pair (low, high) with low < high, or None, got {value_range!r}.")
    if flip_axis is not None and any(not 0 <= a < spatial_dims for a in ensure_tuple(flip_axis)):
        raise ValueError(f"flip_axis {flip_axis!r} must name spatial axes in [0, {spatial_dims}).")
    return size, sigma


def _geometric_stages(
    keys: KeysCollection,
    size: tuple[int, ...],
    scale: Sequence[float],
    ratio: Sequence[float],
    flip_prob: float,
    flip_axis: Sequence[int] | int | None,
    rotate_degrees: float,
) -> list[Any]:
    """Stages 1-3 of :func:`simclr_medical_augmentations`: random resized crop, flip, rotation."""
    xforms: list[Any] = [RandResizedCropd(keys, size, scale=scale, ratio=ratio)]
    if flip_prob > 0:
        xforms.append(RandFlipd(keys, prob=flip_prob, spatial_axis=flip_axis))
    if rotate_degrees > 0:
        angle = math.radians(rotate_degrees)
        xforms.append(RandRotated(keys, range_x=angle, prob=1.0, keep_size=True, padding_mode="zeros"))
    return xforms


def _appearance_stages(
    keys: KeysCollection,
    brightness: float,
    contrast: float,
    value_range: Sequence[float] | None,
    blur_prob: float,
    sigma: tuple[float, ...],
    normalize: tuple[Sequence[float], Sequence[float]] | None,
) -> list[Any]:
    """Stages 4-7 of :func:`simclr_medical_augmentations`: jitter, clipping, blur, normalisation."""
    xforms: list[Any] = []
    if brightness > 0:
        xforms.append(RandScaleIntensityd(keys, factors=brightness, prob=1.0))
    if contrast > 0:
        xforms.append(RandScaleIntensityFixedMeand(keys, factors=contrast, fixed_mean=True, prob=1.0))
    if value_range is not None and (brightness > 0 or contrast > 0):
        lo, hi = float(value_range[0]), float(value_range[1])
        xforms.append(ScaleIntensityRanged(keys, a_min=lo, a_max=hi, b_min=lo, b_max=hi, clip=True))
    if blur_prob > 0:
        xforms.append(RandGaussianSmoothd(keys, sigma_x=sigma, sigma_y=sigma, sigma_z=sigma, prob=blur_prob))
    if normalize is not None:
        if len(normalize) != 2:
            raise ValueError(f"normalize must be (mean, std), got {normalize!r}.")
        mean = np.asarray(normalize[0], dtype=np.float32)
        std = np.asarray(normalize[1], dtype=np.float32)
        xforms.append(NormalizeIntensityd(keys, subtrahend=mean, divisor=std, channel_wise=True))
    return xforms
