"""Which process writes: rank 0 of a ``torch.distributed`` run, or the only process.

Kept apart from the process-group set-up (:mod:`medssl3d.engines.distributed`) because every writer of
results (metrics, predictions, checkpoints) asks it, and those live below the engines.
"""

from __future__ import annotations

import torch.distributed as dist

__all__ = ["is_main_process"]


def is_main_process() -> bool:
    """True on rank 0, or when no process group is initialised."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
