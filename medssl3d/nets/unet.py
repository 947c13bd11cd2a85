"""The UNet of Taleb et al. 2020, its encoder and decoder, and encoder weight transfer.

Taleb, A., Loetzsch, W., Danz, N., Severin, J., Gaertner, T., Bergner, B., Lippert, C.
"3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020. https://arxiv.org/abs/2006.03829

Their 3D UNet has 4 down-sampling levels and 16 base filters doubling per level. The encoder is what
the self-supervised pretext tasks train; the full :class:`UNet` holds it as ``self.encoder`` so the
encoder's own ``state_dict()`` (written by :func:`save_encoder`) loads into a UNet under the prefix
``encoder.`` (:func:`load_encoder_weights`). One implementation serves 2D and 3D via ``spatial_dims``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution, UpSample
from monai.networks.layers.factories import Conv, Pool
from monai.networks.utils import copy_model_state, get_state_dict
from monai.utils import look_up_option

from medssl3d.utils.checks import check_positive_int, check_probability, check_spatial_dims
from medssl3d.utils.io import atomic_torch_save, load_weights, to_plain

__all__ = ["UNetEncoder", "UNetDecoder", "UNet", "load_encoder_weights", "save_encoder"]

logger = logging.getLogger(__name__)

_UPSAMPLE_MODES = ("deconv", "nontrainable")
# keys under which a checkpoint dictionary may hold the model's state dict; "model" is our encoder.pt format
_STATE_DICT_KEYS = ("model", "state_dict", "network")


class _TwoConv(nn.Sequential):
    """Two (conv 3, norm, dropout, act) blocks; the first maps ``in_channels`` to ``out_channels``."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        norm: tuple | str | None,
        act: tuple | str | None,
        dropout: float,
    ) -> None:
        super().__init__()
        for i, c_in in enumerate((in_channels, out_channels)):
            self.add_module(
                f"conv_{i}",
                Convolution(
                    spatial_dims,
                    c_in,
                    out_channels,
                    kernel_size=3,
                    act=act,
                    norm=norm,
                    dropout=dropout or None,  # no Dropout module at all for p = 0
                ),
            )


def _check_scripted_input(x: torch.Tensor, spatial_dims: int, in_channels: int, levels: int, divisible: bool) -> None:
    """The checks of :meth:`UNetEncoder.check_input` in a form TorchScript compiles (exported models keep them)."""
    if x.dim() != spatial_dims + 2:
        raise ValueError(
            f"UNet(spatial_dims={spatial_dims}) expects a (B, C, *spatial) input, got {x.dim()} dimensions."
        )
    if x.shape[1] != in_channels:
        raise ValueError(f"UNet(in_channels={in_channels}) got an input with {x.shape[1]} channels.")
    divisor = 1  # 2**levels as an int: TorchScript's ** gives a float
    for _ in range(levels):
        divisor = divisor * 2
    for size in x.shape[2:]:
        if divisible and size % divisor != 0:
            raise ValueError(f"input side {size} is not a multiple of 2**levels = {divisor} (levels={levels}).")
        if size < divisor:
            raise ValueError(f"input side {size} is smaller than 2**levels = {divisor} (levels={levels}).")


class UNetEncoder(nn.Module):
    """UNet encoder: ``levels`` max-pool down-samplings between blocks of two 3x3(x3) convolutions.

    Scale ``i`` (``0 <= i <= levels``) has ``base_filters * 2**i`` channels and spatial size
    ``input_size / 2**i``. Taleb et al. 2020 use ``base_filters=16, levels=4`` in 3D.

    Args:
        spatial_dims: 2 or 3.
        in_channels: number of input channels.
        base_filters: channels of the first (full-resolution) scale; doubled at each level.
        levels: number of down-sampling steps (>= 1); the encoder has ``levels + 1`` feature scales.
        norm: MONAI norm layer spec (name or ``(name, kwargs)``), or ``None``. BatchNorm by default:
            InstanceNorm fails on 1-voxel feature maps (e.g. a 16^3 patch after 4 levels).
        act: MONAI activation spec (name or ``(name, kwargs)``).
        dropout: dropout probability after each normalisation, in [0, 1).

    Attributes:
        feature_channels: channels of each scale, shallow to deep.
        out_channels: channels of the deepest scale (``feature_channels[-1]``).
        spatial_dims, in_channels, base_filters, levels, norm, act, dropout: the constructor arguments.

    Raises:
        ValueError: for a bad argument (the message names it).

    Example::

        enc = UNetEncoder(spatial_dims=3, in_channels=1, base_filters=16, levels=4)
        enc.forward_features(torch.zeros(2, 1, 64, 64, 32)).shape  # (2, 256, 4, 4, 2)
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        base_filters: int = 16,
        levels: int = 4,
        norm: tuple | str | None = "batch",
        act: tuple | str | None = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        spatial_dims = check_spatial_dims(spatial_dims)
        in_channels = check_positive_int("in_channels", in_channels)
        base_filters = check_positive_int("base_filters", base_filters)
        levels = check_positive_int("levels", levels)
        dropout = check_probability("dropout", dropout, include_one=False)
        self.name = "unet"  # kept by TorchScript, so an exported model still says what it is
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.base_filters = base_filters
        self.levels = levels
        self.norm = norm
        self.act = act
        self.dropout = float(dropout)
        self.feature_channels: tuple[int, ...] = tuple(base_filters * 2**i for i in range(levels + 1))
        self.out_channels: int = self.feature_channels[-1]

        pool_type: type[nn.Module] = Pool[Pool.MAX, spatial_dims]
        self.pool = pool_type(kernel_size=2, stride=2)
        self.blocks = nn.ModuleList()
        c_in = in_channels
        for c_out in self.feature_channels:
            self.blocks.append(_TwoConv(spatial_dims, c_in, c_out, norm=norm, act=act, dropout=dropout))
            c_in = c_out

    # TorchScript compiles properties; this one is Python-side only (scripted code uses _check_scripted_input)
    __jit_unused_properties__ = ["divisor"]

    @property
    def divisor(self) -> int:
        """Every spatial size of the input must be a multiple of this (``2**levels``)."""
        return 2**self.levels

    def config(self) -> dict[str, Any]:
        """The constructor arguments as a plain dict (JSON-able; loadable with ``weights_only=True``)."""
        return {
            "name": "unet",
            "spatial_dims": self.spatial_dims,
            "in_channels": self.in_channels,
            "base_filters": self.base_filters,
            "levels": self.levels,
            "norm": to_plain(self.norm),
            "act": to_plain(self.act),
            "dropout": self.dropout,
        }

    def check_input(self, x: torch.Tensor, divisible: bool = True) -> None:
        """Raise ``ValueError`` unless ``x`` is (B, in_channels, *spatial) with usable spatial sizes.

        With ``divisible`` (what the decoder's skip connections need) every side must be a multiple of
        ``2**levels``; without it (pooled features for pretext heads and classifiers) each side must only
        be at least ``2**levels`` so the deepest scale is not empty.
        """
        if x.ndim != self.spatial_dims + 2:
            axes = "H, W" if self.spatial_dims == 2 else "H, W, D"
            raise ValueError(
                f"UNetEncoder(spatial_dims={self.spatial_dims}) expects a (B, C, {axes}) input, "
                f"got shape {tuple(x.shape)}."
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNetEncoder(in_channels={self.in_channels}) got an input with {x.shape[1]} channels "
                f"(shape {tuple(x.shape)}); set in_channels={x.shape[1]} or fix the channel dimension."
            )
        if divisible:
            check_patch_size(tuple(x.shape[2:]), self.levels, self.spatial_dims)
        elif min(x.shape[2:]) < self.divisor:
            raise ValueError(
                f"input spatial shape {tuple(x.shape[2:])} is too small for {self.levels} down-sampling levels: "
                f"every side must be at least 2**levels = {self.divisor}; use larger patches or fewer levels."
            )

    def _scales(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for i, block in enumerate(self.blocks):
            if i > 0:
                x = self.pool(x)
            x = block(x)
            features.append(x)
        return features

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All feature scales, for the decoder's skip connections.

        Args:
            x: (B, in_channels, *spatial), each spatial size divisible by ``2**levels``.

        Returns:
            ``levels + 1`` tensors, shallow to deep; scale ``i`` is (B, base_filters * 2**i, *spatial / 2**i).

        Raises:
            ValueError: for a wrong number of dimensions or channels, or a non-divisible spatial size.
        """
        if torch.jit.is_scripting():
            _check_scripted_input(x, self.spatial_dims, self.in_channels, self.levels, True)
        else:
            self.check_input(x)
        return self._scales(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The deepest feature map only (what pretext heads and classifiers pool).

        Args:
            x: (B, in_channels, *spatial), each spatial size at least ``2**levels`` (max-pooling floors
                odd sizes, so divisibility is not needed without a decoder).

        Returns:
            (B, out_channels, *floor(spatial / 2**levels)).
        """
        if torch.jit.is_scripting():
            _check_scripted_input(x, self.spatial_dims, self.in_channels, self.levels, False)
        else:
            self.check_input(x, divisible=False)
        return self._scales(x)[-1]


class UNetDecoder(nn.Module):
    """UNet decoder: up-sample, concatenate the skip, two 3x3(x3) convolutions, per level; then a 1x1 conv.

    Args:
        spatial_dims: 2 or 3.
        feature_channels: channels of the encoder scales, shallow to deep (``UNetEncoder.feature_channels``);
            at least two.
        out_channels: number of output channels (logits).
        norm: MONAI norm layer spec, or ``None``.
        act: MONAI activation spec.
        dropout: dropout probability in [0, 1).
        upsample: ``"deconv"`` (transposed convolution, kernel 2, stride 2) or ``"nontrainable"``
            (1x1 conv then (bi/tri)linear interpolation).

    Raises:
        ValueError: for a bad argument (the message names it).
    """

    def __init__(
        self,
        spatial_dims: int,
        feature_channels: Sequence[int],
        out_channels: int,
        norm: tuple | str | None = "batch",
        act: tuple | str | None = "relu",
        dropout: float = 0.0,
        upsample: str = "deconv",
    ) -> None:
        super().__init__()
        spatial_dims = check_spatial_dims(spatial_dims)
        feature_channels = tuple(feature_channels)
        if len(feature_channels) < 2:
            raise ValueError(
                f"feature_channels needs at least two scales (one skip and one deeper map), got {feature_channels!r}."
            )
        feature_channels = tuple(check_positive_int("each of feature_channels", c) for c in feature_channels)
        out_channels = check_positive_int("out_channels", out_channels)
        dropout = check_probability("dropout", dropout, include_one=False)
        upsample = look_up_option(upsample, _UPSAMPLE_MODES)
        self.spatial_dims = spatial_dims
        self.feature_channels = feature_channels
        self.out_channels = out_channels

        self.ups = nn.ModuleList()
        self.blocks = nn.ModuleList()
        # deepest to shallowest: up-sample scale i to scale i-1 and merge with its skip
        for i in range(len(feature_channels) - 1, 0, -1):
            c_deep, c_skip = feature_channels[i], feature_channels[i - 1]
            self.ups.append(
                UpSample(spatial_dims, c_deep, c_skip, scale_factor=2, mode=upsample, interp_mode="linear")
            )
            self.blocks.append(_TwoConv(spatial_dims, 2 * c_skip, c_skip, norm=norm, act=act, dropout=dropout))
        conv_type: type[nn.Module] = Conv[Conv.CONV, spatial_dims]
        self.head = conv_type(feature_channels[0], out_channels, kernel_size=1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Decode the encoder's feature scales.

        Args:
            features: ``len(feature_channels)`` tensors, shallow to deep, as returned by ``UNetEncoder.forward``.

        Returns:
            logits (B, out_channels, *spatial of ``features[0]``).

        Raises:
            ValueError: if the number of feature maps does not match ``feature_channels``.
        """
        if len(features) != len(self.feature_channels):
            raise ValueError(
                f"UNetDecoder expects {len(self.feature_channels)} feature maps (channels {self.feature_channels}), "
                f"got {len(features)}; pass the full list returned by UNetEncoder.forward."
            )
        x = features[-1]
        for i, (up, block) in enumerate(zip(self.ups, self.blocks)):  # indexing, not reversed(): TorchScript
            x = block(torch.cat([up(x), features[-2 - i]], dim=1))
        return self.head(x)


class UNet(nn.Module):
    """The UNet of Taleb et al. 2020: a :class:`UNetEncoder` and a :class:`UNetDecoder` with skip connections.

    Submodules are exactly ``encoder`` and ``decoder``, so an encoder ``state_dict()`` saved by pretraining
    loads into this model under the prefix ``encoder.`` (see :func:`load_encoder_weights`).

    Args:
        spatial_dims: 2 or 3.
        in_channels: number of input channels.
        out_channels: number of output channels (segmentation logits, one per class incl. background).
        base_filters: channels of the full-resolution scale; doubled per level (16 in the paper).
        levels: number of down-sampling steps (4 in the paper).
        norm: MONAI norm layer spec, or ``None``; BatchNorm by default.
        act: MONAI activation spec.
        dropout: dropout probability in [0, 1).
        upsample: ``"deconv"`` or ``"nontrainable"``, see :class:`UNetDecoder`.

    Raises:
        ValueError: for a bad argument (the message names it).

    Example::

        net = UNet(spatial_dims=3, in_channels=1, out_channels=3)
        net(torch.zeros(1, 1, 64, 64, 32)).shape  # (1, 3, 64, 64, 32)
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 2,
        base_filters: int = 16,
        levels: int = 4,
        norm: tuple | str | None = "batch",
        act: tuple | str | None = "relu",
        dropout: float = 0.0,
        upsample: str = "deconv",
    ) -> None:
        super().__init__()
        self.encoder = UNetEncoder(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            base_filters=base_filters,
            levels=levels,
            norm=norm,
            act=act,
            dropout=dropout,
        )
        self.decoder = UNetDecoder(
            spatial_dims=spatial_dims,
            feature_channels=self.encoder.feature_channels,
            out_channels=out_channels,
            norm=norm,
            act=act,
            dropout=dropout,
            upsample=upsample,
        )
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.upsample = upsample

    def config(self) -> dict[str, Any]:
        """The constructor arguments as plain values: ``out_channels``, ``upsample`` and the encoder's ``config()``.

        Stored in ``model.pt`` (``network_config``) so evaluation, inference and export rebuild this network
        (:func:`medssl3d.nets.network_from_config`) without being told its settings again.
        """
        return {"out_channels": self.out_channels, "upsample": self.upsample, "encoder": self.encoder.config()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Segment ``x``.

        Args:
            x: (B, in_channels, *spatial), each spatial size divisible by ``2**levels``.

        Returns:
            logits (B, out_channels, *spatial).
        """
        return self.decoder(self.encoder(x))


def check_patch_size(patch_size: Sequence[int], levels: int, spatial_dims: int | None = None) -> tuple[int, ...]:
    """Check a network input size before any data is loaded: every side divisible by ``2**levels``.

    Bundle configs call this in ``initialize`` so a bad ``patch_size`` fails in seconds, not after caching.

    Args:
        patch_size: spatial input size, e.g. ``(96, 96, 96)``.
        levels: number of down-sampling levels of the :class:`UNetEncoder`.
        spatial_dims: if given, ``patch_size`` must have this many entries.

    Returns:
        ``patch_size`` as a tuple of ints.

    Raises:
        ValueError: wrong length, non-positive sides, or a side not divisible by ``2**levels``.
    """
    size = tuple(int(s) for s in patch_size)
    divisor = 2 ** int(levels)
    if spatial_dims is not None and len(size) != spatial_dims:
        raise ValueError(f"patch_size {list(size)} must have {spatial_dims} entries (spatial_dims={spatial_dims}).")
    if any(s < 1 for s in size):
        raise ValueError(f"patch_size {list(size)} must be positive.")
    if any(s % divisor for s in size):
        fixed = [max(divisor, round(s / divisor) * divisor) for s in size]
        raise ValueError(
            f"input spatial shape {size} is not divisible by 2**levels = {divisor} (levels={levels}); "
            f"use a patch/image size that is a multiple of {divisor}, e.g. {fixed}, or fewer levels."
        )
    return size


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
    method (:class:`UNetEncoder`), its architecture is also stored under ``"encoder_config"`` (unless given in
    ``extra``), which :func:`load_encoder_weights` quotes when shapes do not match.

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
        model: destination, e.g. a :class:`UNet` (``prefix="encoder."``) or a bare :class:`UNetEncoder`
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

    loadable = {k: v for k, v in state.items() if prefix + k in dst_state and v.shape == dst_state[prefix + k].shape}
    if not loadable:
        raise ValueError(f"No tensor of {where} fits the model: every matching key differs in shape. {cause}.")
    _, updated, _ = copy_model_state(model, loadable, dst_prefix=prefix)
    return sorted(updated)


def with_pretrained_encoder(
    model: nn.Module, source: str | os.PathLike | Mapping | None, prefix: str = "encoder.", strict: bool = True
) -> nn.Module:
    """Return ``model`` after loading encoder weights from ``source``; a no-op for ``None`` or ``""``.

    Meant for bundle configs (``"network": "$medssl3d.nets.with_pretrained_encoder(@network_def, @pretrained_encoder)"``)
    where an empty ``pretrained_encoder`` means training from scratch. Errors are those of
    :func:`load_encoder_weights` and surface before any data is loaded.
    """
    if source is None or (isinstance(source, (str, os.PathLike)) and not os.fspath(source)):
        return model
    keys = load_encoder_weights(model, source, prefix=prefix, strict=strict)
    logger.info("loaded %d encoder tensors from %s", len(keys), source if not isinstance(source, Mapping) else "state dict")
    return model
