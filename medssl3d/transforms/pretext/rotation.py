"""Rotation prediction transforms: rotate an image by one of a fixed set of 90-degree rotations, the class says which.

Gidaris, S., Singh, P., Komodakis, N. "Unsupervised Representation Learning by Predicting Image
Rotations", ICLR 2018. https://arxiv.org/abs/1803.07728 (2D, 4 classes).

Taleb, A. et al. "3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020.
https://arxiv.org/abs/2006.03829 (3D, 10 classes: the identity and 90/180/270 degrees about each axis).

The class -> rotation table (:data:`ROTATIONS_3D`, :data:`ROTATIONS_2D`, ``task.rotations``; planes name
spatial axes, 0 = the first spatial axis, ``k`` counts quarter turns of ``torch.rot90`` in that plane):

======  ===============  ===  ============================
class   plane            k    meaning (3D)
======  ===============  ===  ============================
0       (0, 1)           0    identity
1..3    (1, 2)           1..3 90/180/270 deg about axis 0
4..6    (0, 2)           1..3 90/180/270 deg about axis 1
7..9    (0, 1)           1..3 90/180/270 deg about axis 2
======  ===============  ===  ============================

In 2D the classes are 0..3 = ``k`` quarter turns in the plane (0, 1).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable, Transform
from monai.utils import convert_to_tensor

from medssl3d.transforms.pretext.base import RandPretextd, array_property
from medssl3d.utils.checks import check_int, check_spatial_dims

__all__ = [
    "ROTATIONS_2D",
    "ROTATIONS_3D",
    "RandRotate90Pretext",
    "RandRotate90Pretextd",
    "check_equal_sides",
    "rotate",
    "rotation_table",
    "unrotate",
]

#: class -> ((spatial axis a, spatial axis b), quarter turns k); class 0 is the identity
ROTATIONS_3D: tuple[tuple[tuple[int, int], int], ...] = (
    ((0, 1), 0),
    ((1, 2), 1),
    ((1, 2), 2),
    ((1, 2), 3),
    ((0, 2), 1),
    ((0, 2), 2),
    ((0, 2), 3),
    ((0, 1), 1),
    ((0, 1), 2),
    ((0, 1), 3),
)
ROTATIONS_2D: tuple[tuple[tuple[int, int], int], ...] = tuple(((0, 1), k) for k in range(4))


def rotation_table(spatial_dims: int) -> tuple[tuple[tuple[int, int], int], ...]:
    """The class -> rotation table of ``spatial_dims`` (:data:`ROTATIONS_3D` for 3, else :data:`ROTATIONS_2D`)."""
    return ROTATIONS_3D if spatial_dims == 3 else ROTATIONS_2D


def _check_label(label: int | torch.Tensor, n_classes: int) -> int:
    if isinstance(label, torch.Tensor):
        if label.numel() != 1:
            raise ValueError(
                f"rotation label must be a single class index, got a tensor of shape {tuple(label.shape)}."
            )
        label = label.item()
    return check_int("rotation label", label, 0, n_classes - 1)


def _rot90(x: torch.Tensor, label: int | torch.Tensor, spatial_dims: int, sign: int) -> torch.Tensor:
    if x.ndim != spatial_dims + 1:
        raise ValueError(
            f"expected a (C, *spatial) tensor with {spatial_dims} spatial dims, got shape {tuple(x.shape)}."
        )
    table = rotation_table(spatial_dims)
    (a, b), k = table[_check_label(label, len(table))]
    return torch.rot90(x, sign * k, dims=(a + 1, b + 1))


def rotate(x: torch.Tensor, label: int | torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """Rotate ``x`` (C, *spatial) by the rotation of class ``label`` (see the module table)."""
    return _rot90(x, label, spatial_dims, 1)


def unrotate(x: torch.Tensor, label: int | torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """Undo :func:`rotate`: ``unrotate(rotate(x, c, d), c, d)`` equals ``x``."""
    return _rot90(x, label, spatial_dims, -1)


def check_equal_sides(shape: Sequence[int], spatial_dims: int, what: str) -> None:
    """``ValueError`` naming ``what`` unless the spatial ``shape`` has equal sides in every rotated plane."""
    planes = {plane for plane, k in rotation_table(spatial_dims) if k}
    for a, b in sorted(planes):
        if shape[a] != shape[b]:
            raise ValueError(
                f"{what} {tuple(shape)} must have equal sides in every rotated plane (spatial axes {a} and {b} "
                f"differ); use a cube/square, e.g. {(max(shape),) * spatial_dims}."
            )


class RandRotate90Pretext(Randomizable, Transform):
    """Rotate one image by a random class of the rotation table; return the rotated image and the class.

    Each draw (:meth:`randomize`) picks one class uniformly with ``self.R``.

    Args:
        spatial_dims: 2 (4 classes) or 3 (10 classes).

    ``__call__(img, randomize=True)`` takes a (C, *spatial) array/tensor/MetaTensor with equal sides in every
    rotated plane and returns the tuple ``(rotated, label)``: the rotated float32 tensor (C, *spatial), a plain
    tensor, and the class as an int64 0-d tensor, so ``unrotate(rotated, label, spatial_dims)`` gives the
    image back. ``randomize=False`` reuses the last draw.

    Raises:
        ValueError: for a bad ``spatial_dims``; (on call) if the image has the wrong number of dimensions or
            unequal sides.

    Example::

        x, k = RandRotate90Pretext(spatial_dims=3)(torch.rand(1, 8, 8, 8))  # k in 0..9
    """

    def __init__(self, spatial_dims: int = 3) -> None:
        check_spatial_dims(spatial_dims)
        self.spatial_dims = spatial_dims
        self.num_classes = len(rotation_table(spatial_dims))
        self._label = 0

    def randomize(self, data: Any = None) -> None:
        """Draw the class."""
        self._label = int(self.R.randint(self.num_classes))

    def pretext_label(self) -> int:
        """The class of the last draw."""
        return self._label

    def check_image(self, img: Any, what: str = "image") -> torch.Tensor:
        """``img`` as a plain float32 tensor; ``ValueError`` naming ``what`` unless it can be rotated."""
        img = convert_to_tensor(img, dtype=torch.float32, track_meta=False)
        if img.ndim != self.spatial_dims + 1:
            raise ValueError(
                f"{what} must be (C, *spatial) with {self.spatial_dims} spatial dims, got shape {tuple(img.shape)}."
            )
        check_equal_sides(tuple(img.shape[1:]), self.spatial_dims, f"{what} spatial shape")
        return img

    def __call__(self, img: Any, randomize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.check_image(img)
        if randomize:
            self.randomize()
        rotated = rotate(img, self._label, self.spatial_dims).contiguous()
        return rotated, torch.tensor(self._label, dtype=torch.int64)


class RandRotate90Pretextd(RandPretextd):
    """Rotate the image by a random class of the rotation table and write the class as the target.

    Dictionary form of :class:`RandRotate90Pretext`: one class is drawn per call (uniformly, through the
    array form, from this transform's ``self.R``) and applied to every key.

    Args:
        keys: image key(s); each holds a (C, *spatial) array with equal spatial sides.
        label_key: where the int64 0-d class index is written.
        spatial_dims: 2 (4 classes) or 3 (10 classes).
        allow_missing_keys: don't raise if a key is missing.

    Raises:
        ValueError: (on call) if the image has the wrong number of dimensions or unequal sides.
    """

    spatial_dims = array_property("spatial_dims")
    num_classes = array_property("num_classes")

    def __init__(
        self,
        keys: KeysCollection = "image",
        label_key: str = "label",
        spatial_dims: int = 3,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.array_transform = RandRotate90Pretext(spatial_dims)
        self.label_key = label_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        for key in self.key_iterator(d):
            img = self.array_transform.check_image(d[key], repr(key))
            d[key], _ = self.array_transform(img, randomize=False)
        d[self.label_key] = torch.tensor(self.array_transform.pretext_label(), dtype=torch.int64)
        return d
