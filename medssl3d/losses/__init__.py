"""Losses: tensor-in, scalar-out modules (InfoNCE for CPC, triplet losses)."""

from __future__ import annotations

from medssl3d.losses.infonce import CPCLoss, cpc_scores
from medssl3d.losses.triplet import ExemplarTripletLoss

__all__ = ["CPCLoss", "ExemplarTripletLoss", "cpc_scores"]
