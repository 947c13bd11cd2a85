"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al. 2020, "A Simple Framework for
Contrastive Learning of Visual Representations", ICML, https://arxiv.org/abs/2002.05709).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from medssl3d.utils.checks import check_flag, check_positive

__all__ = ["NTXentLoss", "gather_with_grad"]

try:  # differentiable all_gather: the backward sums every process's gradient into the local tensor
    from torch.distributed.nn.functional import all_gather as _differentiable_all_gather
except ImportError:  # pragma: no cover - builds of torch without torch.distributed.nn
    _differentiable_all_gather = None


class _AllGather(torch.autograd.Function):
    """Fallback differentiable all_gather: (B, ...) per process -> world_size x (B, ...).

    The backward all-reduces the gradients of the gathered tensors (so every process's use of this process's
    rows reaches it) and returns this process's slice.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        tensor = tensor.contiguous()
        out = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(out, tensor)
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = torch.stack(grads).contiguous()
        dist.all_reduce(grad)
        return grad[dist.get_rank()]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every process along dim 0, keeping the gradient path to the local rows.

    Args:
        tensor: (B, ...) this process's rows; every process must pass the same shape.

    Returns:
        (world_size * B, ...) the rows of process 0, then 1, ...; ``tensor`` itself when torch.distributed is
        unavailable, not initialised, or the world size is 1.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    if _differentiable_all_gather is not None:
        return torch.cat(_differentiable_all_gather(tensor), dim=0)
    return torch.cat(_AllGather.apply(tensor), dim=0)


class NTXentLoss(nn.Module):
    """NT-Xent (SimCLR) loss on two views of a batch.

    The ``2N`` embeddings of both views are L2-normalised; each one is an anchor whose positive is the other view
    of its sample and whose negatives are the ``2N - 2`` other embeddings, i.e. a softmax over ``2N - 1``
    candidates of cosine similarity divided by the temperature. The loss is the mean cross-entropy over all
    ``2N`` anchors, so it is symmetric in the two views. Chen et al. (2020), "A Simple Framework for Contrastive
    Learning of Visual Representations", https://arxiv.org/abs/2002.05709.

    With ``gather_distributed=True`` and an initialised process group, the candidates are the embeddings of every
    process (``2 N W - 1`` per anchor for world size ``W``), the anchors are this process's ``2N``; gradients
    flow back to the local embeddings through the gather. Otherwise nothing is gathered.

    Args:
        temperature: softmax temperature ``tau`` (> 0); 0.5 as in the medical SimCLR reference.
        gather_distributed: gather negatives from all processes (needs the same batch size on each).

    Raises:
        ValueError: ``temperature`` is not a positive number.

    Example:
        >>> loss = NTXentLoss(temperature=0.5)
        >>> value = loss(torch.randn(8, 128), torch.randn(8, 128))  # scalar
    """

    def __init__(self, temperature: float = 0.5, gather_distributed: bool = False) -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)
        self.gather_distributed = check_flag("gather_distributed", gather_distributed)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """Mean NT-Xent over the ``2B`` anchors.

        Args:
            z1: (B, D) embeddings of the first view.
            z2: (B, D) embeddings of the second view; row ``i`` is the positive of ``z1[i]``.

        Returns:
            Scalar loss.

        Raises:
            ValueError: ``z1`` or ``z2`` is not 2-D, or their shapes differ.
        """
        if z1.ndim != 2 or z1.shape != z2.shape:
            raise ValueError(
                f"z1 and z2 must both be (B, D) with the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}."
            )
        batch = z1.shape[0]
        local = F.normalize(torch.cat([z1, z2], dim=0), dim=1)  # (2B, D): view 1 rows, then view 2 rows
        rank, world = 0, 1
        if self.gather_distributed and dist.is_available() and dist.is_initialized():
            rank, world = dist.get_rank(), dist.get_world_size()
        if world > 1:
            # candidates ordered [view 1 of all processes, view 2 of all processes]
            h1 = gather_with_grad(local[:batch])
            h2 = gather_with_grad(local[batch:])
            candidates = torch.cat([h1, h2], dim=0)
        else:
            candidates = local
        total = world * batch  # samples across processes
        logits = local @ candidates.T / self.temperature  # (2B, 2 * total)
        rows = torch.arange(2 * batch, device=local.device)
        own = rank * batch + rows % batch  # this anchor's sample index across processes
        is_view2 = rows >= batch
        self_index = own + is_view2 * total
        positive = own + (~is_view2) * total
        logits = logits.masked_fill(
            F.one_hot(self_index, num_classes=2 * total).bool(), float("-inf")
        )  # an anchor is not its own candidate
        return F.cross_entropy(logits, positive)
