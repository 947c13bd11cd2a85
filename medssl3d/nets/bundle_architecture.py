"""Between a bundle's architecture settings and its networks: the encoder they describe, and what an
evaluation reads from the ``model.pt`` it scores.

The settings are :func:`~medssl3d.nets.architecture.resolve_architecture`'s dictionary
(``backbone``/``in_channels``/``encoder_args`` for the 2D bundles), so the bundle JSON only wires them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch.nn as nn

from medssl3d.nets.architecture import resolve_architecture
from medssl3d.nets.encoders import create_encoder
from medssl3d.utils.io import load_weights

__all__ = ["encoder_from_architecture", "evaluation_checkpoint"]


def encoder_from_architecture(architecture: Mapping[str, Any], spatial_dims: int) -> nn.Module:
    """The (untrained) encoder that ``architecture`` describes: ``create_encoder(backbone, spatial_dims,
    in_channels, **encoder_args)``.

    Args:
        architecture: ``{"backbone", "in_channels", "encoder_args"}`` (``encoder_args`` optional), as
            :func:`~medssl3d.nets.architecture.resolve_architecture` returns it for the 2D bundles.
        spatial_dims: 2 or 3.

    Raises:
        ValueError: ``architecture`` lacks ``backbone`` or ``in_channels``.

    Example (bundle JSON)::

        "encoder": {"_target_": "medssl3d.nets.bundle_architecture.encoder_from_architecture",
                    "architecture": "@architecture", "spatial_dims": 2}
    """
    missing = [k for k in ("backbone", "in_channels") if k not in architecture]
    if missing:
        raise ValueError(f"architecture {dict(architecture)!r} has no {' or '.join(missing)}.")
    args = architecture.get("encoder_args") or {}
    return create_encoder(architecture["backbone"], spatial_dims, architecture["in_channels"], **args)


def evaluation_checkpoint(
    path: str | os.PathLike,
    spatial_dims: int,
    defaults: Mapping[str, Any],
    missing_hint: str = "",
    source_key: str = "ckpt_path",
    **given: Any,
) -> dict[str, Any]:
    """What evaluating ``model.pt`` needs from it: the architecture to build and how it was trained.

    Args:
        path: the ``model.pt`` to evaluate (the bundles' ``BestModelSaver`` writes it).
        spatial_dims: what the bundle builds (2 or 3).
        defaults, given: the bundle's architecture defaults and the user's settings (``None``: not set), as for
            :func:`~medssl3d.nets.architecture.resolve_architecture`, which reads and checks the architecture.
        missing_hint: what to do when ``path`` does not exist, appended to the error.
        source_key: the bundle key that named ``path``, quoted in messages.

    Returns:
        ``{"architecture": {...}, "linear_probe": bool}``; ``linear_probe`` is what the training recorded
        (``False`` for a file that records nothing).

    Raises:
        FileNotFoundError: no such file (the message ends with ``missing_hint``).
        ValueError: not a weights-only checkpoint, or a setting contradicts the recorded architecture (the
            message holds the override to pass).

    ``model.pt`` is read once: the loaded checkpoint gives both the architecture and the training record.

    Example (bundle JSON)::

        "checkpoint": {"_target_": "medssl3d.nets.bundle_architecture.evaluation_checkpoint",
                       "path": "@ckpt_path", "spatial_dims": 2, "defaults": "@default_architecture",
                       "backbone": "@backbone", "in_channels": "@in_channels", "encoder_args": "@encoder_args"},
        "architecture": "$@checkpoint['architecture']"
    """
    record = load_weights(path) if os.path.isfile(path) else None  # a missing file: resolve_architecture says so
    architecture = resolve_architecture(
        path, spatial_dims, defaults, source_key=source_key, missing_hint=missing_hint, payload=record, **given
    )
    return {"architecture": architecture, "linear_probe": bool((record or {}).get("linear_probe", False))}
