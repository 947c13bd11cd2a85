"""Networks: the UNet of Taleb et al. 2020 (encoder, decoder, full model) and encoder weight transfer."""

from __future__ import annotations

from .encoders import ENCODERS, DenseNetEncoder, ResNetEncoder, create_encoder, encoder_from_config
from .unet import (
    UNet,
    UNetDecoder,
    UNetEncoder,
    check_patch_size,
    load_encoder_weights,
    save_encoder,
    with_pretrained_encoder,
)

__all__ = [
    "ENCODERS",
    "DenseNetEncoder",
    "ResNetEncoder",
    "create_encoder",
    "encoder_from_config",
    "UNet",
    "UNetDecoder",
    "UNetEncoder",
    "check_patch_size",
    "load_encoder_weights",
    "save_encoder",
    "with_pretrained_encoder",
]
