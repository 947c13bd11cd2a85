"""Loss adapters: a pure tensor loss applied to what a pretext network returns, as ``loss(output, target)``.

MONAI's ``SupervisedTrainer`` calls ``loss_function(network_output, target)``. The pretext networks return
dicts (two views) or stacked views, while the losses of this package take plain tensors; an adapter
unpacks one into the other, so each loss stays a plain, separately tested function of tensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from medssl3d.losses.triplet import LabeledTripletLoss

__all__ = ["TripletLabelLoss", "ViewPairLoss", "flatten_views"]


class ViewPairLoss(nn.Module):
    """Apply a two-view loss ``loss(z1, z2)`` to a :class:`~medssl3d.nets.JointEmbeddingNet` output dict.

    Args:
        loss: a tensor-in, scalar-out loss of two (B, D) tensors (``NTXentLoss``, ``VICRegLoss``); kept as
            ``.loss`` (e.g. for ``VICRegLoss.last_terms``).
        keys: the output keys of the two views.
    """

    def __init__(self, loss: nn.Module, keys: Sequence[str] = ("z1", "z2")) -> None:
        super().__init__()
        keys = tuple(keys)
        if len(keys) != 2:
            raise ValueError(f"keys must name the two views' outputs, got {keys!r}.")
        self.loss = loss
        self.keys = keys

    def forward(self, output: Mapping[str, torch.Tensor], target: Any = None) -> torch.Tensor:
        """output: the network's dict; target: ignored (``None``: the task has no label). Returns a scalar."""
        return self.loss(output[self.keys[0]], output[self.keys[1]])


def flatten_views(output: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, V, D) embeddings and (B,) labels -> (B*V, D) and each label repeated V times; (B, D) unchanged."""
    if output.ndim != 3:
        return output, labels
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != output.shape[:1]:
        raise ValueError(
            f"(B, V, D) embeddings need (B,) labels, got {tuple(output.shape)} and {tuple(labels.shape)}."
        )
    views = output.shape[1]
    return output.reshape(-1, output.shape[-1]), labels.repeat_interleave(views)


class TripletLabelLoss(nn.Module):
    """``loss(embeddings, labels)`` of :class:`~medssl3d.losses.LabeledTripletLoss`, computed in float32.

    Mixed precision is switched off inside: in float16 the loss's ``eps`` under the square root rounds to 0, so
    the zero diagonal distances would give an infinite (masked, hence NaN) gradient.

    Args:
        loss: the labelled triplet loss; kept as ``.loss`` (for ``last_num_valid`` / ``last_fraction_active``).
    """

    def __init__(self, loss: LabeledTripletLoss) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, output: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        """output: (B, D) embeddings, or (B, V, D) for V views per image; target: (B,) class labels.

        The views of an image are samples with the image's label, so every image has a positive (its other
        views) even when it is the only one of its class in the batch. Returns a scalar.
        """
        if target is None:
            raise ValueError("the triplet loss needs the class labels as target, got None.")
        output, labels = flatten_views(output, torch.as_tensor(target, device=output.device).long())
        with torch.autocast(device_type=output.device.type, enabled=False):
            return self.loss(output.float(), labels)
