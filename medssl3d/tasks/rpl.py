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
class 13 is ``(0,0,1)``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from monai.config import KeysCollection
from monai.transforms import MapTransform

from medssl3d.nets.encoders import check_encoder
from medssl3d.utils.checks import check_positive_int, check_size, check_spatial_dims

from ._patches import PatchPretextd, count_correct, cut_patches, encode_patches
from .base import PretextTask

__all__ = ["neighbour_offsets", "RelativePatchLocationd", "RelativePatchLocationNet", "RelativePatchLocationTask"]

#: (patch_size, jitter, gap) defaults per spatial_dims
DEFAULTS: dict[int, tuple[int, int, int]] = {3: (16, 3, 4), 2: (64, 8, 16)}


def neighbour_offsets(spatial_dims: int) -> np.ndarray:
    """The 8 (2D) / 26 (3D) neighbour directions as an int64 array (n_classes, spatial_dims); row k is class k."""
    check_spatial_dims(spatial_dims)
    every = np.array(list(itertools.product((-1, 0, 1), repeat=spatial_dims)), dtype=np.int64)
    return every[np.any(every != 0, axis=1)]


class RelativePatchLocationd(PatchPretextd):
    """Cut the centre patch and one random neighbour patch of a 3x3(x3) grid with gaps and jitter.

    Cells are ``patch_size + jitter`` wide and ``gap`` apart, so cell ``c`` (``c`` in ``{0, 1, 2}`` per axis)
    starts at ``c * (patch_size + jitter + gap)`` and the image is ``3 * (patch_size + jitter) + 2 * gap``
    (:attr:`input_size`). For each call a class ``k`` and one offset in ``[0, jitter]`` per patch and axis are
    drawn (``self.R``, shared by all ``keys``); the centre patch comes from cell ``(1, ..., 1)`` and the
    neighbour from cell ``(1, ..., 1) + offsets[k]``.

    Args:
        keys: keys of the images; each (C, *input_size) array/tensor/MetaTensor.
        spatial_dims: 2 or 3.
        patch_size: patch size (int or ints).
        jitter: maximal random offset of a patch inside its cell (int or ints, >= 0).
        gap: space between neighbouring cells (int or ints, >= 0).
        label_key: where the class (int64 0-d tensor) is written.
        allow_missing_keys: don't raise if a key is missing.

    Output: ``data[key]`` float32 tensor (2, C, *patch_size) = [centre, neighbour]; ``data[label_key]``.

    Raises:
        ValueError: for bad arguments, or an image whose shape is not (C, *input_size).
    """

    def __init__(
        self,
        keys: KeysCollection,
        spatial_dims: int,
        patch_size: int | Sequence[int],
        jitter: int | Sequence[int] = 0,
        gap: int | Sequence[int] = 0,
        label_key: str = "label",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.offsets = neighbour_offsets(spatial_dims)
        self.spatial_dims = int(spatial_dims)
        self.patch_size = check_size("patch_size", patch_size, spatial_dims)
        self.jitter = check_size("jitter", jitter, spatial_dims, minimum=0)
        self.gap = check_size("gap", gap, spatial_dims, minimum=0)
        self.label_key = label_key
        #: distance between the starts of neighbouring cells
        self.step = tuple(p + j + g for p, j, g in zip(self.patch_size, self.jitter, self.gap))
        self.input_size = tuple(3 * (p + j) + 2 * g for p, j, g in zip(self.patch_size, self.jitter, self.gap))
        self._label = 0
        self._shifts = np.zeros((2, self.spatial_dims), dtype=np.int64)

    @property
    def n_classes(self) -> int:
        return len(self.offsets)

    def randomize(self, data: Any = None) -> None:
        """Draw the class and one offset in ``[0, jitter]`` per patch and axis."""
        self._label = int(self.R.randint(self.n_classes))
        high = np.asarray(self.jitter, dtype=np.int64) + 1
        self._shifts = self.R.randint(0, high, size=(2, self.spatial_dims)).astype(np.int64)

    def patch_pair(self, image: torch.Tensor, label: int, shifts: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The [centre, neighbour] pair for a given class and offsets (the deterministic part of ``__call__``).

        Args:
            image: (C, *input_size) tensor.
            label: class, i.e. row of :attr:`offsets`.
            shifts: (2, spatial_dims) offsets of the centre and neighbour patch inside their cells.

        Returns:
            (2, C, *patch_size).
        """
        step = torch.as_tensor(self.step, dtype=torch.int64)
        centre = torch.ones(self.spatial_dims, dtype=torch.int64)
        cells = torch.stack([centre, centre + torch.as_tensor(self.offsets[label])])
        starts = cells * step + torch.as_tensor(np.asarray(shifts), dtype=torch.int64)
        return cut_patches(image, starts.to(image.device), self.patch_size)

    def pretext_input(self, image: torch.Tensor) -> torch.Tensor:
        return self.patch_pair(image, self._label, self._shifts)

    def pretext_label(self) -> int:
        return self._label


class RelativePatchLocationNet(nn.Module):
    """Shared encoder on the centre and neighbour patch, then an MLP on the concatenated embeddings.

    encoder -> global average pool -> concatenate [centre, neighbour] -> Linear(2F, hidden_size) + ReLU
    -> Linear(hidden_size, n_classes).

    Args:
        encoder: a medssl3d encoder (``forward_features``, ``out_channels``); kept as ``self.encoder``.
        spatial_dims: 2 or 3.
        n_classes: number of neighbour positions (8 in 2D, 26 in 3D).
        hidden_size: hidden layer size.

    Input (B, 2, C, *patch); output logits (B, n_classes). The encoder runs once on (2B, C, *patch).
    """

    def __init__(self, encoder: nn.Module, spatial_dims: int, n_classes: int, hidden_size: int = 512) -> None:
        super().__init__()
        features = check_encoder(encoder, spatial_dims)
        self.spatial_dims = spatial_dims
        self.n_classes = check_positive_int("n_classes", n_classes)
        hidden_size = check_positive_int("hidden_size", hidden_size)
        self.encoder = encoder
        self.classifier = nn.Sequential(
            nn.Linear(2 * features, hidden_size), nn.ReLU(inplace=True), nn.Linear(hidden_size, self.n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes) for pairs ``x`` (B, 2, C, *patch)."""
        pooled = encode_patches(self.encoder, x, 2, self.spatial_dims, type(self).__name__)
        return self.classifier(pooled.flatten(1))


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
