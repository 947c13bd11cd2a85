"""Triplet losses. :class:`ExemplarTripletLoss`: the exemplar pretext task of Taleb et al. (2020), anchor
and positive are two augmented views of one image, the negative a view of another image.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

__all__ = ["ExemplarTripletLoss"]


class ExemplarTripletLoss(nn.Module):
    """``torch.nn.TripletMarginLoss`` on the output of :class:`ExemplarNet`; the target is ignored.

    Args:
        margin: triplet margin (Taleb et al. use 1.0).
    """

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or margin <= 0:
            raise ValueError(f"margin must be a positive number, got {margin!r}.")
        self.margin = float(margin)
        self.triplet = nn.TripletMarginLoss(margin=self.margin)

    def forward(self, output: Mapping[str, torch.Tensor], target: Any = None) -> torch.Tensor:
        """output: dict with ``anchor``, ``positive``, ``negative`` (B, E) -> scalar loss."""
        return self.triplet(output["anchor"], output["positive"], output["negative"])
