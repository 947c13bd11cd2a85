"""An n-view generator: ``n_views`` independently augmented views of the same images, for joint-embedding SSL.

The fundus code's "``ContrastiveLearningViewGenerator`` – Multiple independent views" (README, "Key
Components") and the two views of SimCLR (Chen et al., "A simple framework for contrastive learning of visual
representations", ICML 2020).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data.meta_obj import get_track_meta
from monai.transforms import MapTransform, Randomizable
from monai.utils import MAX_SEED, convert_to_tensor

from medssl3d.utils.checks import check_positive_int

__all__ = ["MultiViewd"]


class MultiViewd(Randomizable, MapTransform):
    """Make ``n_views`` independently augmented views of the same images.

    The fundus code's "``ContrastiveLearningViewGenerator`` – Multiple independent views", and the two views of
    SimCLR. Per call, ``n_views`` seeds are drawn from ``self.R``; before view ``i`` the view transform is
    re-seeded with seed ``i`` (``transform.set_random_state``), so the views are independent draws while the
    whole call is reproducible under ``set_random_state`` / ``set_determinism``.

    ``transform`` is a dictionary transform (e.g. :func:`~medssl3d.transforms.simclr_medical_augmentations`);
    each view runs it on a copy of the data dictionary whose ``keys`` items are deep copies, so no view sees
    another's changes. Only the ``keys`` items are taken from its output; every other item is passed through
    from the input.

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
