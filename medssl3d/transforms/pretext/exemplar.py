"""Exemplar views: two independently augmented views of one image, the input of the exemplar triplet task.

Dosovitskiy, A., Springenberg, J. T., Riedmiller, M., Brox, T. "Discriminative Unsupervised Feature
Learning with Convolutional Neural Networks", NeurIPS 2014. https://arxiv.org/abs/1406.6909
Taleb, A. et al. "3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020.
https://arxiv.org/abs/2006.03829 (3D exemplar with a triplet loss).

The views are (anchor, positive); the negatives come from other images of the batch (the network's job), so
the transforms return the views only, with no label.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import (
    MapTransform,
    RandAffine,
    RandFlip,
    RandGaussianNoise,
    Randomizable,
    RandScaleIntensity,
    RandShiftIntensity,
    Transform,
)
from monai.utils import convert_to_tensor

from medssl3d.transforms.pretext.base import RandPretextd, array_property
from medssl3d.utils.checks import check_non_negative, check_probability, check_spatial_dims

__all__ = ["ExemplarViews", "ExemplarViewsd"]


class ExemplarViews(Randomizable, Transform):
    """Two independently augmented views of one image, stacked as (2, C, *spatial): anchor, positive.

    Each view goes through, with fresh random parameters: a flip of each spatial axis (probability
    ``flip_prob`` each), a small affine (rotation up to ``rotate_range`` radians in every plane, scaling by
    ``1 + U(-scale_range, scale_range)``; probability ``affine_prob``), an intensity scaling ``x * (1 + f)``
    with ``f ~ U(-intensity_scale, intensity_scale)``, a shift by ``U(-intensity_shift, intensity_shift)``
    (probability ``intensity_prob`` each) and Gaussian noise with a standard deviation drawn from
    ``U(0, noise_std)`` (probability ``noise_prob``). The MONAI array transforms doing this all draw from this
    transform's ``self.R`` (also after :meth:`set_random_state`), when they are applied.

    Args:
        spatial_dims: 2 or 3.
        flip_prob, rotate_range, scale_range, affine_prob, intensity_scale, intensity_shift, intensity_prob,
            noise_std, noise_prob: the augmentation strengths above (0 switches one off).

    ``__call__(img)`` takes a (C, *spatial) array/tensor/MetaTensor and returns one plain float32 tensor
    (2, C, *spatial), the two views, with no label (the exemplar task has none). There is nothing to
    pre-draw, so ``randomize`` is accepted for the MONAI signature and ignored.

    Raises:
        ValueError: for a bad argument (the message names it); (on call) for an image that is not
            (C, *spatial).

    Example::

        views = ExemplarViews(spatial_dims=2).set_random_state(seed=0)(torch.rand(1, 32, 32))  # (2, 1, 32, 32)
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        flip_prob: float = 0.5,
        rotate_range: float = 0.26,
        scale_range: float = 0.1,
        affine_prob: float = 1.0,
        intensity_scale: float = 0.1,
        intensity_shift: float = 0.1,
        intensity_prob: float = 1.0,
        noise_std: float = 0.05,
        noise_prob: float = 1.0,
    ) -> None:
        check_spatial_dims(spatial_dims)
        self.spatial_dims = spatial_dims
        flip_prob = check_probability("flip_prob", flip_prob)
        affine_prob = check_probability("affine_prob", affine_prob)
        intensity_prob = check_probability("intensity_prob", intensity_prob)
        noise_prob = check_probability("noise_prob", noise_prob)
        rotate_range = check_non_negative("rotate_range", rotate_range)
        scale_range = check_non_negative("scale_range", scale_range)
        intensity_scale = check_non_negative("intensity_scale", intensity_scale)
        intensity_shift = check_non_negative("intensity_shift", intensity_shift)
        noise_std = check_non_negative("noise_std", noise_std)
        n_planes = 3 if spatial_dims == 3 else 1
        self.augmentations: list[Randomizable] = [RandFlip(prob=flip_prob, spatial_axis=a) for a in range(spatial_dims)]
        self.augmentations += [
            RandAffine(
                prob=affine_prob,
                rotate_range=(rotate_range,) * n_planes,
                scale_range=(scale_range,) * spatial_dims,
                mode="bilinear",
                padding_mode="border",
            ),
            RandScaleIntensity(factors=intensity_scale, prob=intensity_prob),
            RandShiftIntensity(offsets=intensity_shift, prob=intensity_prob),
            RandGaussianNoise(prob=noise_prob, mean=0.0, std=noise_std),
        ]
        self.set_random_state(state=self.R)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> ExemplarViews:
        super().set_random_state(seed, state)
        for t in self.augmentations:  # all draws come from one stream: ours
            t.set_random_state(state=self.R)
        return self

    def randomize(self, data: Any = None) -> None:
        """Nothing to pre-draw: each augmentation draws its parameters from ``self.R`` when it is applied."""

    def augment(self, img: torch.Tensor) -> torch.Tensor:
        """One augmented view of ``img`` (C, *spatial), with fresh random parameters."""
        x = img
        for t in self.augmentations:
            x = t(x)
        return convert_to_tensor(x, dtype=torch.float32, track_meta=False)

    def check_image(self, img: Any, what: str = "image") -> torch.Tensor:
        """``img`` as a plain float32 tensor; ``ValueError`` naming ``what`` unless it is (C, *spatial)."""
        img = convert_to_tensor(img, dtype=torch.float32, track_meta=False)
        if img.ndim != self.spatial_dims + 1:
            raise ValueError(
                f"{what} must be (C, *spatial) with {self.spatial_dims} spatial dims, got shape {tuple(img.shape)}."
            )
        return img

    def __call__(self, img: Any, randomize: bool = True) -> torch.Tensor:
        img = self.check_image(img)
        return torch.stack([self.augment(img), self.augment(img)]).contiguous()


class ExemplarViewsd(RandPretextd):
    """Two independently augmented views of each key, stacked as (2, C, *spatial): anchor, positive.

    Dictionary form of :class:`ExemplarViews` (see there for the augmentations). The array form's
    augmentations draw from this transform's ``self.R`` (also after :meth:`set_random_state`). With several
    keys, each key gets its own draws. No label is written.

    Args:
        keys: image key(s); each holds a (C, *spatial) array.
        spatial_dims: 2 or 3.
        flip_prob, rotate_range, scale_range, affine_prob, intensity_scale, intensity_shift, intensity_prob,
            noise_std, noise_prob: the augmentation strengths of :class:`ExemplarViews` (0 switches one off).
        allow_missing_keys: don't raise if a key is missing.

    Raises:
        ValueError: for a bad argument (the message names it).
    """

    spatial_dims = array_property("spatial_dims")
    augmentations = array_property("augmentations")

    def __init__(
        self,
        keys: KeysCollection = "image",
        spatial_dims: int = 3,
        flip_prob: float = 0.5,
        rotate_range: float = 0.26,
        scale_range: float = 0.1,
        affine_prob: float = 1.0,
        intensity_scale: float = 0.1,
        intensity_shift: float = 0.1,
        intensity_prob: float = 1.0,
        noise_std: float = 0.05,
        noise_prob: float = 1.0,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.array_transform = ExemplarViews(
            spatial_dims,
            flip_prob=flip_prob,
            rotate_range=rotate_range,
            scale_range=scale_range,
            affine_prob=affine_prob,
            intensity_scale=intensity_scale,
            intensity_shift=intensity_shift,
            intensity_prob=intensity_prob,
            noise_std=noise_std,
            noise_prob=noise_prob,
        )
        self.set_random_state(state=self.R)

    def augment(self, img: torch.Tensor) -> torch.Tensor:
        """One augmented view of ``img`` (C, *spatial): :meth:`ExemplarViews.augment`."""
        return self.array_transform.augment(img)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.array_transform(self.array_transform.check_image(d[key], repr(key)))
        return d
