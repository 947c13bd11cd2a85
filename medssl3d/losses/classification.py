"""The supervised classification loss of a bundle's mode: softmax cross-entropy, or per-finding BCE."""

from __future__ import annotations

from typing import Any

import torch

from medssl3d.utils.flags import as_flag

__all__ = ["classification_loss"]


def classification_loss(multi_label: Any = False, **kwargs: Any) -> torch.nn.Module:
    """``BCEWithLogitsLoss`` for multi-label findings (one sigmoid output each), else ``CrossEntropyLoss``.

    Args:
        multi_label: the mode, a bool or a config string (``"true"``/``"false"``, read by
            :func:`~medssl3d.utils.flags.as_flag`).
        kwargs: passed to the loss (e.g. ``pos_weight`` or ``weight``, ``label_smoothing``).

    Raises:
        ValueError: ``multi_label`` is not a flag.

    Example (bundle JSON)::

        "loss": {"_target_": "medssl3d.losses.classification_loss", "multi_label": "@multi"}
    """
    if as_flag(multi_label, "multi_label"):
        return torch.nn.BCEWithLogitsLoss(**kwargs)
    return torch.nn.CrossEntropyLoss(**kwargs)
