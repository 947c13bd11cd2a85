"""Losses: tensor-in, scalar-out modules (InfoNCE for CPC, NT-Xent, VICReg/SiCoVa, triplet losses)."""

from __future__ import annotations

from medssl3d.losses.adapters import TripletLabelLoss, ViewPairLoss, flatten_views
from medssl3d.losses.classification import classification_loss
from medssl3d.losses.infonce import CPCLoss, cpc_scores
from medssl3d.losses.ntxent import NTXentLoss, gather_with_grad
from medssl3d.losses.triplet import ExemplarTripletLoss, LabeledTripletLoss, pairwise_distances, valid_triplet_mask
from medssl3d.losses.vicreg import (
    VICRegLoss,
    covariance_loss,
    cross_correlation_loss,
    invariance_loss,
    variance_loss,
)

__all__ = [
    "CPCLoss",
    "TripletLabelLoss",
    "ViewPairLoss",
    "flatten_views",
    "ExemplarTripletLoss",
    "LabeledTripletLoss",
    "NTXentLoss",
    "VICRegLoss",
    "classification_loss",
    "covariance_loss",
    "cpc_scores",
    "cross_correlation_loss",
    "gather_with_grad",
    "invariance_loss",
    "pairwise_distances",
    "valid_triplet_mask",
    "variance_loss",
]
