"""Jigsaw puzzle pretext task, 2D and 3D.

Noroozi, M., Favaro, P. "Unsupervised Learning of Visual Representations by Solving Jigsaw Puzzles",
ECCV 2016. https://arxiv.org/abs/1603.09246
Taleb, A. et al. "3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020 (3D puzzles).
https://arxiv.org/abs/2006.03829

The image is split into a grid of 3x3 (2D) or 3x3x3 (3D) cells of ``patch_size + jitter``; one patch of
``patch_size`` is cut from each cell at an independent random offset in ``[0, jitter]`` (so borders do not
line up and the task cannot be solved from edge continuity alone). The patches are shuffled by one of a
fixed set of permutations chosen far apart (:mod:`medssl3d.transforms.pretext.permutations`) and the network predicts
which one: a shared encoder embeds every patch, the embeddings are concatenated in the shuffled order and
two fully connected layers classify the permutation. The transform (:class:`JigsawPuzzled`, array form
:class:`~medssl3d.transforms.pretext.JigsawPuzzle`) lives in :mod:`medssl3d.transforms.pretext.jigsaw`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from monai.config import KeysCollection

from medssl3d.nets.pretext import JigsawNet
from medssl3d.transforms.pretext import JigsawPuzzled, check_permutations, maximal_hamming_permutations
from medssl3d.utils.checks import check_non_negative_int, check_positive_int, check_size

from ._patches import count_correct
from .base import PretextTask

__all__ = ["JigsawPuzzled", "JigsawNet", "JigsawTask"]

#: (patch_size, jitter) defaults per spatial_dims (Taleb et al. 2020 settings)
DEFAULTS: dict[int, tuple[int, int]] = {3: (16, 3), 2: (64, 8)}


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
