"""Relative patch location pretext task, 2D and 3D.

Doersch, C., Gupta, A., Efros, A. A. "Unsupervised Visual Representation Learning by Context Prediction",
ICCV 2015. https://arxiv.org/abs/1505.05192
Taleb, A. et al. "3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020 (3D version, 26 classes).
https://arxiv.org/abs/2006.03829

A 3x3 (2D) or 3x3x3 (3D) grid of cells is laid over the image, with a ``gap`` between neighbouring cells.
The network sees the centre patch and the patch of one of the 8 / 26 neighbouring cells and predicts
which neighbour it is. Each patch lies at an independent random offset in ``[0, jitter]`` inside its cell,
so neighbouring patches are at least ``gap`` apart and their borders never line up (Doersch et al.: else
the task is solved from low-level edge continuity).

Classes are the neighbour offsets in the fixed order of :func:`neighbour_offsets`: every vector of
``{-1, 0, 1}^spatial_dims`` except zero, in C order (last axis fastest). In 2D:
``0 (-1,-1), 1 (-1,0), 2 (-1,1), 3 (0,-1), 4 (0,1), 5 (1,-1), 6 (1,0), 7 (1,1)``; in 3D class ``k`` is the
``k``-th of ``(-1,-1,-1), (-1,-1,0), ..., (1,1,1)`` with ``(0,0,0)`` skipped (class 12 is ``(0,0,-1)``,
class 13 is ``(0,0,1)``). The transform (:class:`RelativePatchLocationd`, array form
:class:`~medssl3d.transforms.pretext.RelativePatchLocation`) lives in :mod:`medssl3d.transforms.pretext.rpl`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.config import KeysCollection

from medssl3d.nets.pretext import RelativePatchLocationNet
from medssl3d.transforms.pretext import RelativePatchLocationd, neighbour_offsets
from medssl3d.utils.checks import check_positive_int, check_size

from ._patches import count_correct
from .base import PretextTask

__all__ = ["neighbour_offsets", "RelativePatchLocationd", "RelativePatchLocationNet", "RelativePatchLocationTask"]

#: (patch_size, jitter, gap) defaults per spatial_dims
DEFAULTS: dict[int, tuple[int, int, int]] = {3: (16, 3, 4), 2: (64, 8, 16)}


class RelativePatchLocationTask(PretextTask):
    """Relative patch location: which of the 8 (2D) / 26 (3D) neighbours of the centre patch is shown.

    Args:
        spatial_dims: 2 or 3.
        patch_size: patch size (int or ints); default 16 (3D) / 64 (2D).
        jitter: maximal random offset of a patch inside its cell (int or ints, >= 0); default 3 (3D) / 8 (2D).
        gap: space between neighbouring cells (int or ints, >= 0); default 4 (3D) / 16 (2D).
            ``input_size = 3 * (patch_size + jitter) + 2 * gap``: 65^3 in 3D, 248^2 in 2D by default.
        hidden_size: hidden layer size of :class:`RelativePatchLocationNet`.

    Attributes:
        offsets: int64 (n_classes, spatial_dims), the neighbour direction of each class
            (:func:`neighbour_offsets`).

    Raises:
        ValueError: for a bad argument (the message names it).

    Example::

        task = RelativePatchLocationTask(spatial_dims=3)  # input_size (65, 65, 65), 26 classes
        xf = task.transform()                             # data["image"] -> (2, 1, 16, 16, 16)
        net = task.network(UNetEncoder(3, 1, base_filters=16, levels=4))
    """

    name = "rpl"
    has_label = True

    def __init__(
        self,
        spatial_dims: int,
        patch_size: int | Sequence[int] | None = None,
        jitter: int | Sequence[int] | None = None,
        gap: int | Sequence[int] | None = None,
        hidden_size: int = 512,
    ) -> None:
        super().__init__(spatial_dims)
        default_patch, default_jitter, default_gap = DEFAULTS[self.spatial_dims]
        patch_size = default_patch if patch_size is None else patch_size
        self.patch_size = check_size("patch_size", patch_size, self.spatial_dims)
        self.jitter = check_size("jitter", default_jitter if jitter is None else jitter, self.spatial_dims, minimum=0)
        self.gap = check_size("gap", default_gap if gap is None else gap, self.spatial_dims, minimum=0)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.offsets = neighbour_offsets(self.spatial_dims)

    @property
    def input_size(self) -> tuple[int, ...]:
        """``3 * (patch_size + jitter) + 2 * gap`` per axis."""
        return tuple(3 * (p + j) + 2 * g for p, j, g in zip(self.patch_size, self.jitter, self.gap))

    @property
    def n_classes(self) -> int:
        """8 in 2D, 26 in 3D."""
        return len(self.offsets)

    def transform(self, keys: KeysCollection = "image", label_key: str = "label") -> RelativePatchLocationd:
        """A :class:`RelativePatchLocationd` with this task's patches, jitter and gap."""
        return RelativePatchLocationd(
            keys, self.spatial_dims, self.patch_size, jitter=self.jitter, gap=self.gap, label_key=label_key
        )

    def network(self, encoder: nn.Module) -> RelativePatchLocationNet:
        """A :class:`RelativePatchLocationNet` on ``encoder``."""
        return RelativePatchLocationNet(encoder, self.spatial_dims, self.n_classes, hidden_size=self.hidden_size)

    def loss(self) -> nn.Module:
        """Cross-entropy over the neighbour classes."""
        return nn.CrossEntropyLoss()

    def correct(self, output: torch.Tensor, target: torch.Tensor | None) -> tuple[int, int]:
        """(pairs whose neighbour is predicted right, pairs) for logits (B, n_classes), labels (B,)."""
        return count_correct(output, target)

    def state(self) -> dict[str, Any]:
        """Plain settings; ``RelativePatchLocationTask(**{k: v for k, v in state.items() if k != "name"})``
        rebuilds the task."""
        return {
            **super().state(),
            "patch_size": list(self.patch_size),
            "jitter": list(self.jitter),
            "gap": list(self.gap),
            "hidden_size": self.hidden_size,
        }
