"""Every network a bundle deploys scripts with ``torch.jit.script`` (what ``monai.bundle ckpt_export`` runs) and
gives the eager output to 1e-5 on a random input of the bundle's shape, before and after a save/load round trip.

The networks are the bundles' defaults: the 3D UNet of pancreas_ct_ssl (16 base filters, 4 levels, a 96^3
patch), fundus_dr_ssl's DenseNet-121 (RGB 224^2, 5 grades) and ResNet-50 (its SiCoVa backbone), and
chest_xray_ssl's ResNet-18 (grey 64^2), each with the linear and the MLP head.
"""

from __future__ import annotations

import io

import pytest
import torch

from medssl3d.nets import Classifier, UNet, create_encoder


def _round_trip(scripted: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)


def _check(net: torch.nn.Module, shape: tuple[int, ...]) -> torch.jit.ScriptModule:
    torch.manual_seed(0)
    net = net.eval()
    x = torch.rand(shape)
    loaded = _round_trip(torch.jit.script(net))
    with torch.no_grad():
        eager, scripted = net(x), loaded(x)
    assert scripted.shape == eager.shape
    torch.testing.assert_close(scripted, eager, atol=1e-5, rtol=0)
    return loaded


@pytest.mark.slow
def test_pancreas_unet_at_the_bundle_patch():
    loaded = _check(UNet(spatial_dims=3, in_channels=1, out_channels=3, base_filters=16, levels=4), (1, 1, 96, 96, 96))
    assert (loaded.encoder.name, loaded.encoder.base_filters, loaded.encoder.levels) == ("unet", 16, 4)


def test_scripted_unet_keeps_its_input_checks():
    net = UNet(spatial_dims=3, in_channels=1, out_channels=2, base_filters=2, levels=2)
    loaded = _round_trip(torch.jit.script(net))
    with pytest.raises(Exception, match="not a multiple of 2\\*\\*levels = 4"):
        loaded(torch.rand(1, 1, 16, 16, 14))
    with pytest.raises(Exception, match="in_channels=1\\) got an input with 2 channels"):
        loaded(torch.rand(1, 2, 16, 16, 16))
    assert loaded(torch.rand(1, 1, 16, 16, 8)).shape == (1, 2, 16, 16, 8)


@pytest.mark.parametrize("head", ["linear", "mlp"])
@pytest.mark.parametrize(
    "backbone, in_channels, size, classes",
    [("densenet121", 3, 224, 5), ("resnet50", 3, 224, 5), ("resnet18", 1, 64, 2)],
)
def test_classifiers_at_the_bundle_shape(backbone, in_channels, size, classes, head):
    names = [f"class {i}" for i in range(classes)]
    net = Classifier(create_encoder(backbone, 2, in_channels), classes, head=head, class_names=names,
                     multi_label=head == "mlp", input_size=size)
    loaded = _check(net, (2, in_channels, size, size))
    # what inference.json reads from a model.ts
    assert list(loaded.class_names) == names and bool(loaded.multi_label) is (head == "mlp")
    assert list(loaded.input_size) == [size, size] and loaded.encoder.name == backbone
    assert loaded.encoder.in_channels == in_channels and loaded.head_type == head
