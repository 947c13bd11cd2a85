"""The encoder of the Taleb et al. 2020 UNet, its convolution block, and the input-size check of the UNet.

Taleb, A., Loetzsch, W., Danz, N., Severin, J., Gaertner, T., Bergner, B., Lippert, C.
"3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020. https://arxiv.org/abs/2006.03829

The encoder is what the self-supervised pretext tasks train; :class:`~medssl3d.nets.UNet` holds it as
``self.encoder``. One implementation serves 2D and 3D via ``spatial_dims``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution
from monai.networks.layers.factories import Pool

from medssl3d.utils.checks import check_positive_int, check_probability, check_spatial_dims
from medssl3d.utils.io import to_plain

__all__ = ["UNetEncoder", "check_patch_size"]


class TwoConv(nn.Sequential):
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
            self.blocks.append(TwoConv(spatial_dims, c_in, c_out, norm=norm, act=act, dropout=dropout))
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
