"""Rotation prediction: recognise which of a fixed set of 90-degree rotations was applied to an image.

Gidaris, S., Singh, P., Komodakis, N. "Unsupervised Representation Learning by Predicting Image
Rotations", ICLR 2018. https://arxiv.org/abs/1803.07728 (2D, 4 classes).

Taleb, A. et al. "3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020.
https://arxiv.org/abs/2006.03829 (3D, 10 classes: the identity and 90/180/270 degrees about each axis).

The class -> rotation table (``task.rotations``) and the transform (:class:`RandRotate90Pretextd`, array form
:class:`~medssl3d.transforms.pretext.RandRotate90Pretext`) live in :mod:`medssl3d.transforms.pretext.rotation`,
whose docstring explains the classes: in 3D, 0 is the identity and 1..3 / 4..6 / 7..9 are 90/180/270 degrees
about spatial axis 0 / 1 / 2; in 2D the classes are 0..3 quarter turns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.config import KeysCollection

from medssl3d.nets.pretext import RotationNet
from medssl3d.tasks.base import PretextTask
from medssl3d.transforms.pretext import (
    ROTATIONS_2D,
    ROTATIONS_3D,
    RandRotate90Pretextd,
    check_equal_sides,
    rotate,
    rotation_table,
    unrotate,
)
from medssl3d.utils.checks import check_size

__all__ = ["ROTATIONS_2D", "ROTATIONS_3D", "RandRotate90Pretextd", "RotationNet", "RotationTask", "rotate", "unrotate"]


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
        check_equal_sides(self._input_size, self.spatial_dims, "input_size")
        self.rotations = rotation_table(self.spatial_dims)
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
