"""Triplet losses. :class:`ExemplarTripletLoss`: the exemplar pretext task of Taleb et al. (2020), anchor
and positive are two augmented views of one image, the negative a view of another image.
:class:`LabeledTripletLoss`: every valid triplet of a labelled batch (batch-all mining) of the triplet fundus
reference, after Schroff et al. (2015), "FaceNet: A Unified Embedding for Face Recognition and Clustering", CVPR,
https://arxiv.org/abs/1503.03832.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from medssl3d.utils.checks import check_flag, check_non_negative, check_positive

__all__ = ["ExemplarTripletLoss", "LabeledTripletLoss", "pairwise_distances", "valid_triplet_mask"]


class ExemplarTripletLoss(nn.Module):
    """``torch.nn.TripletMarginLoss`` on the output of :class:`ExemplarNet`; the target is ignored.

    Args:
        margin: triplet margin (Taleb et al. use 1.0).
    """

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        self.margin = check_positive("margin", margin)
        self.triplet = nn.TripletMarginLoss(margin=self.margin)

    def forward(self, output: Mapping[str, torch.Tensor], target: Any = None) -> torch.Tensor:
        """output: dict with ``anchor``, ``positive``, ``negative`` (B, E) -> scalar loss."""
        return self.triplet(output["anchor"], output["positive"], output["negative"])


def pairwise_distances(embeddings: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Euclidean distances between all rows: (B, D) -> (B, B).

    ``sqrt(max(||a||^2 + ||b||^2 - 2 a.b, 0) + eps)``; ``eps`` keeps the gradient finite at zero distance (the
    diagonal is ``sqrt(eps)``, not 0).
    """
    dot = embeddings @ embeddings.T
    squared_norms = dot.diagonal()
    squared = (squared_norms[:, None] + squared_norms[None, :] - 2 * dot).clamp_min(0)
    return torch.sqrt(squared + eps)


def valid_triplet_mask(labels: torch.Tensor) -> torch.Tensor:
    """(B,) labels -> (B, B, B) boolean mask, ``[a, p, n]`` True for a valid triplet.

    Valid: ``a != p`` (indices), ``labels[a] == labels[p]`` and ``labels[a] != labels[n]`` (which implies
    ``n`` differs from ``a`` and ``p``).
    """
    same = labels[:, None] == labels[None, :]  # (B, B)
    distinct = ~torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    positive_pair = same & distinct
    return positive_pair[:, :, None] & ~same[:, None, :]


class LabeledTripletLoss(nn.Module):
    """Triplet margin loss averaged over every valid (anchor, positive, negative) triplet of a labelled batch.

    For all ``a, p, n`` with ``labels[a] == labels[p]``, ``a != p`` and ``labels[a] != labels[n]``:
    ``max(d(a, p) ** gamma - d(a, n) ** gamma + margin, 0)`` with ``d`` the Euclidean distance between the
    (L2-normalised) embeddings; the loss is the mean over valid triplets, active or not ("batch-all" mining,
    Schroff et al. 2015, https://arxiv.org/abs/1503.03832). Triplets come from a (B, B, B) mask over the (B, B)
    distance matrix, so memory grows as B^3 (256 -> 16.8 M entries).

    After each call :attr:`last_num_valid` is the number of valid triplets and :attr:`last_fraction_active`
    the fraction of them with a positive loss (0.0 when there is none). A batch without a valid triplet (one
    label, or all labels different) gives a loss of 0 that still backpropagates (zero gradients).

    Args:
        margin: triplet margin (> 0); 1.0 as in the triplet fundus reference ("All-triplet mining with
            margin=1.0").
        gamma: power on the distances, ``d ** gamma`` (> 0); 1.0 as in the reference.
        normalize: L2-normalise the embeddings first (the reference's projection head does it).
        eps: added to squared distances for a finite gradient at zero distance.

    Raises:
        ValueError: ``margin`` or ``gamma`` not positive, ``eps`` negative.

    Example:
        >>> loss = LabeledTripletLoss()
        >>> value = loss(torch.randn(8, 128), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
        >>> loss.last_num_valid  # 4 classes x 2 ordered pairs x 6 negatives
        48
    """

    def __init__(self, margin: float = 1.0, gamma: float = 1.0, normalize: bool = True, eps: float = 1e-12) -> None:
        super().__init__()
        self.margin = check_positive("margin", margin)
        self.gamma = check_positive("gamma", gamma)
        self.normalize = check_flag("normalize", normalize)
        self.eps = check_non_negative("eps", eps)
        self.last_num_valid = 0
        self.last_fraction_active = 0.0

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean triplet loss over the batch's valid triplets.

        Args:
            embeddings: (B, D) embeddings.
            labels: (B,) integer class labels (a (B, 1) column is accepted).

        Returns:
            Scalar loss.

        Raises:
            ValueError: ``embeddings`` is not 2-D, or ``labels`` does not hold one label per row.
        """
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
            raise ValueError(
                f"embeddings must be (B, D) and labels (B,), got {tuple(embeddings.shape)} and {tuple(labels.shape)}."
            )
        if self.normalize:
            embeddings = F.normalize(embeddings, dim=1)
        distances = pairwise_distances(embeddings, self.eps)
        if self.gamma != 1.0:
            distances = distances.pow(self.gamma)
        # [a, p, n] -> d(a, p) - d(a, n) + margin
        triplets = F.relu(distances[:, :, None] - distances[:, None, :] + self.margin)
        mask = valid_triplet_mask(labels.to(embeddings.device))
        num_valid = mask.sum()
        triplets = triplets * mask
        num_active = (triplets > 0).sum()
        counts = torch.stack([num_valid, num_active]).tolist()  # one device sync
        self.last_num_valid = int(counts[0])
        self.last_fraction_active = counts[1] / counts[0] if counts[0] else 0.0
        return triplets.sum() / num_valid.clamp_min(1)
