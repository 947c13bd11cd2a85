"""The UNet of Taleb et al. 2020, its encoder and decoder, and encoder weight transfer.

Taleb, A., Loetzsch, W., Danz, N., Severin, J., Gaertner, T., Bergner, B., Lippert, C.
"3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020. https://arxiv.org/abs/2006.03829

Their 3D UNet has 4 down-sampling levels and 16 base filters doubling per level. The encoder is what
the self-supervised pretext tasks train; the full :class:`UNet` holds it as ``self.encoder`` so the
encoder's own ``state_dict()`` (written by :func:`save_encoder`) loads into a UNet under the prefix
``encoder.`` (:func:`load_encoder_weights`). One implementation serves 2D and 3D via ``spatial_dims``.

The encoder, its block and :func:`check_patch_size` live in :mod:`medssl3d.nets.unet_encoder`; saving and
loading encoder weights in :mod:`medssl3d.nets.weights`. Both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.networks.blocks import UpSample
from monai.networks.layers.factories import Conv
from monai.utils import look_up_option

from medssl3d.nets.unet_encoder import TwoConv, UNetEncoder, check_patch_size
from medssl3d.nets.weights import load_encoder_weights, save_encoder, with_pretrained_encoder
from medssl3d.utils.checks import check_positive_int, check_probability, check_spatial_dims

__all__ = [
    "UNetEncoder",
    "UNetDecoder",
    "UNet",
    "check_patch_size",
    "load_encoder_weights",
    "save_encoder",
    "with_pretrained_encoder",
]

_UPSAMPLE_MODES = ("deconv", "nontrainable")


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
            self.blocks.append(TwoConv(spatial_dims, 2 * c_skip, c_skip, norm=norm, act=act, dropout=dropout))
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
