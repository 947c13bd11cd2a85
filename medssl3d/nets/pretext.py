"""The pretext-task networks: an :class:`~medssl3d.nets.encoder_head.EncoderWithHead` with each task's head.

=====================================  ========================  ==========================================
network                                input                     head on the pooled features ``F``
=====================================  ========================  ==========================================
:class:`RotationNet`                   (B, C, *spatial)          Linear(F, classes)
:class:`JigsawNet`                     (B, P, C, *patch)         per patch Linear + ReLU, concatenated, MLP
:class:`RelativePatchLocationNet`      (B, 2, C, *patch)         the two patches concatenated, MLP
:class:`CPCNet`                        (B, P, C, *patch)         :class:`CPCHead` (latent, GRU, predictors)
:class:`ExemplarNet`                   (B, 2, C, *spatial)       Linear(F, embedding); negatives rolled
:class:`JointEmbeddingNet`             (B, 2, C, *spatial)       a projection head, both views as one batch
:class:`TripletEmbeddingNet`           (B[, V], C, *spatial)     a projection head
=====================================  ========================  ==========================================

In every one the encoder runs once over all views/patches of a batch. The classes keep the names,
arguments and attributes of the task modules' former networks; :attr:`EncoderWithHead.renamed_keys` maps
the state-dict keys of checkpoints written before, so a run resumes across the change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn

from medssl3d.nets.encoder_head import ANY_VIEWS, EncoderWithHead
from medssl3d.nets.encoders import check_encoder
from medssl3d.utils.checks import check_int, check_positive_int, check_size

__all__ = [
    "CPCHead",
    "CPCNet",
    "ExemplarNet",
    "JigsawNet",
    "JointEmbeddingNet",
    "RelativePatchLocationNet",
    "RotationNet",
    "TripletEmbeddingNet",
    "ViewConcatHead",
]


class ViewConcatHead(nn.Module):
    """(B, V, F) pooled views -> optional layer per view -> the V rows concatenated in input order -> classifier.

    Args:
        classifier: the module on the concatenated (B, V * F') rows; kept as ``.classifier``.
        per_view: a module applied to each view's (F,) row first (any module acting on the last axis), or None.
    """

    def __init__(self, classifier: nn.Module, per_view: nn.Module | None = None) -> None:
        super().__init__()
        self.per_view = per_view
        self.classifier = classifier

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled: (B, V, F) -> classifier output (B, K)."""
        if self.per_view is not None:
            pooled = self.per_view(pooled)
        return self.classifier(pooled.flatten(1))


class RotationNet(EncoderWithHead):
    """Encoder, global average pooling and a linear classifier over the rotation classes.

    Args:
        encoder: a medssl3d encoder (``forward_features``, ``out_channels``); kept as ``.encoder``.
        num_classes: number of rotation classes (10 in 3D, 4 in 2D).
        spatial_dims: 2 or 3; must match the encoder.

    Input (B, C, *spatial) -> logits (B, num_classes).
    """

    def __init__(self, encoder: nn.Module, num_classes: int, spatial_dims: int) -> None:
        features = check_encoder(encoder, spatial_dims)
        num_classes = check_int("num_classes", num_classes, minimum=2)
        super().__init__(encoder, spatial_dims, nn.Linear(features, num_classes))


class JigsawNet(EncoderWithHead):
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

    renamed_keys = {"patch_fc.": "head.per_view.", "classifier.": "head.classifier."}

    def __init__(
        self,
        encoder: nn.Module,
        spatial_dims: int,
        n_patches: int,
        n_classes: int,
        hidden_size: int = 64,
        fc_size: int = 512,
    ) -> None:
        features = check_encoder(encoder, spatial_dims)
        n_patches = check_positive_int("n_patches", n_patches)
        n_classes = check_positive_int("n_classes", n_classes)
        hidden_size = check_positive_int("hidden_size", hidden_size)
        fc_size = check_positive_int("fc_size", fc_size)
        # per-patch layer first: the order the layers draw their initial weights in, as before
        per_patch = nn.Sequential(nn.Linear(features, hidden_size), nn.ReLU(inplace=True))
        classifier = nn.Sequential(
            nn.Linear(n_patches * hidden_size, fc_size), nn.ReLU(inplace=True), nn.Linear(fc_size, n_classes)
        )
        head = ViewConcatHead(classifier, per_view=per_patch)
        super().__init__(encoder, spatial_dims, head, views=n_patches, head_per_view=False, input_name="patches")
        self.n_patches, self.n_classes = n_patches, n_classes


class RelativePatchLocationNet(EncoderWithHead):
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

    renamed_keys = {"classifier.": "head.classifier."}

    def __init__(self, encoder: nn.Module, spatial_dims: int, n_classes: int, hidden_size: int = 512) -> None:
        features = check_encoder(encoder, spatial_dims)
        n_classes = check_positive_int("n_classes", n_classes)
        hidden_size = check_positive_int("hidden_size", hidden_size)
        classifier = nn.Sequential(
            nn.Linear(2 * features, hidden_size), nn.ReLU(inplace=True), nn.Linear(hidden_size, n_classes)
        )
        head = ViewConcatHead(classifier)
        super().__init__(encoder, spatial_dims, head, views=2, head_per_view=False, input_name="patches")
        self.n_classes = n_classes


class CPCHead(nn.Module):
    """Latent projection, a GRU context down the first grid axis and one Linear predictor per step.

    Args:
        features: size ``F`` of the pooled encoder features.
        grid_size: patches per side (``spatial_dims`` ints), the order of the patches (C order).
        code_size: latent size ``D``.
        context_size: GRU hidden size.
        num_steps: ``K``, how many rows ahead are predicted (``1 <= K < grid_size[0]``).

    Input (B, P, F) with ``P = prod(grid_size)``. Output: a dict with ``"predictions"`` and ``"targets"``,
    each a tuple of ``K`` tensors; for step ``k`` both are (N_k, D), with ``N_k = B * (G_0 - k) * G_1 (* G_2)``,
    and row ``n`` of the predictions should match row ``n`` of the targets (same image, same column, ``k``
    rows further).
    """

    def __init__(
        self, features: int, grid_size: Sequence[int], code_size: int, context_size: int, num_steps: int
    ) -> None:
        super().__init__()
        self.grid_size = tuple(grid_size)
        self.code_size = code_size
        self.latent = nn.Linear(features, code_size)
        self.context = nn.GRU(code_size, context_size, batch_first=True)
        self.predictors = nn.ModuleList(nn.Linear(context_size, code_size) for _ in range(num_steps))

    def forward(self, pooled: torch.Tensor) -> dict[str, tuple[torch.Tensor, ...]]:
        batch = pooled.shape[0]
        z = self.latent(pooled).view(batch, *self.grid_size, self.code_size)  # (B, G_0, G_1[, G_2], D)
        # every column (b, g_1[, g_2]) is one sequence along g_0
        cols = z.movedim(1, -2)  # (B, G_1[, G_2], G_0, D)
        c, _ = self.context(cols.reshape(-1, self.grid_size[0], self.code_size))
        c = c.view(*cols.shape[:-1], -1).movedim(-2, 1)  # (B, G_0, G_1[, G_2], H)
        predictions, targets = [], []
        for k, predictor in enumerate(self.predictors, start=1):
            predictions.append(predictor(c[:, :-k]).reshape(-1, self.code_size))
            targets.append(z[:, k:].reshape(-1, self.code_size))
        return {"predictions": tuple(predictions), "targets": tuple(targets)}


class CPCNet(EncoderWithHead):
    """Encoder + :class:`CPCHead`: contrastive predictive coding over a grid of patches.

    Args:
        encoder: a medssl3d encoder (``forward_features``, ``out_channels``); kept as ``.encoder``.
        spatial_dims: 2 or 3; must match the encoder.
        grid_size: patches per side (``spatial_dims`` ints), the order of
            :func:`~medssl3d.transforms.pretext.grid_patches`.
        code_size: latent size ``D``.
        context_size: GRU hidden size.
        num_steps: ``K``, how many rows ahead are predicted (``1 <= K < grid_size[0]``).

    Input (B, P, C, *patch) with ``P = prod(grid_size)``; output: see :class:`CPCHead`. ``latent``,
    ``context`` and ``predictors`` are the head's layers.
    """

    renamed_keys = {"latent.": "head.latent.", "context.": "head.context.", "predictors.": "head.predictors."}

    def __init__(
        self,
        encoder: nn.Module,
        spatial_dims: int,
        grid_size: Sequence[int],
        code_size: int = 128,
        context_size: int = 256,
        num_steps: int = 3,
    ) -> None:
        features = check_encoder(encoder, spatial_dims)
        grid_size = check_size("grid_size", grid_size, spatial_dims)
        code_size = check_positive_int("code_size", code_size)
        context_size = check_positive_int("context_size", context_size)
        num_steps = check_positive_int("num_steps", num_steps)
        if num_steps >= grid_size[0]:
            raise ValueError(
                f"num_steps={num_steps} must be smaller than the grid's first side {grid_size[0]} "
                "(predictions look that many rows ahead)."
            )
        head = CPCHead(features, grid_size, code_size, context_size, num_steps)
        super().__init__(
            encoder, spatial_dims, head, views=math.prod(grid_size), head_per_view=False, input_name="patches"
        )
        self.grid_size, self.code_size, self.num_steps = grid_size, code_size, num_steps

    @property
    def latent(self) -> nn.Linear:
        return self.head.latent

    @property
    def context(self) -> nn.GRU:
        return self.head.context

    @property
    def predictors(self) -> nn.ModuleList:
        return self.head.predictors


class ExemplarNet(EncoderWithHead):
    """Embed anchor and positive views in one encoder call; take negatives from other samples of the batch.

    Args:
        encoder: a medssl3d encoder (``forward_features``, ``out_channels``); kept as ``.encoder``.
        spatial_dims: 2 or 3; must match the encoder.
        embedding_size: size of the embedding (a Linear on the globally pooled features; ``.embedding``).

    Input (B, 2, C, *spatial) with ``B >= 2``. Output: a dict of ``"anchor"``, ``"positive"``,
    ``"negative"`` (each (B, embedding_size)) and ``"negative_index"`` (B,) int64: ``negative[i]`` is
    ``positive[negative_index[i]]`` and ``negative_index[i] = (i + 1) % B != i``.
    """

    renamed_keys = {"embedding.": "head."}

    def __init__(self, encoder: nn.Module, spatial_dims: int, embedding_size: int = 1024) -> None:
        features = check_encoder(encoder, spatial_dims)
        embedding_size = check_positive_int("embedding_size", embedding_size)
        super().__init__(encoder, spatial_dims, nn.Linear(features, embedding_size), views=2)

    @property
    def embedding(self) -> nn.Linear:
        return self.head

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (B, 2, C, *spatial) -> dict of anchor/positive/negative (B, E) and negative_index (B,)."""
        if x.ndim == self.spatial_dims + 3 and x.shape[0] < 2:
            raise ValueError(
                f"ExemplarNet needs at least 2 images per batch (negatives come from other images), got batch size "
                f"{x.shape[0]}; raise batch_size to 2 or more (and use drop_last=True if the last batch can hold 1)."
            )
        return super().forward(x)

    def outputs(self, pooled: torch.Tensor, head_output: torch.Tensor) -> dict[str, torch.Tensor]:
        anchor, positive = head_output[:, 0], head_output[:, 1]
        negative_index = torch.roll(torch.arange(head_output.shape[0], device=head_output.device), -1)
        return {
            "anchor": anchor,
            "positive": positive,
            "negative": positive[negative_index],
            "negative_index": negative_index,
        }


class JointEmbeddingNet(EncoderWithHead):
    """Encoder, global pooling and a head, applied to both views of a batch in one encoder call.

    Args:
        encoder: a medssl3d encoder (``forward_features``, ``out_channels``); kept as ``.encoder``.
        spatial_dims: 2 or 3; must match the encoder.
        head: maps pooled (N, ``encoder.out_channels``) features to (N, D) embeddings (e.g.
            :func:`~medssl3d.nets.simclr_projection_head`); kept as ``.head``.

    Input (B, 2, C, *spatial). Output: a dict of ``"z1"``, ``"z2"`` (B, D) embeddings of view 1 and 2 (the
    loss's input) and ``"h1"``, ``"h2"`` (B, F) pooled encoder features (the representation that transfers).
    Both views go through the encoder and the head as one batch of ``2B`` images, so batch normalisation sees
    both views.
    """

    layout_hint = " (two views per image)"

    def __init__(self, encoder: nn.Module, spatial_dims: int, head: nn.Module) -> None:
        super().__init__(encoder, spatial_dims, head, views=2)

    def outputs(self, pooled: torch.Tensor, head_output: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"z1": head_output[:, 0], "z2": head_output[:, 1], "h1": pooled[:, 0], "h2": pooled[:, 1]}


class TripletEmbeddingNet(EncoderWithHead):
    """Encoder, global average pooling and a head: (B, C, *spatial) images -> (B, D) embeddings.

    Args:
        encoder: a medssl3d encoder (``forward_features``, ``out_channels``); kept as ``.encoder``.
        spatial_dims: 2 or 3; must match the encoder.
        head: maps pooled (N, ``encoder.out_channels``) features to (N, D) (e.g.
            :func:`~medssl3d.nets.triplet_projection`, which L2-normalises); kept as ``.head``.

    x: (B, C, *spatial) -> (B, D); or (B, V, C, *spatial) views -> (B, V, D), all in one encoder call.
    """

    def __init__(self, encoder: nn.Module, spatial_dims: int, head: nn.Module) -> None:
        super().__init__(encoder, spatial_dims, head, views=ANY_VIEWS)
