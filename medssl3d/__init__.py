"""medssl3d: self-supervised pretraining and few-label fine-tuning of 2D and 3D medical image encoders.

Built on MONAI. Sub-packages are organised by concept: ``data``, ``transforms``, ``nets``, ``losses``,
``engines``, ``metrics``, ``optimizers``, ``reports``, ``utils``. They are imported on first attribute
access, so ``import medssl3d`` stays cheap and bundle configs can write ``medssl3d.nets.UNet`` after a
single ``"$import medssl3d"``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBPACKAGES = ("data", "transforms", "nets", "losses", "tasks", "engines", "metrics", "optimizers", "reports", "utils")


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
