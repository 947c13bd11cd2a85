"""Device selection: CUDA when present, CPU otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["default_device"]


def default_device(device: str | torch.device | None = None) -> torch.device:
    """Return ``device`` as a ``torch.device``; ``None``, ``""`` or ``"auto"`` pick CUDA when available.

    Raises:
        ValueError: a CUDA device was asked for but CUDA is not available.
    """
    import torch

    if device is None or (isinstance(device, str) and device.strip().lower() in ("", "auto")):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available here; use device='cpu' or 'auto'.")
    return dev
