"""Multi-scale jigsaw augmentation: shuffle the tiles of a grid whose size is drawn per call.

The fundus code's "``MultiStageRandomChoiceJigsaw`` – Multi-scale puzzle at [8, 4, 2, 1]" (README, "Key
Components"). The transforms draw through their own ``self.R`` (MONAI ``Randomizable``); the dictionary version
draws once per call and applies the same grid and permutation to every key, whose spatial shapes must agree.
Works for 2D ``(C, X, Y)`` and 3D ``(C, X, Y, Z)`` channel-first images.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import convert_to_dst_type, convert_to_tensor

from medssl3d.transforms._shapes import common_spatial_shape, spatial_shape
from medssl3d.utils.checks import check_size

__all__ = ["MultiStageRandomChoiceJigsaw", "MultiStageRandomChoiceJigsawd", "shuffle_tiles"]


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
        self.grid_sizes = check_size("grid_sizes", tuple(grid_sizes))
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
        shape = spatial_shape(img)
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
        shape = common_spatial_shape(self, d)
        if shape is None:
            return d
        self.randomize(shape)
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            d[key] = self.jigsaw(d[key], randomize=False)
        return d
