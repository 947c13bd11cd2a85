"""Contrastive predictive coding (CPC) on an overlapping grid of patches.

van den Oord, A., Li, Y., Vinyals, O. "Representation Learning with Contrastive Predictive Coding",
2018. https://arxiv.org/abs/1807.03748

Taleb, A. et al. "3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020.
https://arxiv.org/abs/2006.03829 (3D CPC: a 4x4x4 grid of patches overlapping by half; 5x5 in 2D).

The image is cut into a deterministic grid of ``G_0 x G_1 (x G_2)`` patches of size ``patch_size`` at
stride ``patch_size / 2`` (50 % overlap); patch ``(g_0, g_1, g_2)`` starts at ``g * stride`` and is
number ``(g_0 * G_1 + g_1) * G_2 + g_2`` (row-major), so the image must be exactly
``(G - 1) * stride + patch_size`` per side (the pipeline's random crop supplies the randomness). Each
patch is encoded once to a latent ``z`` (global pooling, Linear to ``code_size``). A GRU runs down the
first grid axis for every column in parallel, giving a context ``c`` at every row; from the context at row
``r`` a Linear per step ``k = 1..K`` predicts ``z`` at row ``r + k`` of the same column. The InfoNCE loss
scores each prediction against all latents that are targets of the same ``k`` (every position, every image
of the batch) and asks for the true one. The grid transform (:class:`CPCGridd`, array form
:class:`~medssl3d.transforms.pretext.CPCGrid`) lives in :mod:`medssl3d.transforms.pretext.cpc`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.config import KeysCollection

from medssl3d.losses.infonce import CPCLoss, cpc_scores
from medssl3d.nets.pretext import CPCNet
from medssl3d.tasks.base import PretextTask
from medssl3d.transforms.pretext import CPCGridd, grid_patches
from medssl3d.utils.checks import check_int, check_positive_int, check_size

__all__ = ["CPCGridd", "CPCNet", "CPCTask", "grid_patches"]


class CPCTask(PretextTask):
    """Contrastive predictive coding on a half-overlapping grid of patches.

    Args:
        spatial_dims: 2 or 3.
        patch_size: patch side(s), even; default 16 in 3D, 32 in 2D.
        grid_size: patches per side; default 4 in 3D, 5 in 2D (Taleb et al.).
        code_size: latent size (default 128).
        context_size: GRU hidden size (default 256).
        num_steps: rows predicted ahead; default ``min(3, grid_size[0] - 1)``.

    The input size is ``(grid_size - 1) * patch_size / 2 + patch_size`` per side (3D default 40, 2D 96).

    Raises:
        ValueError: for a bad argument (the message names it).

    Example::

        task = CPCTask(spatial_dims=3)
        net, loss = task.network(UNetEncoder(3, 1, levels=2)), task.loss()
        patches = task.transform()({"image": torch.rand(1, *task.input_size)})["image"]  # (64, 1, 16, 16, 16)
    """

    name = "cpc"
    has_label = False

    def __init__(
        self,
        spatial_dims: int = 3,
        patch_size: int | Sequence[int] | None = None,
        grid_size: int | Sequence[int] | None = None,
        code_size: int = 128,
        context_size: int = 256,
        num_steps: int | None = None,
    ) -> None:
        super().__init__(spatial_dims)
        if patch_size is None:
            patch_size = 16 if self.spatial_dims == 3 else 32
        if grid_size is None:
            grid_size = 4 if self.spatial_dims == 3 else 5
        self.patch_size = check_size("patch_size", patch_size, self.spatial_dims)
        if any(p < 2 or p % 2 for p in self.patch_size):
            raise ValueError(
                f"patch_size {list(self.patch_size)} must be even and >= 2 per side (the grid overlaps by half a "
                "patch); e.g. use " + str([max(2, p + p % 2) for p in self.patch_size]) + "."
            )
        self.grid_size = check_size("grid_size", grid_size, self.spatial_dims)
        if self.grid_size[0] < 2:
            raise ValueError(f"grid_size {list(self.grid_size)} needs at least 2 rows along the first axis.")
        if num_steps is None:
            num_steps = min(3, self.grid_size[0] - 1)
        self.num_steps = check_int("num_steps", num_steps, 1, self.grid_size[0] - 1, hint=" (less than grid_size[0])")
        self.code_size = check_positive_int("code_size", code_size)
        self.context_size = check_positive_int("context_size", context_size)
        self.stride = tuple(p // 2 for p in self.patch_size)

    @property
    def input_size(self) -> tuple[int, ...]:
        return tuple((g - 1) * s + p for g, s, p in zip(self.grid_size, self.stride, self.patch_size))

    @property
    def num_patches(self) -> int:
        return math.prod(self.grid_size)

    def transform(self, keys: KeysCollection = "image", label_key: str = "label") -> CPCGridd:
        return CPCGridd(keys, self.patch_size, self.grid_size)

    def network(self, encoder: nn.Module) -> CPCNet:
        return CPCNet(encoder, self.spatial_dims, self.grid_size, self.code_size, self.context_size, self.num_steps)

    def loss(self) -> CPCLoss:
        return CPCLoss()

    def correct(self, output: Mapping[str, Sequence[torch.Tensor]], target: Any = None) -> tuple[int, int]:
        """Predictions whose highest score is their own target (top-1 of the InfoNCE scores), over all steps."""
        right = judged = 0
        for pred, tgt in zip(output["predictions"], output["targets"]):
            scores = cpc_scores(pred, tgt)
            right += int((scores.argmax(1) == torch.arange(scores.shape[0], device=scores.device)).sum())
            judged += scores.shape[0]
        return right, judged

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "input_size": list(self.input_size),
            "patch_size": list(self.patch_size),
            "grid_size": list(self.grid_size),
            "code_size": self.code_size,
            "context_size": self.context_size,
            "num_steps": self.num_steps,
        }
