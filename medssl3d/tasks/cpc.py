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
of the batch) and asks for the true one.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import convert_to_tensor

from medssl3d.losses.infonce import CPCLoss, cpc_scores
from medssl3d.nets.encoders import check_encoder, global_pool
from medssl3d.tasks.base import PretextTask
from medssl3d.utils.checks import check_int, check_positive_int, check_size

__all__ = ["CPCGridd", "CPCNet", "CPCTask", "grid_patches"]


def grid_patches(image: torch.Tensor, patch_size: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """All patches of a regular grid, in row-major grid order, with ``Tensor.unfold`` (no loop over patches).

    Args:
        image: (C, *spatial).
        patch_size: patch side per spatial axis.
        stride: step between patch starts per spatial axis.

    Returns:
        (P, C, *patch_size) where ``P = prod((spatial - patch_size) // stride + 1)``; patch number
        ``(g_0 * G_1 + g_1) * G_2 + g_2`` starts at ``(g_0, g_1, g_2) * stride``.
    """
    dims = len(patch_size)
    x = image
    for axis, (p, s) in enumerate(zip(patch_size, stride)):
        x = x.unfold(axis + 1, p, s)  # (C, G_0, .., G_axis, rest.., p_0, .., p_axis)
    # x: (C, G_0, .., G_{d-1}, p_0, .., p_{d-1}) -> (G_0, .., G_{d-1}, C, p_0, ..)
    x = x.permute(*range(1, dims + 1), 0, *range(dims + 1, 2 * dims + 1))
    return x.reshape(-1, image.shape[0], *patch_size)


class CPCGridd(MapTransform):
    """Cut ``data[key]`` (C, *input_size) into the overlapping CPC grid: (prod(grid_size), C, *patch_size).

    Deterministic (no random draws); see the module docstring for the patch order and positions.

    Args:
        keys: image key(s).
        patch_size: patch side(s); each must be even (stride = patch / 2).
        grid_size: patches per side.
        allow_missing_keys: don't raise if a key is missing.

    Raises:
        ValueError: (on call) if the image is not (C, *input_size).
    """

    def __init__(
        self,
        keys: KeysCollection,
        patch_size: Sequence[int],
        grid_size: Sequence[int],
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.patch_size = tuple(int(p) for p in patch_size)
        self.grid_size = tuple(int(g) for g in grid_size)
        self.stride = tuple(p // 2 for p in self.patch_size)
        self.input_size = tuple((g - 1) * s + p for g, s, p in zip(self.grid_size, self.stride, self.patch_size))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = convert_to_tensor(d[key], dtype=torch.float32, track_meta=False)
            if img.ndim != len(self.input_size) + 1 or tuple(img.shape[1:]) != self.input_size:
                raise ValueError(
                    f"{key!r} has shape {tuple(img.shape)} but the CPC grid needs (C, *{self.input_size}) "
                    f"(grid {self.grid_size}, patch {self.patch_size}); crop/pad the image to the task's input_size."
                )
            d[key] = grid_patches(img, self.patch_size, self.stride).contiguous()
        return d


class CPCNet(nn.Module):
    """Encoder + latent projection, a GRU context down the first grid axis, one Linear predictor per step.

    Args:
        encoder: a medssl3d encoder (``forward_features``, ``out_channels``); kept as ``.encoder``.
        spatial_dims: 2 or 3; must match the encoder.
        grid_size: patches per side (``spatial_dims`` ints), the order of :func:`grid_patches`.
        code_size: latent size ``D``.
        context_size: GRU hidden size.
        num_steps: ``K``, how many rows ahead are predicted (``1 <= K < grid_size[0]``).

    Input (B, P, C, *patch) with ``P = prod(grid_size)``. Output: a dict with ``"predictions"`` and
    ``"targets"``, each a tuple of ``K`` tensors; for step ``k`` both are (N_k, D), with
    ``N_k = B * (G_0 - k) * G_1 (* G_2)``, and row ``n`` of the predictions should match row ``n`` of the
    targets (same image, same column, ``k`` rows further).
    """

    def __init__(
        self,
        encoder: nn.Module,
        spatial_dims: int,
        grid_size: Sequence[int],
        code_size: int = 128,
        context_size: int = 256,
        num_steps: int = 3,
    ) -> None:
        super().__init__()
        features = check_encoder(encoder, spatial_dims)
        self.grid_size = check_size("grid_size", grid_size, spatial_dims)
        code_size = check_positive_int("code_size", code_size)
        context_size = check_positive_int("context_size", context_size)
        num_steps = check_positive_int("num_steps", num_steps)
        if num_steps >= self.grid_size[0]:
            raise ValueError(
                f"num_steps={num_steps} must be smaller than the grid's first side {self.grid_size[0]} "
                "(predictions look that many rows ahead)."
            )
        self.encoder = encoder
        self.spatial_dims = spatial_dims
        self.code_size = code_size
        self.num_steps = num_steps
        self.latent = nn.Linear(features, code_size)
        self.context = nn.GRU(code_size, context_size, batch_first=True)
        self.predictors = nn.ModuleList(nn.Linear(context_size, code_size) for _ in range(num_steps))

    def forward(self, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, ...]]:
        """x: (B, P, C, *patch) -> {"predictions": K x (N_k, D), "targets": K x (N_k, D)}."""
        n_patches = math.prod(self.grid_size)
        if x.ndim != self.spatial_dims + 3 or x.shape[1] != n_patches:
            raise ValueError(
                f"CPCNet expects (B, {n_patches}, C, *patch) for grid {self.grid_size}, got shape {tuple(x.shape)}."
            )
        batch = x.shape[0]
        z = self.latent(global_pool(self.encoder.forward_features(x.reshape(batch * n_patches, *x.shape[2:]))))
        z = z.view(batch, *self.grid_size, self.code_size)  # (B, G_0, G_1[, G_2], D)
        # every column (b, g_1[, g_2]) is one sequence along g_0
        cols = z.movedim(1, -2)  # (B, G_1[, G_2], G_0, D)
        c, _ = self.context(cols.reshape(-1, self.grid_size[0], self.code_size))
        c = c.view(*cols.shape[:-1], -1).movedim(-2, 1)  # (B, G_0, G_1[, G_2], H)
        predictions, targets = [], []
        for k, predictor in enumerate(self.predictors, start=1):
            predictions.append(predictor(c[:, :-k]).reshape(-1, self.code_size))
            targets.append(z[:, k:].reshape(-1, self.code_size))
        return {"predictions": tuple(predictions), "targets": tuple(targets)}


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
