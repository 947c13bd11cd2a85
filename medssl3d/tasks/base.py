"""The contract every self-supervised pretext task fulfils.

A task bundles four things that must agree with each other: a dictionary transform that turns one
image into the pretext input and its target, the network that puts a task head on a shared encoder,
the loss, and a held-out score. Bundles wire them by calling the methods below, so one trainer and
one evaluator serve every task, in 2D and 3D.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn as nn
from monai.transforms import MapTransform

__all__ = ["PretextTask", "as_size", "global_pool", "check_encoder", "check_spatial_dims"]


def as_size(value: int | Sequence[int], spatial_dims: int, name: str) -> tuple[int, ...]:
    """An int or a sequence as a ``spatial_dims``-tuple of positive ints; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive int or {spatial_dims} positive ints, got {value!r}.")
    if isinstance(value, int):
        size = (value,) * spatial_dims
    else:
        try:
            size = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a positive int or {spatial_dims} positive ints, got {value!r}.") from None
    if len(size) != spatial_dims or any(s < 1 for s in size):
        raise ValueError(f"{name} must be a positive int or {spatial_dims} positive ints, got {value!r}.")
    return size


def check_spatial_dims(spatial_dims: Any) -> int:
    """``spatial_dims`` as an int, or ``ValueError`` unless it is 2 or 3 (one check for every task and transform)."""
    if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    return int(spatial_dims)


def global_pool(features: torch.Tensor) -> torch.Tensor:
    """Global average pooling of a (N, C, *spatial) feature map to (N, C)."""
    return features.flatten(2).mean(-1)


def check_encoder(encoder: nn.Module, spatial_dims: int) -> int:
    """Check ``encoder`` offers ``forward_features`` and ``out_channels`` for ``spatial_dims``; return ``out_channels``."""
    if not callable(getattr(encoder, "forward_features", None)) or not isinstance(
        getattr(encoder, "out_channels", None), int
    ):
        raise TypeError(
            f"{type(encoder).__name__} is not a medssl3d encoder: it needs forward_features(x) and an int "
            "out_channels (see medssl3d.nets.create_encoder)."
        )
    dims = getattr(encoder, "spatial_dims", spatial_dims)
    if dims != spatial_dims:
        raise ValueError(f"the task has spatial_dims={spatial_dims} but the encoder has spatial_dims={dims}.")
    return int(encoder.out_channels)


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
