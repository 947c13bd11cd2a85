"""Process-group set-up shared by every multi-process bundle config.

NCCL on CUDA, Gloo on CPU, one process per device, as launched by
``torchrun --nproc_per_node=N``.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from medssl3d.utils.distributed import unwrap_model

__all__ = ["init_distributed", "unwrap_model", "wrap_ddp"]


def init_distributed(backend: str | None = None) -> torch.device:
    """Initialise the default process group from torchrun's environment and return this rank's device.

    Args:
        backend: ``"nccl"``, ``"gloo"`` or ``None`` for NCCL when CUDA is available, Gloo otherwise.

    Returns:
        ``cuda:LOCAL_RANK`` on GPU machines, ``cpu`` otherwise.

    Raises:
        RuntimeError: the process was not started by torchrun (``LOCAL_RANK``/``WORLD_SIZE`` unset).
    """
    if "LOCAL_RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise RuntimeError(
            "multi_gpu_train.json must be launched with torchrun, e.g. "
            "`torchrun --standalone --nproc_per_node=2 -m monai.bundle run --config_file \"['train.json','multi_gpu_train.json']\" ...`"
        )
    cuda = torch.cuda.is_available()
    backend = backend or ("nccl" if cuda else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if cuda:
        device = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}")
        torch.cuda.set_device(device)
        return device
    return torch.device("cpu")


def wrap_ddp(model: torch.nn.Module, device: torch.device, find_unused_parameters: bool = False) -> DistributedDataParallel:
    """Move ``model`` to ``device`` and wrap it in ``DistributedDataParallel``.

    ``find_unused_parameters`` must be ``True`` while part of the model is frozen
    (``requires_grad=False``) during training, e.g. the encoder warm-up of fine-tuning.
    """
    model = model.to(device)
    device_ids = [device] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=find_unused_parameters)

