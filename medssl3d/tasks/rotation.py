"""Rotation prediction: recognise which of a fixed set of 90-degree rotations was applied to an image.

Gidaris, S., Singh, P., Komodakis, N. "Unsupervised Representation Learning by Predicting Image
Rotations", ICLR 2018. https://arxiv.org/abs/1803.07728 (2D, 4 classes).

Taleb, A. et al. "3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020.
https://arxiv.org/abs/2006.03829 (3D, 10 classes: the identity and 90/180/270 degrees about each axis).

The class -> rotation table (``task.rotations``; planes name spatial axes, 0 = the first spatial axis,
``k`` counts quarter turns of ``torch.rot90`` in that plane):

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
import torch.nn as nn
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable
from monai.utils import convert_to_tensor

from medssl3d.nets.encoders import check_encoder, global_pool
from medssl3d.tasks.base import PretextTask
from medssl3d.utils.checks import check_int, check_size, check_spatial_dims

__all__ = ["ROTATIONS_2D", "ROTATIONS_3D", "RandRotate90Pretextd", "RotationNet", "RotationTask", "rotate", "unrotate"]

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


def _table(spatial_dims: int) -> tuple[tuple[tuple[int, int], int], ...]:
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
    table = _table(spatial_dims)
    (a, b), k = table[_check_label(label, len(table))]
    return torch.rot90(x, sign * k, dims=(a + 1, b + 1))


def rotate(x: torch.Tensor, label: int | torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """Rotate ``x`` (C, *spatial) by the rotation of class ``label`` (see the module table)."""
    return _rot90(x, label, spatial_dims, 1)


def unrotate(x: torch.Tensor, label: int | torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """Undo :func:`rotate`: ``unrotate(rotate(x, c, d), c, d)`` equals ``x``."""
    return _rot90(x, label, spatial_dims, -1)


def _check_equal_sides(shape: Sequence[int], spatial_dims: int, what: str) -> None:
    planes = {plane for plane, k in _table(spatial_dims) if k}
    for a, b in sorted(planes):
        if shape[a] != shape[b]:
            raise ValueError(
                f"{what} {tuple(shape)} must have equal sides in every rotated plane (spatial axes {a} and {b} "
                f"differ); use a cube/square, e.g. {(max(shape),) * spatial_dims}."
            )


class RandRotate90Pretextd(Randomizable, MapTransform):
    """Rotate the image by a random class of the rotation table and write the class as the target.

    One class is drawn per call (uniformly, with ``self.R``) and applied to every key.

    Args:
        keys: image key(s); each holds a (C, *spatial) array with equal spatial sides.
        label_key: where the int64 0-d class index is written.
        spatial_dims: 2 (4 classes) or 3 (10 classes).
        allow_missing_keys: don't raise if a key is missing.

    Raises:
        ValueError: (on call) if the image has the wrong number of dimensions or unequal sides.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        label_key: str = "label",
        spatial_dims: int = 3,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        check_spatial_dims(spatial_dims)
        self.label_key = label_key
        self.spatial_dims = spatial_dims
        self.num_classes = len(_table(spatial_dims))
        self._label = 0

    def randomize(self, data: Any = None) -> None:
        self._label = int(self.R.randint(self.num_classes))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        for key in self.key_iterator(d):
            img = convert_to_tensor(d[key], dtype=torch.float32, track_meta=False)
            if img.ndim != self.spatial_dims + 1:
                raise ValueError(
                    f"{key!r} must be (C, *spatial) with {self.spatial_dims} spatial dims, "
                    f"got shape {tuple(img.shape)}."
                )
            _check_equal_sides(tuple(img.shape[1:]), self.spatial_dims, f"{key!r} spatial shape")
            d[key] = rotate(img, self._label, self.spatial_dims).contiguous()
        d[self.label_key] = torch.tensor(self._label, dtype=torch.int64)
        return d


class RotationNet(nn.Module):
    """Encoder, global average pooling and a linear classifier over the rotation classes.

    Args:
        encoder: a medssl3d encoder (``forward_features``, ``out_channels``); kept as ``.encoder``.
        num_classes: number of rotation classes (10 in 3D, 4 in 2D).
        spatial_dims: 2 or 3; must match the encoder.

    Input (B, C, *spatial) -> logits (B, num_classes).
    """

    def __init__(self, encoder: nn.Module, num_classes: int, spatial_dims: int) -> None:
        super().__init__()
        features = check_encoder(encoder, spatial_dims)
        num_classes = check_int("num_classes", num_classes, minimum=2)
        self.encoder = encoder
        self.spatial_dims = spatial_dims
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, *spatial) -> logits (B, num_classes)."""
        if x.ndim != self.spatial_dims + 2:
            raise ValueError(
                f"RotationNet expects (B, C, *spatial) with {self.spatial_dims} spatial dims, "
                f"got shape {tuple(x.shape)}."
            )
        return self.head(global_pool(self.encoder.forward_features(x)))


class RotationTask(PretextTask):
    """Predict the 90-degree rotation applied to an image (10 classes in 3D, 4 in 2D).

    Args:
        spatial_dims: 2 or 3.
        input_size: spatial size of the (un-rotated) input, int or sequence; every rotated plane must have
            equal sides (a cube in 3D, a square in 2D). Default 64 in 3D, 128 in 2D.

    Attributes:
        rotations: the class -> ((spatial axis a, spatial axis b), quarter turns) table (module docstring).
        num_classes: ``len(rotations)``.

    Raises:
        ValueError: for a bad argument (the message names it).

    Example::

        task = RotationTask(spatial_dims=3, input_size=64)
        net = task.network(UNetEncoder(3, 1))
        t = task.transform()
        out = t({"image": torch.rand(1, 64, 64, 64)})  # out["image"] (1, 64, 64, 64), out["label"] in 0..9
    """

    name = "rotation"
    has_label = True

    def __init__(self, spatial_dims: int = 3, input_size: int | Sequence[int] | None = None) -> None:
        super().__init__(spatial_dims)
        if input_size is None:
            input_size = 64 if self.spatial_dims == 3 else 128
        self._input_size = check_size("input_size", input_size, self.spatial_dims)
        _check_equal_sides(self._input_size, self.spatial_dims, "input_size")
        self.rotations = _table(self.spatial_dims)
        self.num_classes = len(self.rotations)

    @property
    def input_size(self) -> tuple[int, ...]:
        return self._input_size

    def rotate(self, x: torch.Tensor, k: int | torch.Tensor) -> torch.Tensor:
        """Apply the rotation of class ``k`` to ``x`` (C, *spatial)."""
        return rotate(x, k, self.spatial_dims)

    def unrotate(self, x: torch.Tensor, k: int | torch.Tensor) -> torch.Tensor:
        """Undo the rotation of class ``k`` on ``x`` (C, *spatial)."""
        return unrotate(x, k, self.spatial_dims)

    def transform(self, keys: KeysCollection = "image", label_key: str = "label") -> RandRotate90Pretextd:
        return RandRotate90Pretextd(keys, label_key=label_key, spatial_dims=self.spatial_dims)

    def network(self, encoder: nn.Module) -> RotationNet:
        return RotationNet(encoder, self.num_classes, self.spatial_dims)

    def loss(self) -> nn.Module:
        return nn.CrossEntropyLoss()

    def correct(self, output: torch.Tensor, target: torch.Tensor | None) -> tuple[int, int]:
        if target is None:
            raise ValueError("RotationTask.correct needs the rotation labels as target, got None.")
        return int((output.argmax(1) == target.reshape(-1)).sum()), int(target.numel())

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "input_size": list(self._input_size),
            "num_classes": self.num_classes,
            "rotations": [[list(plane), k] for plane, k in self.rotations],
        }
