"""Transforms that make the views a self-supervised method trains on: crops, multi-scale jigsaw, the SimCLR
augmentation set for medical images, and an n-view generator.

Every random transform draws through its own ``self.R`` in ``randomize()`` (MONAI ``Randomizable``), so
``set_determinism`` / ``Compose.set_random_state`` make a whole pipeline reproducible; a composite transform
shares its ``RandomState`` with the MONAI transform it wraps. Dictionary versions draw once per call and apply
the same crop / grid / permutation to every key (image and label stay aligned); their keys must share one
spatial shape. Everything works for 2D ``(C, X, Y)`` and 3D ``(C, X, Y, Z)`` channel-first images.

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

import copy
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import (
    CenterSpatialCrop,
    Compose,
    MapTransform,
    NormalizeIntensityd,
    Randomizable,
    RandomizableTransform,
    RandFlipd,
    RandGaussianSmoothd,
    RandRotated,
    RandScaleIntensityd,
    RandScaleIntensityFixedMeand,
    RandSpatialCrop,
    Resize,
    ScaleIntensityRanged,
    SpatialCrop,
    SpatialPad,
    Transform,
)
from monai.utils import MAX_SEED, convert_to_dst_type, convert_to_tensor, ensure_tuple, ensure_tuple_rep

from medssl3d.utils.checks import check_positive_int, check_size

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


def _spatial_shape(img: Any) -> tuple[int, ...]:
    shape = img.peek_pending_shape() if isinstance(img, MetaTensor) else img.shape[1:]
    return tuple(int(s) for s in shape)


def _common_spatial_shape(transform: MapTransform, d: Mapping[Hashable, Any]) -> tuple[int, ...] | None:
    """Spatial shape shared by all of ``transform``'s keys in ``d`` (None when none is present)."""
    shapes = {key: _spatial_shape(d[key]) for key in transform.key_iterator(d)}
    if len(set(shapes.values())) > 1:
        raise ValueError(
            f"{type(transform).__name__} applies one random draw to every key, so the keys must share a spatial "
            f"shape; got {shapes}."
        )
    return next(iter(shapes.values()), None)


def _sizes(size: Sequence[int] | int, name: str) -> tuple[int, ...]:
    """One positive size or one per axis (the axes are matched to an image later, by :func:`_check_dims`)."""
    return check_size(name, size)


def _check_dims(sizes: tuple[int, ...], spatial: tuple[int, ...], name: str) -> tuple[int, ...]:
    """Broadcast a single size to every spatial axis; otherwise the lengths must match."""
    if len(sizes) == 1:
        return sizes * len(spatial)
    if len(sizes) != len(spatial):
        raise ValueError(f"{name} {list(sizes)} has {len(sizes)} sizes but the image has spatial shape {spatial}.")
    return sizes


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
        self.roi_size = _sizes(roi_size, "roi_size")
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
        self._roi = _check_dims(self.roi_size, img_size, "roi_size")
        self._random = all(s >= r for s, r in zip(img_size, self._roi))
        if self._random:
            self._rand_crop.roi_size = self._roi
            self._rand_crop.randomize(img_size)

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        """img: channel-first ``(C, *S)``; returns ``(C, *roi_size)``."""
        if randomize:
            self.randomize(_spatial_shape(img))
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
        shape = _common_spatial_shape(self, d)
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
        self.spatial_size = _sizes(spatial_size, "spatial_size")
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
        shape = _spatial_shape(img)
        size = _check_dims(self.spatial_size, shape, "spatial_size")
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
        shape = _common_spatial_shape(self, d)
        if shape is None:
            return d
        self.randomize(shape)
        for key, mode in self.key_iterator(d, self.mode):
            d[key] = self.cropper(d[key], randomize=False, mode=mode)
        return d


def shuffle_tiles(img: torch.Tensor, grid_size: int, permutation: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """Cut ``img`` into ``grid_size`` tiles per spatial axis, reorder them, put them back (no Python loop over tiles).

    Tiles have side ``size // grid_size`` on each axis; the tiled region is centred and the remainder (fewer
    than ``grid_size`` pixels per axis) is left where it is, so the output has the input's shape whatever the
    grid. Tile positions are numbered in C order over the grid; the tile at position ``k`` of the output is
    the input tile ``permutation[k]``.

    Args:
        img: channel-first ``(C, *S)`` tensor, every spatial size >= ``grid_size``.
        grid_size: tiles per spatial axis.
        permutation: ``grid_size ** len(S)`` tile indices.

    Returns:
        The shuffled image, ``(C, *S)``.
    """
    c, *spatial = img.shape
    d = len(spatial)
    tiles = [s // grid_size for s in spatial]
    starts = [(s - grid_size * t) // 2 for s, t in zip(spatial, tiles)]
    region = (slice(None),) + tuple(slice(b, b + grid_size * t) for b, t in zip(starts, tiles))
    split = [c]
    for t in tiles:
        split += [grid_size, t]
    x = img[region].reshape(split)  # (C, g, t0, g, t1, ...)
    x = x.permute(*range(1, 2 * d, 2), 0, *range(2, 2 * d + 1, 2)).reshape(grid_size**d, c, *tiles)
    x = x[torch.as_tensor(permutation, dtype=torch.long, device=img.device)]
    x = x.reshape([grid_size] * d + [c] + tiles)  # (g, ..., g, C, t0, t1, ...)
    back = [d] + [axis for i in range(d) for axis in (i, d + 1 + i)]
    x = x.permute(*back).reshape(c, *[grid_size * t for t in tiles])
    out = img.clone()
    out[region] = x
    return out


class MultiStageRandomChoiceJigsaw(RandomizableTransform):
    """Shuffle the tiles of an ``n x n`` (2D) or ``n x n x n`` (3D) grid, with ``n`` drawn from ``grid_sizes``.

    The fundus code's "``MultiStageRandomChoiceJigsaw`` – Multi-scale puzzle at [8, 4, 2, 1]": an augmentation
    (no target is written) that keeps local texture but breaks global layout at a random scale. Per call,
    ``n`` is drawn from ``grid_sizes`` (with ``weights``, default uniform) and a uniformly random permutation of
    the ``n ** d`` tiles; ``n = 1`` returns the image unchanged. Sizes not divisible by ``n``: see
    :func:`shuffle_tiles` (centred tiled region, border left in place, shape kept).

    Args:
        grid_sizes: candidate tiles per spatial axis, each >= 1.
        weights: probability of each grid size (normalised); ``None``: uniform.
        prob: probability of shuffling at all.

    Raises:
        ValueError: for bad ``grid_sizes``, ``weights`` or ``prob``, or a grid larger than the image.

    Example:
        >>> MultiStageRandomChoiceJigsaw((4, 2, 1))(torch.rand(1, 64, 64)).shape
        torch.Size([1, 64, 64])
    """

    def __init__(
        self,
        grid_sizes: Sequence[int] = (8, 4, 2, 1),
        weights: Sequence[float] | None = None,
        prob: float = 1.0,
    ) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob!r}.")
        RandomizableTransform.__init__(self, prob)
        self.grid_sizes = _sizes(tuple(grid_sizes), "grid_sizes")
        if weights is None:
            self.weights = None
        else:
            w = np.asarray(weights, dtype=float)
            if w.shape != (len(self.grid_sizes),) or np.any(w < 0) or not w.sum() > 0:
                raise ValueError(
                    f"weights must be {len(self.grid_sizes)} non-negative numbers (one per grid size) with a "
                    f"positive sum, got {weights!r}."
                )
            self.weights = w / w.sum()
        self._grid = 1
        self._perm = np.zeros(1, dtype=np.int64)

    def randomize(self, img_size: Sequence[int]) -> None:
        super().randomize(None)
        if not self._do_transform:
            return
        self._grid = int(self.grid_sizes[self.R.choice(len(self.grid_sizes), p=self.weights)])
        self._perm = self.R.permutation(self._grid ** len(img_size))

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        """img: channel-first ``(C, *S)``; returns the shuffled image (a tensor), same shape and dtype."""
        img = convert_to_tensor(img, track_meta=get_track_meta())
        shape = _spatial_shape(img)
        if randomize:
            self.randomize(shape)
        if not self._do_transform or self._grid == 1:
            return img
        if len(self._perm) != self._grid ** len(shape):
            raise ValueError(
                f"the drawn permutation has {len(self._perm)} tiles but an image of spatial shape {shape} needs "
                f"{self._grid ** len(shape)}; call randomize() with the image's spatial shape."
            )
        if min(shape) < self._grid:
            raise ValueError(
                f"grid size {self._grid} (from grid_sizes {list(self.grid_sizes)}) is larger than the image's "
                f"spatial shape {shape}; use smaller grid_sizes or a larger crop."
            )
        plain = img.as_tensor() if isinstance(img, MetaTensor) else img
        out, *_ = convert_to_dst_type(shuffle_tiles(plain, self._grid, self._perm), dst=img)
        return out


class MultiStageRandomChoiceJigsawd(RandomizableTransform, MapTransform):
    """Dictionary wrapper of :class:`MultiStageRandomChoiceJigsaw`: one grid size and permutation for all keys.

    Args:
        keys: keys of the images to shuffle (same spatial shape).
        grid_sizes, weights, prob: see :class:`MultiStageRandomChoiceJigsaw`.
        allow_missing_keys: don't raise for missing keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        grid_sizes: Sequence[int] = (8, 4, 2, 1),
        weights: Sequence[float] | None = None,
        prob: float = 1.0,
        allow_missing_keys: bool = False,
    ) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob!r}.")
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.jigsaw = MultiStageRandomChoiceJigsaw(grid_sizes, weights, prob=1.0)
        self.jigsaw.set_random_state(state=self.R)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.jigsaw.set_random_state(state=self.R)
        return self

    def randomize(self, img_size: Sequence[int]) -> None:
        super().randomize(None)
        if self._do_transform:
            self.jigsaw.randomize(img_size)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        shape = _common_spatial_shape(self, d)
        if shape is None:
            return d
        self.randomize(shape)
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            d[key] = self.jigsaw(d[key], randomize=False)
        return d


class MultiViewd(Randomizable, MapTransform):
    """Make ``n_views`` independently augmented views of the same images.

    The fundus code's "``ContrastiveLearningViewGenerator`` – Multiple independent views", and the two views of
    SimCLR. Per call, ``n_views`` seeds are drawn from ``self.R``; before view ``i`` the view transform is
    re-seeded with seed ``i`` (``transform.set_random_state``), so the views are independent draws while the
    whole call is reproducible under ``set_random_state`` / ``set_determinism``.

    ``transform`` is a dictionary transform (e.g. :func:`simclr_medical_augmentations`); each view runs it on a
    copy of the data dictionary whose ``keys`` items are deep copies, so no view sees another's changes. Only
    the ``keys`` items are taken from its output; every other item is passed through from the input.

    Output, for each key:

    * ``stack=True`` (what a SimCLR / VICReg trainer wants): ``d[key]`` becomes the views stacked on a new first
      axis, ``(n_views, C, *S)`` (a ``MetaTensor`` carrying the first view's metadata when the views are
      ``MetaTensor`` s); all views must have the same shape. A DataLoader then gives ``(B, n_views, C, *S)``.
    * ``stack=False``: the views are stored under ``view_format.format(key=key, index=i)``
      (default ``image_view_0``, ``image_view_1``, ...) and ``d[key]`` is kept as it was.

    Args:
        keys: keys of the images to make views of.
        transform: a ``Randomizable`` dictionary transform (``Compose`` is); this object owns it and re-seeds
            it on every call.
        n_views: number of views, >= 1.
        stack: store the stacked form under ``key`` (True) or one item per view (False).
        view_format: name of view ``index`` of ``key`` when ``stack=False``.
        allow_missing_keys: don't raise for missing keys.

    Raises:
        TypeError: if ``transform`` cannot be seeded (not ``Randomizable``).
        ValueError: for a bad ``n_views`` or ``view_format``, or (``stack=True``) views of differing shapes.

    Example:
        >>> views = MultiViewd("image", simclr_medical_augmentations((32, 32)), n_views=2)
        >>> views({"image": torch.rand(1, 40, 40)})["image"].shape
        torch.Size([2, 1, 32, 32])
    """

    def __init__(
        self,
        keys: KeysCollection,
        transform: Callable[[Mapping[Hashable, Any]], Mapping[Hashable, Any]],
        n_views: int = 2,
        stack: bool = True,
        view_format: str = "{key}_view_{index}",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        if not isinstance(transform, Randomizable):
            raise TypeError(
                f"transform must be a MONAI Randomizable (e.g. a Compose) so each view can be seeded, got "
                f"{type(transform).__name__}; wrap it in monai.transforms.Compose."
            )
        n_views = check_positive_int("n_views", n_views)
        if not stack:
            names = {view_format.format(key=k, index=i) for k in self.keys for i in range(n_views)}
            if len(names) != n_views * len(self.keys) or names & set(self.keys):
                raise ValueError(
                    f"view_format {view_format!r} must give a distinct new name per key and view "
                    "(use both {key} and {index})."
                )
        self.transform = transform
        self.n_views = n_views
        self.stack = bool(stack)
        self.view_format = view_format
        self._seeds = np.zeros(n_views, dtype=np.int64)

    def randomize(self, data: Any = None) -> None:
        self._seeds = self.R.randint(MAX_SEED, size=self.n_views, dtype="uint32")

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        if not keys:
            return d
        self.randomize()
        views: dict[Hashable, list[Any]] = {key: [] for key in keys}
        for seed in self._seeds:
            self.transform.set_random_state(seed=int(seed))
            item = {k: (copy.deepcopy(v) if k in views else v) for k, v in d.items()}
            out = self.transform(item)
            if not isinstance(out, Mapping):
                raise TypeError(f"transform must return one data dictionary per call, got {type(out).__name__}.")
            for key in keys:
                views[key].append(out[key])
        for key, vs in views.items():
            if not self.stack:
                for i, v in enumerate(vs):
                    d[self.view_format.format(key=key, index=i)] = v
                continue
            shapes = {tuple(v.shape) for v in vs}
            if len(shapes) > 1:
                raise ValueError(f"views of {key!r} have differing shapes {sorted(shapes)} and cannot be stacked; "
                                 "end the view transform with a fixed-size crop or resize, or use stack=False.")
            d[key] = torch.stack([convert_to_tensor(v, track_meta=get_track_meta()) for v in vs])
        return d


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

    1. :class:`RandResizedCropd` to ``image_size``, area/volume fraction in ``scale``;
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
        scale, ratio: see :class:`RandResizedCrop`.
        flip_prob, flip_axis: random flip probability and spatial axis (or axes, flipped together).
        rotate_degrees: largest rotation angle in degrees, >= 0.
        brightness, contrast: jitter strengths in [0, 1).
        blur_prob: probability of the Gaussian blur.
        blur_sigma: range of the blur's sigma in pixels.
        value_range: range to clip to after the jitter; ``None``: no clipping.
        normalize: ``(mean, std)`` per channel, or ``None``.

    Returns:
        A MONAI ``Compose`` of dictionary transforms; wrap it in :class:`MultiViewd` for two views.

    Raises:
        ValueError: naming the first bad argument.
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    size = _sizes(image_size, "image_size")
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

    xforms: list[Any] = [RandResizedCropd(keys, size, scale=scale, ratio=ratio)]
    if flip_prob > 0:
        xforms.append(RandFlipd(keys, prob=flip_prob, spatial_axis=flip_axis))
    if rotate_degrees > 0:
        angle = math.radians(rotate_degrees)
        xforms.append(RandRotated(keys, range_x=angle, prob=1.0, keep_size=True, padding_mode="zeros"))
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
    return Compose(xforms)
