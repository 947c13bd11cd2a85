"""Encoders behind one interface, so pretext tasks, classifiers and UNets share them.

An encoder here is a module with ``forward_features(x) -> (N, out_channels, *spatial')`` and the int
attributes ``out_channels``, ``spatial_dims`` and ``in_channels``, plus ``config()`` returning the plain
arguments that rebuild it (:func:`encoder_from_config`). That is all a task head or a classifier needs.

- ``"unet"``: :class:`~medssl3d.nets.unet.UNetEncoder`, the Taleb et al. (2020) 3D UNet encoder.
- ``"densenet121"``: MONAI's ``DenseNet121`` feature trunk (the classifier layers dropped), as used by
  Taleb et al. for fundus DR grading.
- ``"resnet18"``, ``"resnet50"``: MONAI's ``ResNet`` trunk up to ``layer4``. MONAI defaults the stem to
  stride 1, which costs about 4x the compute of the usual ImageNet stem; ``conv1_t_stride=2`` is the
  default here (pass 1 for full resolution).

The weights live under the same keys as in MONAI's networks minus their heads, so a DenseNet121
``features.*`` state dict (e.g. a user's own ImageNet conversion) loads with ``copy_model_state``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn
from monai.networks.nets import DenseNet121, resnet18, resnet50

from medssl3d.nets.unet import UNetEncoder
from medssl3d.utils.checks import check_positive_int, check_spatial_dims
from medssl3d.utils.io import to_plain

__all__ = [
    "DenseNetEncoder",
    "ResNetEncoder",
    "ENCODERS",
    "create_encoder",
    "encoder_from_config",
    "check_encoder",
    "global_pool",
]


def global_pool(features: torch.Tensor) -> torch.Tensor:
    """Global average pooling of a (N, C, *spatial) feature map to (N, C)."""
    return features.flatten(2).mean(-1)


def check_encoder(encoder: nn.Module, spatial_dims: int) -> int:
    """Check ``encoder`` offers ``forward_features`` and ``out_channels`` for ``spatial_dims``; return ``out_channels``.

    Raises:
        TypeError: ``encoder`` lacks ``forward_features(x)`` or an int ``out_channels``.
        ValueError: the encoder's ``spatial_dims`` differs from ``spatial_dims``.
    """
    if not callable(getattr(encoder, "forward_features", None)) or not isinstance(
        getattr(encoder, "out_channels", None), int
    ):
        raise TypeError(
            f"{type(encoder).__name__} is not a medssl3d encoder: it needs forward_features(x) and an int "
            "out_channels (see medssl3d.nets.create_encoder)."
        )
    dims = getattr(encoder, "spatial_dims", spatial_dims)
    if dims != spatial_dims:
        raise ValueError(f"the task has spatial_dims={spatial_dims} but the encoder has spatial_dims={dims}.")
    return int(encoder.out_channels)


class DenseNetEncoder(nn.Module):
    """The feature trunk of MONAI's ``DenseNet121`` (dense blocks and the final norm), then ReLU.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        dropout: dropout probability inside the dense layers (MONAI's ``dropout_prob``).

    Attributes:
        out_channels: 1024.
    """

    def __init__(self, spatial_dims: int = 2, in_channels: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        spatial_dims = check_spatial_dims(spatial_dims)
        in_channels = check_positive_int("in_channels", in_channels)
        self.name = "densenet121"  # kept by TorchScript, so an exported model still says what it is
        self.spatial_dims, self.in_channels, self.dropout = spatial_dims, in_channels, float(dropout)
        net = DenseNet121(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=1, dropout_prob=dropout)
        self.features = net.features
        self.out_channels: int = int(net.class_layers.out.in_features)
        self.act = nn.ReLU(inplace=False)

    def config(self) -> dict[str, Any]:
        return {"name": "densenet121", "spatial_dims": self.spatial_dims, "in_channels": self.in_channels,
                "dropout": self.dropout}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, *S) -> (N, 1024, *S / 32)."""
        return self.act(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


class ResNetEncoder(nn.Module):
    """MONAI's ``resnet18`` / ``resnet50`` up to ``layer4`` (no pooling, no ``fc``).

    Args:
        depth: 18 or 50.
        spatial_dims: 2 or 3.
        in_channels: input channels.
        conv1_t_stride: stride of the stem convolution (2: the usual ImageNet stem).

    Attributes:
        out_channels: 512 for depth 18, 2048 for depth 50.
    """

    _FACTORIES = {18: resnet18, 50: resnet50}

    def __init__(self, depth: int = 50, spatial_dims: int = 2, in_channels: int = 3, conv1_t_stride: int = 2) -> None:
        super().__init__()
        if depth not in self._FACTORIES:
            raise ValueError(f"ResNet depth must be one of {sorted(self._FACTORIES)}, got {depth!r}.")
        spatial_dims = check_spatial_dims(spatial_dims)
        in_channels = check_positive_int("in_channels", in_channels)
        conv1_t_stride = check_positive_int("conv1_t_stride", conv1_t_stride)
        self.name = f"resnet{depth}"  # kept by TorchScript, so an exported model still says what it is
        self.depth, self.spatial_dims, self.in_channels = depth, spatial_dims, in_channels
        self.conv1_t_stride = conv1_t_stride
        self.net = self._FACTORIES[depth](
            spatial_dims=spatial_dims, n_input_channels=in_channels, conv1_t_stride=conv1_t_stride, feed_forward=False
        )
        self.out_channels: int = 512 if depth == 18 else 2048

    def config(self) -> dict[str, Any]:
        return {"name": f"resnet{self.depth}", "spatial_dims": self.spatial_dims, "in_channels": self.in_channels,
                "conv1_t_stride": self.conv1_t_stride}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, *S) -> (N, out_channels, *S / (16 * conv1_t_stride))."""
        net = self.net
        x = net.act(net.bn1(net.conv1(x)))
        if not net.no_max_pool:
            x = net.maxpool(x)
        return net.layer4(net.layer3(net.layer2(net.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


def _unet(spatial_dims: int, in_channels: int, **kwargs: Any) -> nn.Module:
    return UNetEncoder(spatial_dims=spatial_dims, in_channels=in_channels, **kwargs)


def _densenet121(spatial_dims: int, in_channels: int, **kwargs: Any) -> nn.Module:
    return DenseNetEncoder(spatial_dims=spatial_dims, in_channels=in_channels, **kwargs)


def _resnet(depth: int):
    def build(spatial_dims: int, in_channels: int, **kwargs: Any) -> nn.Module:
        return ResNetEncoder(depth=depth, spatial_dims=spatial_dims, in_channels=in_channels, **kwargs)

    return build


#: name -> builder(spatial_dims, in_channels, **kwargs)
ENCODERS = {"unet": _unet, "densenet121": _densenet121, "resnet18": _resnet(18), "resnet50": _resnet(50)}


def create_encoder(name: str, spatial_dims: int, in_channels: int = 1, **kwargs: Any) -> nn.Module:
    """Build an encoder by name.

    Args:
        name: one of :data:`ENCODERS` (case-insensitive): ``unet``, ``densenet121``, ``resnet18``, ``resnet50``.
        spatial_dims: 2 or 3.
        in_channels: input channels.
        kwargs: the encoder's own arguments (e.g. ``base_filters``, ``levels`` for ``unet``).

    Raises:
        ValueError: unknown name, or a bad argument of the encoder.

    Example::

        enc = create_encoder("densenet121", spatial_dims=2, in_channels=3)
        enc.forward_features(torch.zeros(2, 3, 64, 64)).shape  # (2, 1024, 2, 2)
    """
    key = str(name).lower()
    if key not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}.")
    try:
        return ENCODERS[key](spatial_dims, in_channels, **kwargs)
    except TypeError as err:  # an argument the encoder does not take
        raise ValueError(f"bad argument for encoder {key!r}: {err}") from err


def encoder_from_config(config: Mapping[str, Any]) -> nn.Module:
    """Rebuild an encoder from its ``config()`` (as stored in ``encoder.pt`` under ``"encoder_config"``).

    A config without ``"name"`` is a :class:`UNetEncoder`'s.
    """
    cfg = dict(to_plain(dict(config)))
    name = cfg.pop("name", "unet")
    spatial_dims = cfg.pop("spatial_dims")
    in_channels = cfg.pop("in_channels", 1)
    return create_encoder(name, spatial_dims, in_channels, **cfg)
