"""Which process writes (rank 0 of a ``torch.distributed`` run, or the only process), and the model inside a
data-parallel wrapper.

Kept apart from the process-group set-up (:mod:`medssl3d.engines.distributed`) because writers of results
(metrics, predictions, checkpoints) and optimiser set-up ask them, and those live below the engines.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

__all__ = ["is_main_process", "unwrap_model"]


def is_main_process() -> bool:
    """True on rank 0, or when no process group is initialised."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """Return the module inside a ``DistributedDataParallel``/``DataParallel`` wrapper (or ``model``)."""
    return model.module if isinstance(model, (DistributedDataParallel, torch.nn.DataParallel)) else model
