"""The held-out score shared by the patch-based pretext tasks (jigsaw, relative patch location).

The patch cutting is a transform (:mod:`medssl3d.transforms.pretext.patches`) and the network that encodes all
patches of a batch at once is :class:`~medssl3d.nets.encoder_head.EncoderWithHead`.
"""

from __future__ import annotations

import torch

__all__ = ["count_correct"]


def count_correct(output: torch.Tensor, target: torch.Tensor | None) -> tuple[int, int]:
    """(number of rows whose arg-max equals ``target``, number of rows) for logits (B, K) and labels (B,)."""
    if target is None:
        raise ValueError("this task has labels: correct(output, target) needs the target labels, got None.")
    target = torch.as_tensor(target).reshape(-1)
    if output.ndim != 2 or output.shape[0] != target.numel():
        raise ValueError(
            f"correct() expects logits (B, n_classes) and B labels, got output {tuple(output.shape)} and "
            f"target {tuple(target.shape)}."
        )
    right = (output.argmax(dim=1) == target.to(output.device)).sum()
    return int(right.item()), int(target.numel())
