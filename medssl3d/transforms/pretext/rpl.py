"""Relative patch location transforms, 2D and 3D: the centre patch and one neighbour of a 3x3(x3) grid.

Doersch, C., Gupta, A., Efros, A. A. "Unsupervised Visual Representation Learning by Context Prediction",
ICCV 2015. https://arxiv.org/abs/1505.05192
Taleb, A. et al. "3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020 (3D version, 26 classes).
https://arxiv.org/abs/2006.03829

A 3x3 (2D) or 3x3x3 (3D) grid of cells is laid over the image, with a ``gap`` between neighbouring cells.
The transform cuts the centre patch and the patch of one of the 8 / 26 neighbouring cells; the class says
which neighbour. Each patch lies at an independent random offset in ``[0, jitter]`` inside its cell, so
neighbouring patches are at least ``gap`` apart and their borders never line up (Doersch et al.: else the
task is solved from low-level edge continuity).

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
from monai.config import KeysCollection
from monai.transforms import MapTransform

from medssl3d.transforms.pretext.base import array_property
from medssl3d.transforms.pretext.patches import PatchPretext, PatchPretextd, cut_patches
from medssl3d.utils.checks import check_size, check_spatial_dims

__all__ = ["neighbour_offsets", "RelativePatchLocation", "RelativePatchLocationd"]


def neighbour_offsets(spatial_dims: int) -> np.ndarray:
    """The 8 (2D) / 26 (3D) neighbour directions as an int64 array (n_classes, spatial_dims); row k is class k."""
    check_spatial_dims(spatial_dims)
    every = np.array(list(itertools.product((-1, 0, 1), repeat=spatial_dims)), dtype=np.int64)
    return every[np.any(every != 0, axis=1)]


class RelativePatchLocation(PatchPretext):
    """Cut the centre patch and one random neighbour patch of a 3x3(x3) grid with gaps and jitter.

    Cells are ``patch_size + jitter`` wide and ``gap`` apart, so cell ``c`` (``c`` in ``{0, 1, 2}`` per axis)
    starts at ``c * (patch_size + jitter + gap)`` and the image is ``3 * (patch_size + jitter) + 2 * gap``
    (:attr:`input_size`). Each draw (:meth:`randomize`, ``self.R``) picks a class ``k`` and one offset in
    ``[0, jitter]`` per patch and axis; the centre patch comes from cell ``(1, ..., 1)`` and the neighbour
    from cell ``(1, ..., 1) + offsets[k]``.

    Args:
        spatial_dims: 2 or 3.
        patch_size: patch size (int or ints).
        jitter: maximal random offset of a patch inside its cell (int or ints, >= 0).
        gap: space between neighbouring cells (int or ints, >= 0).

    ``__call__(img, randomize=True)`` takes a (C, *input_size) array/tensor/MetaTensor and returns the tuple
    ``(pair, label)``: the float32 tensor (2, C, *patch_size) = [centre, neighbour] and the class ``k`` (row of
    :attr:`offsets`) as an int64 0-d tensor. ``randomize=False`` reuses the last draw.

    Raises:
        ValueError: for bad arguments, or an image whose shape is not (C, *input_size).

    Example::

        rpl = RelativePatchLocation(2, patch_size=8, jitter=1, gap=2)  # input_size (31, 31)
        pair, k = rpl(torch.rand(1, 31, 31))  # pair (2, 1, 8, 8); pair[1] lies rpl.offsets[k] cells from pair[0]
    """

    def __init__(
        self,
        spatial_dims: int,
        patch_size: int | Sequence[int],
        jitter: int | Sequence[int] = 0,
        gap: int | Sequence[int] = 0,
    ) -> None:
        self.offsets = neighbour_offsets(spatial_dims)
        self.spatial_dims = int(spatial_dims)
        self.patch_size = check_size("patch_size", patch_size, spatial_dims)
        self.jitter = check_size("jitter", jitter, spatial_dims, minimum=0)
        self.gap = check_size("gap", gap, spatial_dims, minimum=0)
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


class RelativePatchLocationd(PatchPretextd):
    """Dictionary form of :class:`RelativePatchLocation`: one draw for all keys, the class under ``label_key``.

    Cells are ``patch_size + jitter`` wide and ``gap`` apart, so cell ``c`` (``c`` in ``{0, 1, 2}`` per axis)
    starts at ``c * (patch_size + jitter + gap)`` and the image is ``3 * (patch_size + jitter) + 2 * gap``
    (:attr:`input_size`). For each call a class ``k`` and one offset in ``[0, jitter]`` per patch and axis are
    drawn (through the array form, from this transform's ``self.R``), shared by all ``keys``; the centre patch
    comes from cell ``(1, ..., 1)`` and the neighbour from cell ``(1, ..., 1) + offsets[k]``.

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

    offsets = array_property("offsets")
    patch_size = array_property("patch_size")
    jitter = array_property("jitter")
    gap = array_property("gap")
    step = array_property("step")
    n_classes = array_property("n_classes")

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
        self.array_transform = RelativePatchLocation(spatial_dims, patch_size, jitter=jitter, gap=gap)
        self.label_key = label_key

    def patch_pair(self, image: torch.Tensor, label: int, shifts: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The [centre, neighbour] pair for a given class and offsets: :meth:`RelativePatchLocation.patch_pair`."""
        return self.array_transform.patch_pair(image, label, shifts)
