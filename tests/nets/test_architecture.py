"""The architecture recorded in encoder.pt / model.pt / model.ts is read back, merged with the user's settings,
and a contradicting setting is refused with the override to pass."""

from __future__ import annotations

import logging

import pytest
import torch

from medssl3d.nets import (
    Classifier,
    UNet,
    create_encoder,
    is_torchscript,
    load_inference_network,
    network_from_checkpoint,
    network_from_config,
    read_network_config,
    resolve_architecture,
    save_encoder,
)

DEFAULTS_2D = {"backbone": "densenet121", "in_channels": 3, "encoder_args": {}}
DEFAULTS_3D = {"in_channels": 1, "base_filters": 16, "levels": 4}


@pytest.fixture
def resnet50_pt(tmp_path):
    return save_encoder(create_encoder("resnet50", 2, 3, conv1_t_stride=1), tmp_path / "encoder.pt", task="sicova")


def test_unset_settings_come_from_encoder_pt_and_are_logged(resnet50_pt, caplog):
    with caplog.at_level(logging.INFO, logger="medssl3d.nets.architecture"):
        arch = resolve_architecture(resnet50_pt, 2, DEFAULTS_2D, backbone=None, in_channels=None, encoder_args=None)
    assert arch == {"backbone": "resnet50", "in_channels": 3, "encoder_args": {"conv1_t_stride": 1}}
    assert f"architecture from {resnet50_pt}: backbone='resnet50'" in caplog.text
    # agreeing settings are accepted (the backbone name case-insensitively)
    assert resolve_architecture(resnet50_pt, 2, DEFAULTS_2D, backbone="ResNet50", in_channels=3) == {
        **arch, "backbone": "resnet50"}


@pytest.mark.parametrize(
    "given, said, override",
    [
        ({"backbone": "densenet121"}, "backbone=densenet121", "--backbone resnet50"),
        ({"in_channels": 1}, "in_channels=1", "--in_channels 3"),
        ({"encoder_args": {"conv1_t_stride": 2}}, "encoder_args=\"{'conv1_t_stride': 2}\"",
         "--encoder_args \"{'conv1_t_stride': 1}\""),
    ],
)
def test_a_contradicting_setting_is_refused_with_the_override(resnet50_pt, given, said, override):
    with pytest.raises(ValueError) as err:
        resolve_architecture(resnet50_pt, 2, DEFAULTS_2D, **given)
    assert str(err.value).startswith(f"{said} contradicts pretrained_encoder '{resnet50_pt}'")
    assert f"pass {override} (or leave" in str(err.value)


def test_unet_settings_and_every_conflict_named_at_once(tmp_path):
    path = save_encoder(UNet(3, 1, 3, base_filters=8, levels=3).encoder, tmp_path / "u.pt")
    assert resolve_architecture(path, 3, DEFAULTS_3D) == {"in_channels": 1, "base_filters": 8, "levels": 3}
    with pytest.raises(ValueError, match=r"base_filters=16, levels=4 contradicts .* pass --base_filters 8 --levels 3"):
        resolve_architecture(path, 3, DEFAULTS_3D, base_filters=16, levels=4)


def test_other_spatial_dims_or_backbone_refused_naming_both(tmp_path, resnet50_pt):
    unet3d = save_encoder(UNet(3, 1, 2, base_filters=2, levels=1).encoder, tmp_path / "u3.pt")
    with pytest.raises(ValueError, match="holds a 3D unet encoder but this bundle builds a 2D network"):
        resolve_architecture(unet3d, 2, DEFAULTS_2D)
    with pytest.raises(ValueError, match="holds a 2D resnet50 encoder but this bundle builds a 3D network"):
        resolve_architecture(resnet50_pt, 3, DEFAULTS_3D)
    resnet3d = save_encoder(create_encoder("resnet18", 3, 1), tmp_path / "r3.pt")
    with pytest.raises(ValueError, match="holds a resnet18 encoder but this bundle builds a UNet"):
        resolve_architecture(resnet3d, 3, DEFAULTS_3D)


def test_no_source_missing_file_and_unrecorded_file(tmp_path, caplog):
    assert resolve_architecture("", 3, DEFAULTS_3D, levels=2) == {**DEFAULTS_3D, "levels": 2}
    with pytest.raises(FileNotFoundError, match="ckpt_path '.*nope.pt' not found; train first"):
        resolve_architecture(tmp_path / "nope.pt", 3, DEFAULTS_3D, source_key="ckpt_path", missing_hint="train first")
    torch.save({"model": UNet(3, 1, 2, base_filters=2, levels=1).state_dict()}, tmp_path / "bare.pt")
    with caplog.at_level(logging.WARNING, logger="medssl3d.nets.architecture"):
        assert resolve_architecture(tmp_path / "bare.pt", 3, DEFAULTS_3D, base_filters=2)["base_filters"] == 2
    assert "records no architecture" in caplog.text
    with pytest.raises(ValueError, match="have no default"):
        resolve_architecture("", 3, DEFAULTS_3D, backbone="unet")


def _model_pt(path, net, **extra):
    torch.save({"model": net.state_dict(), "network_config": net.config(), **extra}, path)
    return path


def test_model_pt_rebuilds_the_classifier_with_its_names_and_size(tmp_path):
    torch.manual_seed(0)
    net = Classifier(create_encoder("resnet18", 2, 1), 3, head="mlp", dropout=0.0, hidden=[16]).eval()
    path = _model_pt(tmp_path / "model.pt", net, class_names=["a", "b", "c"], multi_label=True, image_size=32)
    cfg = read_network_config(path)
    assert cfg["class_names"] == ["a", "b", "c"] and cfg["multi_label"] is True and cfg["input_size"] == 32
    rebuilt = network_from_checkpoint(path)
    assert isinstance(rebuilt, Classifier) and rebuilt.input_size == [32, 32] and rebuilt.multi_label
    assert rebuilt.state_dict().keys() == net.state_dict().keys() and rebuilt.hidden == (16,)
    loaded = load_inference_network(path)
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(loaded(x), net(x))
    assert not loaded.training and loaded.class_names == ["a", "b", "c"]
    # the same file read as the encoder's architecture source (evaluation's ckpt_path)
    assert resolve_architecture(path, 2, DEFAULTS_2D)["backbone"] == "resnet18"


def test_unet_round_trip_through_model_pt_and_model_ts(tmp_path):
    torch.manual_seed(0)
    net = UNet(3, 1, 3, base_filters=4, levels=2).eval()
    path = _model_pt(tmp_path / "model.pt", net)
    assert isinstance(network_from_config(net.config()), UNet)
    ts = tmp_path / "model.ts"
    torch.jit.save(torch.jit.script(net), ts)
    assert is_torchscript(ts) and not is_torchscript(path) and not is_torchscript(tmp_path / "missing.ts")
    # a model.ts keeps the encoder attributes inference and export read
    assert resolve_architecture(ts, 3, DEFAULTS_3D, source_key="ckpt_path") == {
        "in_channels": 1, "base_filters": 4, "levels": 2}
    x = torch.rand(1, 1, 16, 16, 16)
    torch.testing.assert_close(load_inference_network(ts)(x), net(x), atol=1e-5, rtol=0)
    torch.testing.assert_close(load_inference_network(path)(x), net(x))


def test_weights_that_do_not_fit_and_files_without_a_network_config(tmp_path):
    path = _model_pt(tmp_path / "model.pt", UNet(3, 1, 3, base_filters=4, levels=2))
    with pytest.raises(ValueError, match="do not fit the network"):
        load_inference_network(path, network_def=UNet(3, 1, 3, base_filters=8, levels=2))
    save_encoder(UNet(3, 1, 3, base_filters=4, levels=2).encoder, tmp_path / "encoder.pt")
    with pytest.raises(ValueError, match="records no network_config"):
        network_from_checkpoint(tmp_path / "encoder.pt")
    with pytest.raises(FileNotFoundError, match="train first"):
        load_inference_network(tmp_path / "none.pt")
    with pytest.raises(ValueError, match="neither a classifier"):
        network_from_config({"encoder": {"name": "unet", "spatial_dims": 3}})


def test_legacy_model_pt_top_level_keys():
    payload = {"model": {}, "spatial_dims": 2, "in_channels": 3, "backbone": "resnet18", "encoder_args": {}}
    assert read_network_config(payload) == {
        "encoder": {"name": "resnet18", "spatial_dims": 2, "in_channels": 3}}
    assert read_network_config({"model": {}}) is None


def test_inference_configs_build_before_any_checkpoint_exists(tmp_path, caplog):
    """required=False and default=: what lets verify_net_in_out build network_def with no model.pt yet."""
    missing = tmp_path / "models" / "model.pt"
    with caplog.at_level(logging.INFO, logger="medssl3d.nets.architecture"):
        arch = resolve_architecture(missing, 3, DEFAULTS_3D, source_key="ckpt_path", required=False, levels=3)
    assert arch == {**DEFAULTS_3D, "levels": 3} and "does not exist (yet)" in caplog.text
    default = {"num_classes": 2, "head": "linear", "class_names": ["n", "p"],
               "encoder": {"name": "resnet18", "spatial_dims": 2, "in_channels": 1}}
    net = network_from_checkpoint(missing, default=default)
    assert isinstance(net, Classifier) and net.class_names == ["n", "p"] and net.encoder.in_channels == 1
    with pytest.raises(FileNotFoundError, match="train first"):
        network_from_checkpoint(missing)
    # an existing file wins over the default
    trained = Classifier(create_encoder("resnet18", 2, 3), 4)
    path = _model_pt(tmp_path / "model.pt", trained)
    assert network_from_checkpoint(path, default=default).num_classes == 4
