"""Jigsaw puzzle pretext task, 2D and 3D.

Noroozi, M., Favaro, P. "Unsupervised Learning of Visual Representations by Solving Jigsaw Puzzles",
ECCV 2016. https://arxiv.org/abs/1603.09246
Taleb, A. et al. "3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020 (3D puzzles).
https://arxiv.org/abs/2006.03829

The image is split into a grid of 3x3 (2D) or 3x3x3 (3D) cells of ``patch_size + jitter``; one patch of
``patch_size`` is cut from each cell at an independent random offset in ``[0, jitter]`` (so borders do not
line up and the task cannot be solved from edge continuity alone). The patches are shuffled by one of a
fixed set of permutations chosen far apart (:mod:`medssl3d.tasks.permutations`) and the network predicts
which one: a shared encoder embeds every patch, the embeddings are concatenated in the shuffled order and
two fully connected layers classify the permutation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from monai.config import KeysCollection
from monai.transforms import MapTransform

from medssl3d.nets.encoders import check_encoder
from medssl3d.utils.checks import check_non_negative_int, check_positive_int, check_size, check_spatial_dims

from ._patches import PatchPretextd, count_correct, cut_patches, encode_patches, grid_cell_starts
from .base import PretextTask
from .permutations import check_permutations, maximal_hamming_permutations

__all__ = ["JigsawPuzzled", "JigsawNet", "JigsawTask"]

#: (patch_size, jitter) defaults per spatial_dims (Taleb et al. 2020 settings)
DEFAULTS: dict[int, tuple[int, int]] = {3: (16, 3), 2: (64, 8)}


class JigsawPuzzled(PatchPretextd):
    """Cut a grid of jittered patches and shuffle them by a random permutation of a fixed set.

    For each call one permutation index ``k`` and one offset per cell are drawn (``self.R``), shared by all
    ``keys``. Cell ``i`` (C order over the grid, see :func:`grid_cell_starts`) starts at
    ``cell_index * (patch_size + jitter)``; its patch starts ``offset_i`` in ``[0, jitter]`` further. The output
    puts the patch of cell ``permutations[k][j]`` at position ``j``, so
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
        check_spatial_dims(spatial_dims)
        self.spatial_dims = int(spatial_dims)
        self.patch_size = check_size("patch_size", patch_size, spatial_dims)
        self.jitter = check_size("jitter", jitter, spatial_dims, minimum=0)
        self.grid = check_size("grid", grid, spatial_dims)
        self.n_patches = math.prod(self.grid)
        self.permutations = check_permutations(permutations, self.n_patches)
        self.label_key = label_key
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


class JigsawNet(nn.Module):
    """Shared encoder over all patches, a per-patch embedding, and a permutation classifier.

    encoder -> global average pool -> Linear(F, hidden_size) + ReLU per patch -> concatenate in input
    order -> Linear(P * hidden_size, fc_size) + ReLU -> Linear(fc_size, n_classes).

    Args:
        encoder: a medssl3d encoder (``forward_features``, ``out_channels``); kept as ``self.encoder``.
        spatial_dims: 2 or 3.
        n_patches: patches per puzzle ``P``.
        n_classes: number of permutations.
        hidden_size: per-patch embedding size.
        fc_size: size of the hidden layer of the classifier.

    Input (B, P, C, *patch); output logits (B, n_classes). The encoder runs once on (B * P, C, *patch).
    """

    def __init__(
        self,
        encoder: nn.Module,
        spatial_dims: int,
        n_patches: int,
        n_classes: int,
        hidden_size: int = 64,
        fc_size: int = 512,
    ) -> None:
        super().__init__()
        features = check_encoder(encoder, spatial_dims)
        self.spatial_dims = spatial_dims
        self.n_patches = check_positive_int("n_patches", n_patches)
        self.n_classes = check_positive_int("n_classes", n_classes)
        hidden_size = check_positive_int("hidden_size", hidden_size)
        fc_size = check_positive_int("fc_size", fc_size)
        self.encoder = encoder
        self.patch_fc = nn.Sequential(nn.Linear(features, hidden_size), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(
            nn.Linear(self.n_patches * hidden_size, fc_size), nn.ReLU(inplace=True), nn.Linear(fc_size, self.n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes) for puzzles ``x`` (B, P, C, *patch)."""
        pooled = encode_patches(self.encoder, x, self.n_patches, self.spatial_dims, type(self).__name__)
        return self.classifier(self.patch_fc(pooled).flatten(1))


class JigsawTask(PretextTask):
    """Jigsaw puzzle: predict which of ``num_permutations`` permutations shuffled a grid of patches.

    Args:
        spatial_dims: 2 or 3.
        patch_size: patch size (int or ints); default 16 (3D) / 64 (2D).
        jitter: maximal random offset of a patch inside its cell (int or ints, >= 0); default 3 (3D) / 8 (2D).
            Cells are ``patch_size + jitter``, so ``input_size = grid * (patch_size + jitter)``.
        grid: cells per axis; default 3 (27 patches in 3D, 9 in 2D).
        num_permutations: number of classes; default 100, or the number of ``permutations`` given.
        seed: seed of :func:`maximal_hamming_permutations` (ignored when ``permutations`` is given).
        permutations: a stored permutation set to reuse (e.g. ``state()["permutations"]`` of a pretraining run).
        hidden_size: per-patch embedding size of :class:`JigsawNet`.
        fc_size: hidden layer size of the permutation classifier.

    Raises:
        ValueError: for a bad argument (the message names it).

    Example::

        task = JigsawTask(spatial_dims=3)          # input_size (57, 57, 57), 100 classes
        xf = task.transform()                      # data["image"] (1, 57, 57, 57) -> (27, 1, 16, 16, 16)
        net = task.network(UNetEncoder(3, 1, base_filters=16, levels=4))
        task2 = JigsawTask(**{k: v for k, v in task.state().items() if k != "name"})  # same puzzle
    """

    name = "jigsaw"
    has_label = True

    def __init__(
        self,
        spatial_dims: int,
        patch_size: int | Sequence[int] | None = None,
        jitter: int | Sequence[int] | None = None,
        grid: int | Sequence[int] = 3,
        num_permutations: int | None = None,
        seed: int = 0,
        permutations: np.ndarray | Sequence[Sequence[int]] | None = None,
        hidden_size: int = 64,
        fc_size: int = 512,
    ) -> None:
        super().__init__(spatial_dims)
        default_patch, default_jitter = DEFAULTS[self.spatial_dims]
        patch_size = default_patch if patch_size is None else patch_size
        self.patch_size = check_size("patch_size", patch_size, self.spatial_dims)
        self.jitter = check_size("jitter", default_jitter if jitter is None else jitter, self.spatial_dims, minimum=0)
        self.grid = check_size("grid", grid, self.spatial_dims)
        self.n_patches = math.prod(self.grid)
        if self.n_patches < 2:
            raise ValueError(f"grid {grid!r} has a single cell; a puzzle needs at least 2 (e.g. grid=3).")
        self.seed = check_non_negative_int("seed", seed)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.fc_size = check_positive_int("fc_size", fc_size)
        if num_permutations is not None:
            num_permutations = check_positive_int("num_permutations", num_permutations)
            if num_permutations < 2:
                raise ValueError("num_permutations must be at least 2: with one the label is always 0.")
        if permutations is not None:
            self.permutations = check_permutations(permutations, self.n_patches)
            if num_permutations is not None and num_permutations != len(self.permutations):
                raise ValueError(
                    f"num_permutations={num_permutations} but {len(self.permutations)} permutations were given; "
                    "leave num_permutations out when passing permutations."
                )
        else:
            n_perms = 100 if num_permutations is None else num_permutations
            if n_perms > math.factorial(self.n_patches):
                raise ValueError(
                    f"num_permutations={n_perms} exceeds the {math.factorial(self.n_patches)} permutations of "
                    f"{self.n_patches} patches (grid {self.grid}); lower num_permutations or enlarge the grid."
                )
            self.permutations = maximal_hamming_permutations(self.n_patches, n_perms, seed=self.seed)
        self.num_permutations = len(self.permutations)
        self.cell_size = tuple(p + j for p, j in zip(self.patch_size, self.jitter))

    @property
    def input_size(self) -> tuple[int, ...]:
        """``grid * (patch_size + jitter)`` per axis."""
        return tuple(g * c for g, c in zip(self.grid, self.cell_size))

    @property
    def n_classes(self) -> int:
        """Number of permutations (classes)."""
        return self.num_permutations

    def transform(self, keys: KeysCollection = "image", label_key: str = "label") -> JigsawPuzzled:
        """A :class:`JigsawPuzzled` with this task's grid, patches, jitter and permutations."""
        return JigsawPuzzled(
            keys,
            self.spatial_dims,
            self.permutations,
            self.patch_size,
            jitter=self.jitter,
            grid=self.grid,
            label_key=label_key,
        )

    def network(self, encoder: nn.Module) -> JigsawNet:
        """A :class:`JigsawNet` on ``encoder``."""
        return JigsawNet(
            encoder,
            self.spatial_dims,
            self.n_patches,
            self.num_permutations,
            hidden_size=self.hidden_size,
            fc_size=self.fc_size,
        )

    def loss(self) -> nn.Module:
        """Cross-entropy over the permutation classes."""
        return nn.CrossEntropyLoss()

    def correct(self, output: torch.Tensor, target: torch.Tensor | None) -> tuple[int, int]:
        """(puzzles whose permutation is predicted right, puzzles) for logits (B, n_classes), labels (B,)."""
        return count_correct(output, target)

    def state(self) -> dict[str, Any]:
        """Plain settings; ``JigsawTask(**{k: v for k, v in state.items() if k != "name"})`` rebuilds the task."""
        return {
            **super().state(),
            "patch_size": list(self.patch_size),
            "jitter": list(self.jitter),
            "grid": list(self.grid),
            "num_permutations": self.num_permutations,
            "seed": self.seed,
            "hidden_size": self.hidden_size,
            "fc_size": self.fc_size,
            "permutations": self.permutations.tolist(),
        }
