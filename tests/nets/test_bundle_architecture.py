"""The bundles' architecture helpers: the encoder an architecture dict describes, and evaluation's model.pt."""

from __future__ import annotations

import pytest
import torch

from medssl3d.nets import Classifier, create_encoder
from medssl3d.nets.bundle_architecture import encoder_from_architecture, evaluation_checkpoint

DEFAULTS_2D = {"backbone": "densenet121", "in_channels": 3, "encoder_args": {}}
UNSET = {"backbone": None, "in_channels": None, "encoder_args": None}


def test_encoder_from_architecture_is_create_encoder_with_its_arguments():
    arch = {"backbone": "resnet50", "in_channels": 1, "encoder_args": {"conv1_t_stride": 1}}
    encoder = encoder_from_architecture(arch, 2)
    expected = create_encoder("resnet50", 2, 1, conv1_t_stride=1)
    assert encoder.config() == expected.config() and encoder.config()["conv1_t_stride"] == 1
    assert {k: v.shape for k, v in encoder.state_dict().items()} == {
        k: v.shape for k, v in expected.state_dict().items()}
    # no (or empty) encoder_args: the backbone's defaults
    assert encoder_from_architecture({"backbone": "resnet18", "in_channels": 3}, 2).config() == create_encoder(
        "resnet18", 2, 3).config()
    with pytest.raises(ValueError, match="has no in_channels"):
        encoder_from_architecture({"backbone": "resnet18"}, 2)


def _model_pt(path, **extra):
    net = Classifier(create_encoder("resnet18", 2, 1), num_classes=2, head="linear")
    torch.save({"model": net.state_dict(), "network_config": net.config(), **extra}, path)
    return path


@pytest.mark.parametrize("recorded, expected", [({"linear_probe": True}, True), ({}, False)])
def test_evaluation_checkpoint_gives_the_architecture_and_the_training_record(tmp_path, recorded, expected):
    path = _model_pt(tmp_path / "model.pt", **recorded)
    info = evaluation_checkpoint(path, 2, DEFAULTS_2D, missing_hint="train first", **UNSET)
    assert info == {
        "architecture": {"backbone": "resnet18", "in_channels": 1, "encoder_args": info["architecture"]["encoder_args"]},
        "linear_probe": expected,
    }


def test_evaluation_checkpoint_errors_name_the_file_and_the_way_out(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ckpt_path '.*nope\.pt' not found; train first\."):
        evaluation_checkpoint(tmp_path / "nope.pt", 2, DEFAULTS_2D, missing_hint="train first", **UNSET)
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"Cannot read checkpoint .*broken\.pt"):
        evaluation_checkpoint(tmp_path / "broken.pt", 2, DEFAULTS_2D, **UNSET)
    path = _model_pt(tmp_path / "model.pt")
    with pytest.raises(ValueError, match="backbone=densenet121 contradicts ckpt_path .* pass --backbone resnet18"):
        evaluation_checkpoint(path, 2, DEFAULTS_2D, **{**UNSET, "backbone": "densenet121"})


def test_evaluation_checkpoint_reads_model_pt_once(tmp_path, monkeypatch):
    import medssl3d.nets.architecture as architecture_module
    import medssl3d.nets.bundle_architecture as bundle_module
    from medssl3d.utils.io import load_weights

    reads = []

    def counting(path, *args, **kwargs):
        reads.append(str(path))
        return load_weights(path, *args, **kwargs)

    monkeypatch.setattr(architecture_module, "load_weights", counting)
    monkeypatch.setattr(bundle_module, "load_weights", counting)
    path = _model_pt(tmp_path / "model.pt", linear_probe=True)
    info = evaluation_checkpoint(path, 2, DEFAULTS_2D, **UNSET)
    assert info["linear_probe"] is True and info["architecture"]["backbone"] == "resnet18"
    assert reads == [str(path)]
