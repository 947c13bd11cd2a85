"""Which network to build: the architecture recorded in ``encoder.pt``, ``model.pt`` or ``model.ts``.

A pretrained ``encoder.pt`` (:func:`~medssl3d.nets.unet.save_encoder`) records its encoder's ``config()``
under ``"encoder_config"``; a fine-tuned ``model.pt`` (the bundles' ``BestModelSaver``) records the whole
network's ``config()`` under ``"network_config"``; an exported ``model.ts`` keeps the encoders' plain
attributes (``name``, ``spatial_dims``, ``in_channels``, ``base_filters`` ...). So fine-tuning, evaluation,
inference and export read the architecture from the file instead of asking the user to repeat it:

- :func:`resolve_architecture` merges what the file records with what the user set (``None``: not set) and
  the bundle's defaults, logs where each value came from, and refuses a setting that contradicts the file
  with the exact override to pass;
- :func:`network_from_config` / :func:`network_from_checkpoint` rebuild a :class:`~medssl3d.nets.Classifier`
  or :class:`~medssl3d.nets.UNet` from a recorded ``network_config``;
- :func:`load_inference_network` returns a ready network from a ``model.pt`` or a TorchScript ``model.ts``.

No library offers this bookkeeping for MONAI bundles (the model zoo repeats the architecture in every
config), so it is written here.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

from medssl3d.utils.io import load_weights

__all__ = [
    "is_torchscript",
    "read_network_config",
    "resolve_architecture",
    "network_from_config",
    "network_from_checkpoint",
    "load_inference_network",
]

logger = logging.getLogger(__name__)

# bundle setting -> the encoder config() entry it mirrors
_DIRECT = {"backbone": "name", "in_channels": "in_channels", "base_filters": "base_filters", "levels": "levels"}
# encoder attributes an exported (TorchScript) model keeps and that describe its architecture
_SCRIPTED_ENCODER_ATTRS = ("name", "spatial_dims", "in_channels", "base_filters", "levels", "conv1_t_stride", "dropout")


def is_torchscript(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a TorchScript archive (``torch.jit.save``: it holds ``code/``), not a ``torch.save`` file."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.split("/")[1:2] == ["code"] for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, IndexError):
        return False


def _scripted_config(module: Any) -> dict[str, Any]:
    """The ``network_config`` of a loaded TorchScript Classifier or UNet, from the attributes it kept."""
    encoder = getattr(module, "encoder", None)
    if encoder is None:
        return {}
    enc = {a: getattr(encoder, a) for a in _SCRIPTED_ENCODER_ATTRS if hasattr(encoder, a)}
    if enc.get("name") == "unet" and hasattr(encoder, "norm"):
        enc["norm"] = encoder.norm
    cfg: dict[str, Any] = {"encoder": enc}
    for attr in ("num_classes", "class_names", "multi_label", "input_size", "out_channels"):
        if hasattr(module, attr):
            cfg[attr] = getattr(module, attr)
    if hasattr(module, "head_type"):
        cfg["head"] = module.head_type
    return cfg


def read_network_config(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any] | None:
    """The architecture recorded in a checkpoint, as ``{"encoder": {...}, ...}``; ``None`` when it records none.

    Args:
        source: ``encoder.pt`` (``"encoder_config"``: the result holds only ``"encoder"``), ``model.pt``
            (``"network_config"``, completed by its ``class_names``, ``multi_label`` and ``image_size``; older
            files: their top-level ``backbone``, ``in_channels``, ``base_filters``, ``levels``), a TorchScript
            file, or an already loaded checkpoint dictionary.

    Raises:
        FileNotFoundError, ValueError: the file is missing or not a weights-only checkpoint.
    """
    if isinstance(source, (str, os.PathLike)):
        if os.path.isfile(source) and is_torchscript(source):
            cfg = _scripted_config(torch.jit.load(os.fspath(source), map_location="cpu"))
            return cfg or None
        payload: Mapping[str, Any] = load_weights(source)
    else:
        payload = source
    if isinstance(payload.get("network_config"), Mapping):
        cfg = dict(payload["network_config"])
        for key in ("class_names", "multi_label"):
            if key in payload:
                cfg[key] = payload[key]
        if "image_size" in payload and "head" in cfg:
            cfg["input_size"] = payload["image_size"]
        return cfg
    if isinstance(payload.get("encoder_config"), Mapping):
        return {"encoder": dict(payload["encoder_config"])}
    legacy = {k: payload[k] for k in ("in_channels", "base_filters", "levels", "spatial_dims") if k in payload}
    if "spatial_dims" in legacy and "in_channels" in legacy:  # model.pt written before network_config existed
        legacy["name"] = payload.get("backbone", "unet")
        legacy.update(payload.get("encoder_args") or {})
        return {"encoder": legacy}
    return None


def _shown(value: Any) -> str:
    """A value as it is typed on a MONAI bundle command line."""
    if isinstance(value, Mapping):
        return '"' + repr(dict(value)) + '"'
    return str(value)


def resolve_architecture(
    source: str | os.PathLike | None,
    spatial_dims: int,
    defaults: Mapping[str, Any],
    source_key: str = "pretrained_encoder",
    missing_hint: str = "",
    required: bool = True,
    payload: Mapping[str, Any] | None = None,
    **given: Any,
) -> dict[str, Any]:
    """The encoder settings to build with: the file's, else the user's, else the bundle's defaults.

    Args:
        source: ``encoder.pt`` (fine-tuning), ``model.pt`` or ``model.ts`` (evaluation, inference, export);
            ``None``/``""``: nothing to read (training from scratch).
        spatial_dims: what the bundle builds (2 or 3); a file of another dimension is refused naming both.
        defaults: the settings the bundle exposes and their defaults, among ``backbone``, ``in_channels``,
            ``base_filters``, ``levels`` and ``encoder_args`` (the encoder's other arguments, a dict). A file's
            encoder of another ``backbone`` is refused even when the bundle does not expose ``backbone``.
        source_key: the bundle key that named ``source``, quoted in messages.
        missing_hint: what to do when ``source`` does not exist, appended to the error.
        required: a missing ``source`` is an error; ``False`` builds from the settings and defaults instead
            (inference configs: MONAI's ``verify_net_in_out`` builds ``network_def`` before any training, and
            loading the weights reports the missing file).
        payload: ``source`` already loaded (:func:`~medssl3d.utils.io.load_weights`), so it is not read again;
            ``source`` still names it in messages.
        given: the user's settings, keyed like ``defaults``; ``None`` means not set. ``encoder_args`` entries
            are checked one by one and the file's other entries kept.

    Returns:
        one value per key of ``defaults``.

    Raises:
        FileNotFoundError: ``source`` is given but missing (and ``required``).
        ValueError: a set value contradicts the file (the message holds the override to pass), the file is of
            another spatial dimension or backbone, or ``given`` has a key ``defaults`` lacks.

    Example::

        arch = resolve_architecture("pretrain_sicova/encoder.pt", 2,
                                    {"backbone": "densenet121", "in_channels": 3, "encoder_args": {}},
                                    backbone=None, in_channels=None, encoder_args=None)
        arch["backbone"]  # "resnet50", the encoder that was pretrained
    """
    out = _settings(defaults, given)
    if source is None or not os.fspath(source):
        return out
    where = os.fspath(source)
    if not os.path.isfile(where):
        if not required:
            logger.info("%s %r does not exist (yet): building %s", source_key, where, out)
            return out
        raise FileNotFoundError(f"{source_key} {where!r} not found" + (f"; {missing_hint}." if missing_hint else "."))
    cfg = read_network_config(where if payload is None else payload)
    encoder = dict(cfg["encoder"]) if cfg and isinstance(cfg.get("encoder"), Mapping) else None
    if encoder is None:
        logger.warning("%s records no architecture; building %s (set or default)", where, out)
        return out
    from_file = _settings_from_file(encoder, spatial_dims, defaults, source_key, where)
    _check_conflicts(from_file, given, source_key, where)
    for key, value in from_file.items():
        out[key] = {**value, **(given.get(key) or {})} if key == "encoder_args" else value
    logger.info("architecture from %s: %s", where, ", ".join(f"{k}={out[k]!r}" for k in defaults))
    return out


def _settings(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The user's settings over the bundle's defaults (``None``: not set); an error for an unknown setting."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"resolve_architecture: settings {unknown} have no default; known: {sorted(defaults)}.")
    out = {k: (given[k] if given.get(k) is not None else v) for k, v in defaults.items()}
    if isinstance(out.get("encoder_args"), Mapping):
        out["encoder_args"] = dict(out["encoder_args"])
    return out


def _settings_from_file(
    encoder: dict[str, Any], spatial_dims: int, defaults: Mapping[str, Any], source_key: str, where: str
) -> dict[str, Any]:
    """The settings of ``defaults`` that a file's encoder config records; refuses another dimension or backbone.

    ``encoder_args`` (when the bundle exposes it) gets the config's entries that no direct setting mirrors.
    """
    encoder.setdefault("name", "unet")
    if int(encoder.get("spatial_dims", spatial_dims)) != int(spatial_dims):
        raise ValueError(
            f"{source_key} {where!r} holds a {encoder['spatial_dims']}D {encoder['name']} encoder but this bundle "
            f"builds a {spatial_dims}D network; use an encoder pretrained with a {spatial_dims}D bundle."
        )
    from_file = {}
    for key, entry in _DIRECT.items():
        if entry not in encoder:
            continue
        if key not in defaults:
            if key == "backbone" and encoder["name"] != "unet":
                raise ValueError(
                    f"{source_key} {where!r} holds a {encoder['name']} encoder but this bundle builds a UNet; "
                    "use an encoder pretrained with this bundle (backbone unet)."
                )
            continue
        from_file[key] = encoder[entry]
    if "encoder_args" in defaults:
        skip = {"name", "spatial_dims", *(_DIRECT[k] for k in from_file)}
        from_file["encoder_args"] = {k: v for k, v in encoder.items() if k not in skip}
    return from_file


def _check_conflicts(from_file: Mapping[str, Any], given: Mapping[str, Any], source_key: str, where: str) -> None:
    """Refuse every user setting that contradicts the file, all in one message with the override to pass."""
    conflicts = []
    for key, value in from_file.items():
        mine = given.get(key)
        if mine is None:
            continue
        if key == "encoder_args":
            clash = {k: v for k, v in value.items() if k in mine and mine[k] != v}
            if clash:
                conflicts.append((key, {k: mine[k] for k in clash}, clash))
            continue
        same = str(mine).lower() == str(value).lower() if key == "backbone" else mine == value
        if not same:
            conflicts.append((key, mine, value))
    if conflicts:
        said = ", ".join(f"{k}={_shown(mine)}" for k, mine, _ in conflicts)
        recorded = ", ".join(f"{k}={_shown(v)}" for k, _, v in conflicts)
        fix = " ".join(f"--{k} {_shown(v)}" for k, _, v in conflicts)
        raise ValueError(
            f"{said} contradicts {source_key} {where!r}, which was built with {recorded}; pass {fix} "
            f"(or leave {', '.join(k for k, _, _ in conflicts)} unset to take it from the file)."
        )


def network_from_config(config: Mapping[str, Any]) -> nn.Module:
    """Build the network a ``network_config`` describes (untrained): a Classifier (it has ``head``) or a UNet.

    Raises:
        ValueError: ``config`` describes neither.
    """
    from medssl3d.nets.classifier import Classifier
    from medssl3d.nets.encoders import encoder_from_config
    from medssl3d.nets.unet import UNet

    cfg = dict(config)
    encoder = cfg.get("encoder")
    if not isinstance(encoder, Mapping):
        raise ValueError(f"network_config has no encoder entry: {cfg!r}; it does not describe a network.")
    if "head" in cfg:
        return Classifier(
            encoder_from_config(encoder), num_classes=int(cfg["num_classes"]), head=cfg["head"],
            dropout=float(cfg.get("dropout", 0.3)), hidden=cfg.get("hidden", (256, 128)),
            class_names=cfg.get("class_names"), multi_label=bool(cfg.get("multi_label", False)),
            input_size=cfg.get("input_size") or None,
        )
    if "out_channels" in cfg:
        args = {k: v for k, v in encoder.items() if k != "name"}
        return UNet(out_channels=int(cfg["out_channels"]), upsample=cfg.get("upsample", "deconv"), **args)
    raise ValueError(f"network_config {cfg!r} is neither a classifier's (head) nor a UNet's (out_channels).")


def network_from_checkpoint(path: str | os.PathLike, default: Mapping[str, Any] | None = None) -> nn.Module:
    """The untrained network ``model.pt`` was trained as (its ``network_config``); for ``ckpt_export``.

    Args:
        path: ``model.pt`` (or ``model.ts``: the attributes it kept).
        default: the ``network_config`` to build when ``path`` does not exist (yet): a bundle's declared
            network, which MONAI's ``verify_net_in_out`` checks against ``metadata.json`` before any training.

    Raises:
        FileNotFoundError: no such file and no ``default`` (the message says to train first).
        ValueError: the file records no ``network_config``.
    """
    if not os.path.isfile(path) and default is not None:
        logger.info("%s does not exist (yet): building the default network", os.fspath(path))
        return network_from_config(default)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{os.fspath(path)} not found; train first (configs/train.json writes it) or pass "
                                "--ckpt_path <model.pt>.")
    return _recorded_network(read_network_config(path), os.fspath(path))


def _recorded_network(cfg: Mapping[str, Any] | None, where: str) -> nn.Module:
    """The network a checkpoint's :func:`read_network_config` describes; an error naming ``where`` if none."""
    if not cfg or ("head" not in cfg and "out_channels" not in cfg):
        raise ValueError(
            f"{where} records no network_config (written by medssl3d's training bundles since 0.2); "
            "retrain, or set the architecture keys of the config by hand."
        )
    return network_from_config(cfg)


def load_inference_network(
    path: str | os.PathLike, device: str | torch.device = "cpu", network_def: nn.Module | None = None
) -> nn.Module:
    """A trained network in eval mode on ``device``, from ``model.pt`` or an exported TorchScript ``model.ts``.

    Args:
        path: ``model.pt`` (weights under ``"model"``, as the bundles write it) or a TorchScript file.
        device: where to put it.
        network_def: the network to load ``model.pt`` into; default: rebuilt from its ``network_config``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the weights do not fit the network (the message names the file and the first keys).
    """
    where = os.fspath(path)
    if not os.path.isfile(where):
        raise FileNotFoundError(f"{where} not found; train first (configs/train.json writes models/model.pt), or pass "
                                "--ckpt_path <model.pt or model.ts>.")
    if is_torchscript(where):
        return torch.jit.load(where, map_location=device).eval()
    payload = load_weights(where)  # read once: the weights and, without network_def, the architecture
    net = network_def if network_def is not None else _recorded_network(read_network_config(payload), where)
    state = payload.get("model", payload)
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise ValueError(f"the weights in {where} do not fit the network ({str(e)[:300]}); the architecture "
                         "settings differ from training.") from e
    if missing or unexpected:
        raise ValueError(
            f"the weights in {where} do not fit the network: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}); the architecture settings differ from training."
        )
    return net.to(device).eval()
