"""Jigsaw puzzle transforms, 2D and 3D: a grid of jittered patches shuffled by one of a fixed set of permutations.

Noroozi, M., Favaro, P. "Unsupervised Learning of Visual Representations by Solving Jigsaw Puzzles",
ECCV 2016. https://arxiv.org/abs/1603.09246
Taleb, A. et al. "3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020 (3D puzzles).
https://arxiv.org/abs/2006.03829

The image is split into a grid of cells of ``patch_size + jitter``; one patch of ``patch_size`` is cut from
each cell at an independent random offset in ``[0, jitter]`` (so borders do not line up and the puzzle cannot
be solved from edge continuity alone), and the patches are shuffled by one of a fixed set of permutations
chosen far apart (:mod:`medssl3d.transforms.pretext.permutations`). The class is the permutation's index.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from medssl3d.transforms.pretext.base import array_property
from medssl3d.transforms.pretext.patches import PatchPretext, PatchPretextd, cut_patches, grid_cell_starts
from medssl3d.transforms.pretext.permutations import check_permutations
from medssl3d.utils.checks import check_size, check_spatial_dims

__all__ = ["JigsawPuzzle", "JigsawPuzzled"]


class JigsawPuzzle(PatchPretext):
    """Cut a grid of jittered patches from one image and shuffle them by a random permutation of a fixed set.

    Each draw (:meth:`randomize`, ``self.R``) picks one permutation index ``k`` and one offset per cell. Cell
    ``i`` (C order over the grid, see :func:`grid_cell_starts`) starts at ``cell_index * (patch_size + jitter)``;
    its patch starts ``offset_i`` in ``[0, jitter]`` further. The output puts the patch of cell
    ``permutations[k][j]`` at position ``j``, so ``original[permutations[k]] == output`` undoes the shuffle.

    Args:
        spatial_dims: 2 or 3.
        permutations: (n_perms, prod(grid)) permutations of the cells (validated by :func:`check_permutations`).
        patch_size: spatial size of one patch (int or ``spatial_dims`` ints).
        jitter: maximal random offset of a patch inside its cell, per axis (int or ints, >= 0).
        grid: cells per axis (int or ints).

    ``__call__(img, randomize=True)`` takes a (C, *input_size) array/tensor/MetaTensor, with
    ``input_size = grid * (patch_size + jitter)``, and returns the tuple ``(puzzle, label)``: the float32
    tensor (P, C, *patch_size), ``P = prod(grid)``, and the permutation index ``k`` as an int64 0-d tensor.
    ``randomize=False`` reuses the last draw.

    Raises:
        ValueError: for bad arguments, or an image whose shape is not (C, *input_size).

    Example::

        puzzle = JigsawPuzzle(2, maximal_hamming_permutations(9, 10), patch_size=4, jitter=1)
        x, k = puzzle(torch.rand(1, 15, 15))  # x (9, 1, 4, 4); x == patches[puzzle.permutations[k]]
    """

    def __init__(
        self,
        spatial_dims: int,
        permutations: np.ndarray | Sequence[Sequence[int]],
        patch_size: int | Sequence[int],
        jitter: int | Sequence[int] = 0,
        grid: int | Sequence[int] = 3,
    ) -> None:
        check_spatial_dims(spatial_dims)
        self.spatial_dims = int(spatial_dims)
        self.patch_size = check_size("patch_size", patch_size, spatial_dims)
        self.jitter = check_size("jitter", jitter, spatial_dims, minimum=0)
        self.grid = check_size("grid", grid, spatial_dims)
        self.n_patches = math.prod(self.grid)
        self.permutations = check_permutations(permutations, self.n_patches)
        self.cell_size = tuple(p + j for p, j in zip(self.patch_size, self.jitter))
        self.input_size = tuple(g * c for g, c in zip(self.grid, self.cell_size))
        self.cell_starts = grid_cell_starts(self.grid, self.cell_size)
        self._perm_index = 0
        self._shifts = np.zeros((self.n_patches, self.spatial_dims), dtype=np.int64)

    def randomize(self, data: Any = None) -> None:
        """Draw the permutation index and one offset in ``[0, jitter]`` per cell and axis."""
        self._perm_index = int(self.R.randint(len(self.permutations)))
        high = np.asarray(self.jitter, dtype=np.int64) + 1
        self._shifts = self.R.randint(0, high, size=(self.n_patches, self.spatial_dims)).astype(np.int64)

    def puzzle(self, image: torch.Tensor, perm_index: int, shifts: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The puzzle for a given permutation and offsets (the deterministic part of ``__call__``).

        Args:
            image: (C, *input_size) tensor.
            perm_index: row of :attr:`permutations`.
            shifts: (P, spatial_dims) offsets of the patches inside their cells, each in ``[0, jitter]``.

        Returns:
            (P, C, *patch_size); position ``j`` holds the patch of cell ``permutations[perm_index][j]``.
        """
        starts = self.cell_starts + torch.as_tensor(np.asarray(shifts), dtype=torch.int64)
        patches = cut_patches(image, starts.to(image.device), self.patch_size)
        order = torch.as_tensor(self.permutations[perm_index], device=image.device)
        return patches[order]

    def pretext_input(self, image: torch.Tensor) -> torch.Tensor:
        return self.puzzle(image, self._perm_index, self._shifts)

    def pretext_label(self) -> int:
        return self._perm_index


class JigsawPuzzled(PatchPretextd):
    """Dictionary form of :class:`JigsawPuzzle`: puzzle every key with one draw, write the permutation index.

    For each call one permutation index ``k`` and one offset per cell are drawn (through the array form, from
    this transform's ``self.R``), shared by all ``keys``. Cell ``i`` (C order over the grid, see
    :func:`grid_cell_starts`) starts at ``cell_index * (patch_size + jitter)``; its patch starts ``offset_i`` in
    ``[0, jitter]`` further. The output puts the patch of cell ``permutations[k][j]`` at position ``j``, so
    ``original[permutations[k]] == output`` undoes the shuffle.

    Args:
        keys: keys of the images to puzzle; each (C, *input_size) array/tensor/MetaTensor.
        spatial_dims: 2 or 3.
        permutations: (n_perms, prod(grid)) permutations of the cells (validated by :func:`check_permutations`).
        patch_size: spatial size of one patch (int or ``spatial_dims`` ints).
        jitter: maximal random offset of a patch inside its cell, per axis (int or ints, >= 0).
        grid: cells per axis (int or ints).
        label_key: where the permutation index (int64 0-d tensor) is written.
        allow_missing_keys: don't raise if a key is missing.

    Output: ``data[key]`` float32 tensor (P, C, *patch_size) with ``P = prod(grid)``; ``data[label_key]``.

    Raises:
        ValueError: for bad arguments, or an image whose shape is not (C, *input_size).
    """

    patch_size = array_property("patch_size")
    jitter = array_property("jitter")
    grid = array_property("grid")
    n_patches = array_property("n_patches")
    permutations = array_property("permutations")
    cell_size = array_property("cell_size")
    cell_starts = array_property("cell_starts")

    def __init__(
        self,
        keys: KeysCollection,
        spatial_dims: int,
        permutations: np.ndarray | Sequence[Sequence[int]],
        patch_size: int | Sequence[int],
        jitter: int | Sequence[int] = 0,
        grid: int | Sequence[int] = 3,
        label_key: str = "label",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.array_transform = JigsawPuzzle(spatial_dims, permutations, patch_size, jitter=jitter, grid=grid)
        self.label_key = label_key

    def puzzle(self, image: torch.Tensor, perm_index: int, shifts: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The puzzle for a given permutation and offsets: :meth:`JigsawPuzzle.puzzle`."""
        return self.array_transform.puzzle(image, perm_index, shifts)
