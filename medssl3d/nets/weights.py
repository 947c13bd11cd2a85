"""Encoder weight transfer: save a pretrained encoder (``encoder.pt``) and load it into a network's encoder.

:func:`save_encoder` writes ``{"model": state_dict, "task": ..., "config": ..., "encoder_config": ...}``
atomically; :func:`load_encoder_weights` copies such a file (or a state dict, or a full-model checkpoint)
into the parameters under a prefix (``encoder.`` for a :class:`~medssl3d.nets.UNet`), naming every mismatch;
:func:`with_pretrained_encoder` is its bundle-config form.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from monai.networks.utils import copy_model_state, get_state_dict

from medssl3d.utils.io import atomic_torch_save, load_weights, to_plain

__all__ = ["load_encoder_weights", "save_encoder", "with_pretrained_encoder"]

# the logger these functions used before they moved out of medssl3d.nets.unet, kept so log filters still apply
logger = logging.getLogger("medssl3d.nets.unet")

# keys under which a checkpoint dictionary may hold the model's state dict; "model" is our encoder.pt format
_STATE_DICT_KEYS = ("model", "state_dict", "network")


def _is_plain(value: Any) -> bool:
    """Whether ``value`` only holds types that ``torch.load(..., weights_only=True)`` accepts."""
    if value is None or isinstance(value, (torch.Tensor, str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and _is_plain(v) for k, v in value.items())
    return False


def save_encoder(
    encoder: nn.Module | Mapping[str, torch.Tensor],
    path: str | os.PathLike,
    task: str = "",
    config: Mapping[str, Any] | None = None,
    **extra: Any,
) -> Path:
    """Save encoder weights as ``{"model": state_dict, "task": task, "config": config, **extra}``, atomically.

    The file is written to a temporary file in the same directory and moved into place with ``os.replace``,
    so a reader never sees a half-written file. Tensors are moved to CPU. If ``encoder`` has a ``config()``
    method (:class:`~medssl3d.nets.UNetEncoder`), its architecture is also stored under ``"encoder_config"``
    (unless given in ``extra``), which :func:`load_encoder_weights` quotes when shapes do not match.

    Args:
        encoder: the encoder module (e.g. ``unet.encoder``) or its state dict.
        path: output file, conventionally ``encoder.pt``; parent folders are created.
        task: name of the pretext task that produced the weights.
        config: training configuration to record (plain values only).
        extra: further plain entries (str, int, float, bool, None, tensors, lists and dicts of these).

    Returns:
        the path written.

    Raises:
        TypeError: if ``config`` or ``extra`` holds a value that ``torch.load(..., weights_only=True)`` cannot
            read (e.g. a ``Path`` or a custom object); convert it to ``str`` first.
    """
    state = get_state_dict(encoder)
    payload: dict[str, Any] = {
        "model": {k: v.detach().cpu() for k, v in state.items()},
        "task": task,
        "config": to_plain(dict(config)) if config is not None else {},
    }
    if hasattr(encoder, "config") and callable(encoder.config) and "encoder_config" not in extra:
        payload["encoder_config"] = encoder.config()
    payload.update(extra)
    for key, value in payload.items():
        if not _is_plain(value):
            raise TypeError(
                f"save_encoder: entry {key!r} holds a value torch.load(weights_only=True) cannot read: {value!r}; "
                "use only tensors, str, int, float, bool, None, and lists/dicts of these (e.g. str(path))."
            )
    return atomic_torch_save(payload, path)


def _read_source(source: str | os.PathLike | Mapping) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None, str]:
    """Return (state dict, encoder_config or None, description of the source for messages)."""
    if isinstance(source, (str, os.PathLike)):
        where = f"checkpoint file {str(source)!r}"
        if not os.path.isfile(source):
            raise ValueError(
                f"Cannot find {where}; check the path (e.g. the pretraining bundle's output folder, encoder.pt)."
            )
        try:
            obj = load_weights(source)
        except ValueError as e:  # unreadable, or not a dictionary
            raise ValueError(
                f"{e} So {where} is not a dict of tensors; expected a state dict or "
                "{'model': state_dict, ...} as written by medssl3d.nets.save_encoder."
            ) from e
    elif isinstance(source, Mapping):
        where, obj = "the given state dict", source
    else:
        raise TypeError(f"source must be a path or a state dict (mapping), got {type(source).__name__}.")

    if not isinstance(obj, Mapping):
        raise ValueError(
            f"{where} holds a {type(obj).__name__}, not a dict of tensors; expected a state dict or "
            "{'model': state_dict, ...} as written by medssl3d.nets.save_encoder."
        )
    encoder_config = None
    for key in _STATE_DICT_KEYS:
        if isinstance(obj.get(key), Mapping):
            if isinstance(obj.get("encoder_config"), Mapping):
                encoder_config = dict(obj["encoder_config"])
            obj = obj[key]
            break
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad or not obj:
        raise ValueError(
            f"{where} is not a dict of tensors (non-tensor entries: {bad[:5]}{'...' if len(bad) > 5 else ''}"
            f"{'; it is empty' if not obj else ''}); expected a state dict or a dict holding one under "
            f"one of {list(_STATE_DICT_KEYS)}."
        )
    state = {str(k): v for k, v in obj.items()}
    # checkpoints of DistributedDataParallel models carry "module." in front of every key
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state, encoder_config, where


def load_encoder_weights(
    model: nn.Module,
    source: str | os.PathLike | Mapping[str, Any],
    prefix: str = "encoder.",
    strict: bool = True,
) -> list[str]:
    """Copy pretrained encoder weights into ``model``'s encoder (the parameters under ``prefix``).

    ``source`` may be an encoder state dict (keys ``blocks.0...``), a full-model state dict whose keys already
    carry ``prefix`` (then only those keys are used, the decoder's are ignored), or a dict holding either under
    ``"model"`` (our ``encoder.pt`` format, see :func:`save_encoder`; ``"state_dict"`` and ``"network"`` are also
    accepted). The copy is done by ``monai.networks.utils.copy_model_state``.

    Args:
        model: destination, e.g. a :class:`~medssl3d.nets.UNet` (``prefix="encoder."``) or a bare
            :class:`~medssl3d.nets.UNetEncoder`
            (``prefix=""``).
        source: path to a file read with ``torch.load(path, map_location="cpu", weights_only=True)``, or a
            state dict.
        prefix: prefix of the encoder's keys in ``model.state_dict()``.
        strict: if True, every encoder key of ``model`` must be loaded, every source key must have a
            destination, and all shapes must match; otherwise matching keys are loaded and the rest are
            skipped with a warning.

    Returns:
        the keys of ``model.state_dict()`` that were loaded (sorted).

    Raises:
        ValueError: if the file is missing or unreadable, holds no dict of tensors, no key matches, or (with
            ``strict=True``) keys are missing, unexpected or of a different shape.
        TypeError: if ``source`` is neither a path nor a mapping.

    Example::

        net = UNet(spatial_dims=3, in_channels=1, out_channels=3)
        load_encoder_weights(net, "runs/jigsaw/encoder.pt")
    """
    state, src_config, where = _read_source(source)
    dst_state = get_state_dict(model)
    dst_keys = [k for k in dst_state if k.startswith(prefix)]
    if not dst_keys:
        raise ValueError(
            f"{type(model).__name__} has no parameters under prefix {prefix!r}; pass the prefix of its encoder "
            "(prefix='encoder.' for a UNet, prefix='' for a bare UNetEncoder)."
        )
    # a full-model checkpoint: keep only its encoder keys and strip their prefix
    if prefix and any(k.startswith(prefix) for k in state):
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}

    cause = _check_keys(model, state, dst_state, dst_keys, prefix, where, src_config, strict)
    loadable = {k: v for k, v in state.items() if prefix + k in dst_state and v.shape == dst_state[prefix + k].shape}
    if not loadable:
        raise ValueError(f"No tensor of {where} fits the model: every matching key differs in shape. {cause}.")
    _, updated, _ = copy_model_state(model, loadable, dst_prefix=prefix)
    return sorted(updated)


def _check_keys(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    dst_state: Mapping[str, torch.Tensor],
    dst_keys: list[str],
    prefix: str,
    where: str,
    src_config: dict[str, Any] | None,
    strict: bool,
) -> str:
    """Compare the source keys and shapes with the model's encoder for :func:`load_encoder_weights`.

    Raises ``ValueError`` when no key matches, or (``strict``) when keys are missing, unexpected or of another
    shape; without ``strict`` those problems are logged as a warning. Returns the typical cause of a mismatch
    (quoting both architectures when the source records its ``encoder_config``), for further messages.
    """
    matched = [k for k in state if prefix + k in dst_state]
    if not matched:
        raise ValueError(
            f"No key of {where} matches an encoder key of {type(model).__name__} under prefix {prefix!r} "
            f"(source keys start {sorted(state)[:3]}, model keys start {dst_keys[:3]}); check that the file holds "
            "encoder weights of this architecture and that `prefix` is right."
        )
    mismatched = [
        (k, tuple(state[k].shape), tuple(dst_state[prefix + k].shape))
        for k in matched
        if state[k].shape != dst_state[prefix + k].shape
    ]
    unexpected = sorted(k for k in state if prefix + k not in dst_state)
    missing = sorted(k for k in dst_keys if k[len(prefix) :] not in state)

    cause = (
        "Typical cause: the encoder was pretrained with a different base_filters, levels, spatial_dims or "
        "in_channels (or norm) than this model"
    )
    model_encoder = getattr(model, "encoder", model)
    if src_config is not None and callable(getattr(model_encoder, "config", None)):
        cause += f" (checkpoint: {src_config}; model: {model_encoder.config()})"

    problems = []
    if mismatched:
        key, s_src, s_dst = mismatched[0]
        problems.append(
            f"{len(mismatched)} shape mismatch(es), first: key {prefix + key!r} has shape {s_src} in the source "
            f"but {s_dst} in the model"
        )
    if missing:
        problems.append(f"{len(missing)} encoder key(s) of the model not in the source, e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} source key(s) with no destination, e.g. {unexpected[:3]}")
    if problems:
        msg = f"Loading encoder weights from {where}: " + "; ".join(problems) + f". {cause}."
        if strict:
            raise ValueError(
                msg + " Build the model with the pretraining settings, or pass strict=False to load only the "
                "matching tensors."
            )
        logger.warning(msg + " strict=False: loading only the matching tensors.")
    return cause


def with_pretrained_encoder(
    model: nn.Module, source: str | os.PathLike | Mapping | None, prefix: str = "encoder.", strict: bool = True
) -> nn.Module:
    """Return ``model`` after loading encoder weights from ``source``; a no-op for ``None`` or ``""``.

    Meant for bundle configs
    (``"network": "$medssl3d.nets.with_pretrained_encoder(@network_def, @pretrained_encoder)"``)
    where an empty ``pretrained_encoder`` means training from scratch. Errors are those of
    :func:`load_encoder_weights` and surface before any data is loaded.
    """
    if source is None or (isinstance(source, (str, os.PathLike)) and not os.fspath(source)):
        return model
    keys = load_encoder_weights(model, source, prefix=prefix, strict=strict)
    where = source if not isinstance(source, Mapping) else "state dict"
    logger.info("loaded %d encoder tensors from %s", len(keys), where)
    return model
