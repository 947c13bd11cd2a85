"""Optimiser parameter groups for fine-tuning an encoder-plus-head network at two learning rates."""

from __future__ import annotations

from typing import Any

import torch

from medssl3d.utils.checks import check_non_negative
from medssl3d.utils.distributed import unwrap_model

__all__ = ["encoder_head_param_groups"]


def encoder_head_param_groups(
    network: torch.nn.Module, learning_rate: float, encoder_lr_factor: float = 1.0
) -> list[dict[str, Any]]:
    """Two groups: the encoder's parameters at ``learning_rate * encoder_lr_factor``, then the head's.

    The head's group sets no ``lr``, so it trains at the optimiser's own ``lr`` (the bundles pass the same
    ``learning_rate`` there). A pretrained encoder is usually fine-tuned more gently than the new head
    (``encoder_lr_factor`` 0.1). Frozen parameters (``requires_grad=False``) are included, so a later unfreeze
    (``FreezeEncoder``) trains them.

    Args:
        network: a module with ``encoder`` and ``head`` sub-modules (:class:`~medssl3d.nets.Classifier`), or a
            ``DistributedDataParallel`` / ``DataParallel`` wrapper of one.
        learning_rate: the head's learning rate, >= 0.
        encoder_lr_factor: the encoder's learning rate relative to the head's, >= 0.

    Returns:
        ``[{"params": [encoder parameters], "lr": learning_rate * encoder_lr_factor},
        {"params": [head parameters]}]``.

    Raises:
        ValueError: a negative rate or factor, or a network without ``encoder`` or ``head``.

    Example (bundle JSON)::

        "params": {"_target_": "medssl3d.optimizers.encoder_head_param_groups", "network": "@network",
                   "learning_rate": "@learning_rate", "encoder_lr_factor": "@encoder_lr_factor"}
    """
    lr = check_non_negative("learning_rate", learning_rate)
    factor = check_non_negative("encoder_lr_factor", encoder_lr_factor)
    network = unwrap_model(network)
    parts = {}
    for name in ("encoder", "head"):
        part = getattr(network, name, None)
        if not isinstance(part, torch.nn.Module):
            raise ValueError(
                f"encoder_head_param_groups needs a network with 'encoder' and 'head' sub-modules; "
                f"{type(network).__name__} has no {name!r}."
            )
        parts[name] = part
    return [
        {"params": list(parts["encoder"].parameters()), "lr": lr * factor},
        {"params": list(parts["head"].parameters())},
    ]
