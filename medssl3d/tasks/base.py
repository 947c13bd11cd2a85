"""The contract every self-supervised pretext task fulfils.

A task bundles four things that must agree with each other: a dictionary transform that turns one
image into the pretext input and its target, the network that puts a task head on a shared encoder,
the loss, and a held-out score. Bundles wire them by calling the methods below, so one trainer and
one evaluator serve every task, in 2D and 3D.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
import torch.nn as nn
from monai.transforms import MapTransform

from medssl3d.utils.checks import check_spatial_dims

__all__ = ["PretextTask"]


class PretextTask(ABC):
    """One pretext task: transform, network, loss and held-out score.

    Subclasses validate their arguments in ``__init__`` (``ValueError`` naming the value) and set
    ``name``. ``spatial_dims`` is 2 or 3; the same class serves both.
    """

    name: ClassVar[str] = ""
    #: whether :meth:`transform` writes a target under ``label_key`` (False for exemplar and CPC)
    has_label: ClassVar[bool] = True

    def __init__(self, spatial_dims: int) -> None:
        self.spatial_dims = check_spatial_dims(spatial_dims)

    @property
    @abstractmethod
    def input_size(self) -> tuple[int, ...]:
        """Spatial size of the image the transform expects; the pipeline crops/pads every image to it."""

    @abstractmethod
    def transform(self, keys: str = "image", label_key: str = "label") -> MapTransform:
        """A randomizable dictionary transform: ``data[keys]`` (C, *input_size) becomes the pretext input.

        It writes a float32 tensor to ``data[keys]`` and, when :attr:`has_label`, the int64 0-d target to
        ``data[label_key]``. Randomness only through ``self.R`` so ``set_determinism`` reproduces it.
        """

    @abstractmethod
    def network(self, encoder: nn.Module) -> nn.Module:
        """The pretext model: ``encoder`` (kept as attribute ``.encoder``) plus the task head."""

    @abstractmethod
    def loss(self) -> nn.Module:
        """``loss(output, target)`` -> scalar; ``target`` is ``None`` for tasks without labels."""

    @abstractmethod
    def correct(self, output: Any, target: torch.Tensor | None) -> tuple[int, int]:
        """(number right, number judged) on one batch, for the held-out pretext accuracy."""

    def state(self) -> dict[str, Any]:
        """Plain (JSON-able) settings saved next to the encoder weights; includes ``name``."""
        return {"name": self.name, "spatial_dims": self.spatial_dims}
