"""Random crops for view-making: a random crop with a centre-crop-and-pad fallback, and a random resized crop.

Every random transform draws through its own ``self.R`` in ``randomize()`` (MONAI ``Randomizable``); a
dictionary version draws once per call and applies the same crop to every key (image and label stay aligned),
so its keys must share one spatial shape. Both work for 2D ``(C, X, Y)`` and 3D ``(C, X, Y, Z)`` images.

References:
    * Fundus SiCoVa / triplet pretraining (README, "Key Components"): "``RandomCropWithFallback`` – Adaptive
      random/center cropping".
    * SimCLR for healthcare images (README, "Augmentation Pipeline"): "RandomResizedCrop (scale: 0.8-1.0)".
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms import (
    CenterSpatialCrop,
    MapTransform,
    Randomizable,
    RandSpatialCrop,
    Resize,
    SpatialCrop,
    SpatialPad,
    Transform,
)
from monai.utils import ensure_tuple_rep

from medssl3d.transforms._shapes import check_dims, common_spatial_shape, spatial_shape
from medssl3d.utils.checks import check_positive_int, check_size

__all__ = ["RandCropWithFallback", "RandCropWithFallbackd", "RandResizedCrop", "RandResizedCropd"]


class RandCropWithFallback(Randomizable, Transform):
    """Random crop of ``roi_size`` when the image is large enough on every axis, else a centre crop and pad.

    The fundus code's "``RandomCropWithFallback`` – Adaptive random/center cropping". Exactly:

    * every spatial size >= ``roi_size``: MONAI ``RandSpatialCrop(roi_size)``, a uniformly random position;
    * otherwise (at least one axis too small): ``CenterSpatialCrop(roi_size)`` (crops only the axes that are
      larger) followed by ``SpatialPad(roi_size, mode=pad_mode)`` (pads the smaller axes symmetrically).

    The output always has spatial shape ``roi_size``, so small images batch with large ones.

    Args:
        roi_size: output spatial size; an int is used for every axis.
        pad_mode: ``SpatialPad`` mode for the fallback (``"constant"`` pads with 0).

    Raises:
        ValueError: for a bad ``roi_size`` or one whose length does not match the image.
    """

    def __init__(self, roi_size: Sequence[int] | int, pad_mode: str = "constant") -> None:
        self.roi_size = check_size("roi_size", roi_size)
        self.pad_mode = pad_mode
        self._rand_crop = RandSpatialCrop(roi_size=self.roi_size, random_size=False)
        self._rand_crop.set_random_state(state=self.R)
        self._random = False
        self._roi: tuple[int, ...] = self.roi_size

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self._rand_crop.set_random_state(state=self.R)
        return self

    def randomize(self, img_size: Sequence[int]) -> None:
        img_size = tuple(img_size)
        self._roi = check_dims(self.roi_size, img_size, "roi_size")
        self._random = all(s >= r for s, r in zip(img_size, self._roi))
        if self._random:
            self._rand_crop.roi_size = self._roi
            self._rand_crop.randomize(img_size)

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        """img: channel-first ``(C, *S)``; returns ``(C, *roi_size)``."""
        if randomize:
            self.randomize(spatial_shape(img))
        if self._random:
            return self._rand_crop(img, randomize=False)
        return SpatialPad(self._roi, mode=self.pad_mode)(CenterSpatialCrop(self._roi)(img))


class RandCropWithFallbackd(Randomizable, MapTransform):
    """Dictionary wrapper of :class:`RandCropWithFallback`: one decision and position for all keys.

    Args:
        keys: keys of the images to crop (same spatial shape).
        roi_size, pad_mode: see :class:`RandCropWithFallback`.
        allow_missing_keys: don't raise for missing keys.

    Example:
        >>> RandCropWithFallbackd("image", (224, 224))({"image": torch.rand(3, 300, 200)})["image"].shape
        torch.Size([3, 224, 224])
    """

    def __init__(
        self,
        keys: KeysCollection,
        roi_size: Sequence[int] | int,
        pad_mode: str = "constant",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.cropper = RandCropWithFallback(roi_size, pad_mode)
        self.cropper.set_random_state(state=self.R)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.cropper.set_random_state(state=self.R)
        return self

    def randomize(self, img_size: Sequence[int]) -> None:
        self.cropper.randomize(img_size)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        shape = common_spatial_shape(self, d)
        if shape is None:
            return d
        self.randomize(shape)
        for key in self.key_iterator(d):
            d[key] = self.cropper(d[key], randomize=False)
        return d


class RandResizedCrop(Randomizable, Transform):
    """Crop a random box covering a random fraction of the image, then resize it to ``spatial_size``.

    The n-dimensional form of torchvision's ``RandomResizedCrop`` (MONAI has no equivalent:
    ``RandScaleCrop(random_size=True)`` draws each side's fraction independently and never resizes). Per call:

    1. the box's area (2D) / volume (3D) fraction ``s`` is uniform in ``scale``;
    2. the aspect changes: ``d - 1`` log-ratios ``rho_k`` are uniform in ``[log ratio[0], log ratio[1]]`` and the
       relative side lengths are ``f_i = s ** (1/d) * exp(l_i - mean(l))`` with ``l = (0, rho_1, ..., rho_{d-1})``,
       so the box keeps volume fraction ``s`` and, in 2D, ``f_1 / f_0`` is log-uniform in ``ratio``, as in
       torchvision (ratios are relative to the image's own aspect);
    3. a draw with any ``f_i > 1`` is redrawn, up to ``max_attempts`` times; then the box falls back to
       ``f_i = s ** (1/d)`` on every axis;
    4. box sides are ``max(1, round(f_i * size_i))`` at a uniformly random position; MONAI ``SpatialCrop`` cuts it
       and ``Resize`` brings it to ``spatial_size``.

    The SimCLR healthcare recipe uses "RandomResizedCrop (scale: 0.8-1.0)".

    Args:
        spatial_size: output spatial size; an int is used for every axis.
        scale: range of the area/volume fraction, ``0 < scale[0] <= scale[1] <= 1``.
        ratio: range of the aspect change, ``0 < ratio[0] <= ratio[1]``; ``(1, 1)`` keeps the image's aspect.
        mode: ``Resize`` interpolation; ``None``: ``"bilinear"`` in 2D, ``"trilinear"`` in 3D.
        max_attempts: redraws before the fallback of step 3.

    Raises:
        ValueError: for a bad ``spatial_size``, ``scale``, ``ratio`` or ``max_attempts``.

    Example:
        >>> RandResizedCrop(32)(torch.rand(1, 40, 50)).shape
        torch.Size([1, 32, 32])
    """

    def __init__(
        self,
        spatial_size: Sequence[int] | int,
        scale: Sequence[float] = (0.8, 1.0),
        ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
        mode: str | None = None,
        max_attempts: int = 10,
    ) -> None:
        self.spatial_size = check_size("spatial_size", spatial_size)
        scale, ratio = tuple(float(v) for v in scale), tuple(float(v) for v in ratio)
        if len(scale) != 2 or not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"scale must be a pair with 0 < scale[0] <= scale[1] <= 1, got {scale!r}.")
        if len(ratio) != 2 or not 0.0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must be a pair with 0 < ratio[0] <= ratio[1], got {ratio!r}.")
        max_attempts = check_positive_int("max_attempts", max_attempts)
        self.scale, self.ratio, self.mode, self.max_attempts = scale, ratio, mode, max_attempts
        self._slices: tuple[slice, ...] = ()

    def randomize(self, img_size: Sequence[int]) -> None:
        img_size = tuple(int(s) for s in img_size)
        d = len(img_size)
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        fractions = None
        for _ in range(self.max_attempts):
            s = self.R.uniform(self.scale[0], self.scale[1])
            logs = np.concatenate([[0.0], self.R.uniform(log_lo, log_hi, size=d - 1)])
            f = s ** (1.0 / d) * np.exp(logs - logs.mean())
            if np.all(f <= 1.0):
                fractions = f
                break
        if fractions is None:
            fractions = np.full(d, s ** (1.0 / d))
        sides = [min(size, max(1, round(fr * size))) for fr, size in zip(fractions, img_size)]
        starts = [int(self.R.randint(0, size - side + 1)) for size, side in zip(img_size, sides)]
        self._slices = tuple(slice(b, b + side) for b, side in zip(starts, sides))

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True, mode: str | None = None) -> NdarrayOrTensor:
        """img: channel-first ``(C, *S)``; returns ``(C, *spatial_size)`` (float32)."""
        shape = spatial_shape(img)
        size = check_dims(self.spatial_size, shape, "spatial_size")
        if randomize:
            self.randomize(shape)
        mode = mode or self.mode or ("bilinear" if len(shape) == 2 else "trilinear")
        return Resize(size, mode=mode)(SpatialCrop(roi_slices=self._slices)(img))


class RandResizedCropd(Randomizable, MapTransform):
    """Dictionary wrapper of :class:`RandResizedCrop`: one box for all keys.

    Args:
        keys: keys of the images to crop (same spatial shape).
        spatial_size, scale, ratio, max_attempts: see :class:`RandResizedCrop`.
        mode: ``Resize`` interpolation, one value or one per key (e.g. ``("bilinear", "nearest")`` for an image
            and its label); ``None``: linear for the dimension.
        allow_missing_keys: don't raise for missing keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        spatial_size: Sequence[int] | int,
        scale: Sequence[float] = (0.8, 1.0),
        ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
        mode: Sequence[str | None] | str | None = None,
        max_attempts: int = 10,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.cropper = RandResizedCrop(spatial_size, scale, ratio, None, max_attempts)
        self.cropper.set_random_state(state=self.R)
        self.mode = ensure_tuple_rep(mode, len(self.keys))

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.cropper.set_random_state(state=self.R)
        return self

    def randomize(self, img_size: Sequence[int]) -> None:
        self.cropper.randomize(img_size)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        shape = common_spatial_shape(self, d)
        if shape is None:
            return d
        self.randomize(shape)
        for key, mode in self.key_iterator(d, self.mode):
            d[key] = self.cropper(d[key], randomize=False, mode=mode)
        return d
