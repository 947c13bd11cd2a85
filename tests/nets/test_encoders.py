"""The encoder registry: shapes, configs that rebuild the same architecture, clear errors."""

from __future__ import annotations

import pytest
import torch

from medssl3d.nets import ENCODERS, create_encoder, encoder_from_config, save_encoder

CASES = [
    ("unet", 3, 1, {"base_filters": 2, "levels": 2}, (2, 1, 16, 16, 12), (2, 8, 4, 4, 3)),
    ("unet", 2, 3, {"base_filters": 4, "levels": 3}, (2, 3, 32, 24), (2, 32, 4, 3)),
    ("densenet121", 2, 3, {}, (2, 3, 64, 64), (2, 1024, 2, 2)),
    ("resnet18", 2, 1, {}, (2, 1, 64, 64), (2, 512, 2, 2)),
    ("resnet18", 3, 1, {"conv1_t_stride": 1}, (2, 1, 16, 16, 16), (2, 512, 1, 1, 1)),  # max-pool + 3 stride-2 layers
    ("resnet50", 2, 3, {}, (2, 3, 64, 64), (2, 2048, 2, 2)),
]


@pytest.mark.parametrize("name,dims,channels,kwargs,in_shape,out_shape", CASES)
def test_shapes_and_config_round_trip(name, dims, channels, kwargs, in_shape, out_shape):
    torch.manual_seed(0)
    enc = create_encoder(name, dims, channels, **kwargs).eval()
    assert (enc.spatial_dims, enc.in_channels, enc.out_channels) == (dims, channels, out_shape[1])
    x = torch.randn(in_shape)
    y = enc.forward_features(x)
    assert tuple(y.shape) == out_shape
    rebuilt = encoder_from_config(enc.config()).eval()
    rebuilt.load_state_dict(enc.state_dict())  # same architecture: every key and shape matches
    assert torch.allclose(rebuilt.forward_features(x), y)


def test_saved_encoder_rebuilds_from_its_file(tmp_path):
    enc = create_encoder("resnet18", 2, 3)
    ckpt = torch.load(save_encoder(enc, tmp_path / "encoder.pt", task="rotation"), weights_only=True)
    assert ckpt["encoder_config"]["name"] == "resnet18"
    encoder_from_config(ckpt["encoder_config"]).load_state_dict(ckpt["model"])


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown encoder 'vgg'.*densenet121"):
        create_encoder("vgg", 2, 3)
    with pytest.raises(ValueError, match="bad argument for encoder 'densenet121'"):
        create_encoder("densenet121", 2, 3, levels=4)
    with pytest.raises(ValueError, match="spatial_dims"):
        create_encoder("resnet50", 4, 3)
    assert set(ENCODERS) == {"unet", "densenet121", "resnet18", "resnet50"}
