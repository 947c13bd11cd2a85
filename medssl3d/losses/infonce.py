"""InfoNCE for contrastive predictive coding (van den Oord et al. 2018, "Representation Learning with
Contrastive Predictive Coding", https://arxiv.org/abs/1807.03748), as used by Taleb et al. (2020) in 2D and 3D.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["CPCLoss", "cpc_scores"]


def cpc_scores(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """InfoNCE scores: (N, D) predictions x (N, D) targets -> (N, N) dot products; the diagonal is positive."""
    return prediction @ target.T


class CPCLoss(nn.Module):
    """InfoNCE: cross-entropy of each prediction's scores over all targets of its step, to its own target.

    For step ``k`` with ``N_k`` predictions, each has ``N_k`` candidates (its true latent and every other
    target of that step, across positions and images), so at initialisation the loss is about
    ``mean_k log(N_k)``. The loss is the mean over steps; the target argument is ignored.
    """

    def forward(self, output: Mapping[str, Sequence[torch.Tensor]], target: Any = None) -> torch.Tensor:
        """output: {"predictions": K x (N_k, D), "targets": K x (N_k, D)} -> scalar."""
        losses = []
        for pred, tgt in zip(output["predictions"], output["targets"]):
            scores = cpc_scores(pred, tgt)
            losses.append(F.cross_entropy(scores, torch.arange(scores.shape[0], device=scores.device)))
        return torch.stack(losses).mean()
