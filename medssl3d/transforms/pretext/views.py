"""Multi-view dictionary transforms of the joint-embedding and labelled triplet tasks (dictionary forms only).

:class:`TwoViewsd` makes the two augmented views of SimCLR / SiCoVa (Chen et al., ICML 2020,
https://arxiv.org/abs/2002.05709; Bardes et al., ICLR 2022, https://arxiv.org/abs/2105.04906) as one plain
tensor; :class:`LabeledViewd` makes the view(s) of a labelled image and passes its class label through, for
the batch-all triplet task (Schroff et al., CVPR 2015, https://arxiv.org/abs/1503.03832). Both wrap a
one-view dictionary transform and re-seed it per view, so they have no array form: the array-level work is
the wrapped transform's.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable
from monai.utils import MAX_SEED, convert_to_tensor

from medssl3d.transforms.multiview import MultiViewd
from medssl3d.utils.checks import check_non_negative_int, check_positive_int

__all__ = ["LabeledViewd", "TwoViewsd", "as_class_label"]


class TwoViewsd(MultiViewd):
    """Two independently augmented views of each key, stacked as a plain float32 tensor ``(2, C, *spatial)``.

    :class:`~medssl3d.transforms.MultiViewd` with ``n_views=2, stack=True``; the stacked views lose their
    ``MetaTensor`` metadata (the network needs none), so a batch is a plain ``(B, 2, C, *spatial)`` tensor.

    Args:
        keys: image key(s).
        transform: the ``Randomizable`` dictionary transform that makes one view (seeded per view).
        allow_missing_keys: don't raise for missing keys.
    """

    def __init__(self, keys: KeysCollection, transform: Any, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, transform, n_views=2, stack=True, allow_missing_keys=allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = super().__call__(data)
        for key in self.key_iterator(d):
            d[key] = convert_to_tensor(d[key], dtype=torch.float32, track_meta=False).contiguous()
        return d


def as_class_label(value: Any, key: Hashable = "label") -> torch.Tensor:
    """A class index (int, NumPy integer, or a one-element integer tensor/array) as an int64 0-d tensor.

    Raises:
        ValueError: ``value`` is not a single non-negative integer (bools, floats and strings are refused).
    """
    if isinstance(value, torch.Tensor):
        integer = not (value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool)
        if value.numel() == 1 and integer:
            value = value.reshape(-1)[0].item()
    elif isinstance(value, np.ndarray):
        if value.size == 1 and np.issubdtype(value.dtype, np.integer):
            value = value.reshape(-1)[0].item()
    index = check_non_negative_int(
        f"data[{key!r}] (a class index)",
        value,
        hint="; the triplet task needs labelled items {'image': ..., 'label': int} (e.g. the 'train' part of "
        "medssl3d.data.prepare_classification_split)",
    )
    return torch.tensor(index, dtype=torch.int64)


class LabeledViewd(Randomizable, MapTransform):
    """Augmented view(s) of each key as a plain float32 tensor, and the class label as an int64 0-d tensor.

    With ``num_views=1`` the key becomes one view ``(C, *spatial)``; with ``num_views=V > 1``, ``V``
    independently drawn views stacked as ``(V, C, *spatial)``. Per view a seed is drawn from ``self.R`` and
    the view transform is re-seeded with it (as :class:`~medssl3d.transforms.MultiViewd` does), so the call is
    reproducible under ``set_random_state`` / ``set_determinism``. The label is read from ``data[label_key]``
    and written back converted (:func:`as_class_label`); it is never made up.

    Args:
        keys: image key(s).
        transform: the ``Randomizable`` dictionary transform that makes the view (e.g. a ``Compose``).
        label_key: key of the class label.
        allow_missing_keys: don't raise for missing image keys (the label is always required).
        num_views: views per image (1, or e.g. 2 as the fundus triplet recipe's paired samples).

    Raises:
        TypeError: ``transform`` is not ``Randomizable``.
        KeyError: (on call) the data has no ``label_key``.
        ValueError: (on call) the label is not a single non-negative integer.
    """

    def __init__(
        self,
        keys: KeysCollection,
        transform: Any,
        label_key: str = "label",
        allow_missing_keys: bool = False,
        num_views: int = 1,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        if not isinstance(transform, Randomizable):
            raise TypeError(
                f"transform must be a MONAI Randomizable (e.g. a Compose), got {type(transform).__name__}."
            )
        self.transform = transform
        self.label_key = label_key
        self.num_views = check_positive_int("num_views", num_views)
        self._seeds = [0] * self.num_views

    def randomize(self, data: Any = None) -> None:
        self._seeds = [int(seed) for seed in self.R.randint(MAX_SEED, size=self.num_views, dtype="uint32")]

    def _view(self, data: dict[Hashable, Any], seed: int) -> dict[Hashable, Any]:
        self.transform.set_random_state(seed=seed)
        out = self.transform(dict(data))
        if not isinstance(out, Mapping):
            raise TypeError(f"transform must return one data dictionary per call, got {type(out).__name__}.")
        return dict(out)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        if self.label_key not in data:
            raise KeyError(
                f"the triplet task needs a class label under {self.label_key!r}, but the data has only "
                f"{sorted(map(str, data))}; use labelled items (e.g. medssl3d.data.prepare_classification_split)."
            )
        d = dict(data)
        label = as_class_label(d[self.label_key], self.label_key)
        self.randomize()
        views = [self._view(d, seed) for seed in self._seeds]
        out = views[0]
        for key in self.key_iterator(out):
            tensors = [convert_to_tensor(v[key], dtype=torch.float32, track_meta=False) for v in views]
            out[key] = (tensors[0] if self.num_views == 1 else torch.stack(tensors)).contiguous()
        out[self.label_key] = label
        return out
