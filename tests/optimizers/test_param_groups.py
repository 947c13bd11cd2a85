"""encoder_head_param_groups: the fine-tuning bundles' two learning rates (encoder, head)."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from medssl3d.nets import Classifier, create_encoder
from medssl3d.optimizers import encoder_head_param_groups


def _classifier() -> Classifier:
    return Classifier(create_encoder("resnet18", 2, 1), num_classes=3, head="mlp", hidden=(8,))


def _ids(params) -> list[int]:
    return [id(p) for p in params]


def test_groups_hold_the_encoder_at_its_factor_then_the_head():
    net = _classifier()
    encoder, head = encoder_head_param_groups(net, learning_rate=1e-3, encoder_lr_factor=0.1)
    assert _ids(encoder["params"]) == _ids(net.encoder.parameters()) and encoder["lr"] == pytest.approx(1e-4)
    assert _ids(head["params"]) == _ids(net.head.parameters()) and "lr" not in head
    assert len(encoder["params"]) + len(head["params"]) == len(list(net.parameters()))  # nothing left out
    optimizer = torch.optim.AdamW([encoder, head], lr=1e-3)
    assert [g["lr"] for g in optimizer.param_groups] == [pytest.approx(1e-4), 1e-3]


def test_frozen_parameters_are_kept_for_a_later_unfreeze():
    net = _classifier()
    for p in net.encoder.parameters():
        p.requires_grad_(False)
    encoder, _ = encoder_head_param_groups(net, 1e-3)
    assert len(encoder["params"]) == len(list(net.encoder.parameters())) and encoder["lr"] == 1e-3


def test_a_wrapped_network_gives_the_groups_of_the_wrapped_one(tmp_path):
    net = _classifier()
    expected = [_ids(g["params"]) for g in encoder_head_param_groups(net, 1e-3, 0.5)]
    wrapped = torch.nn.DataParallel(net)
    assert [_ids(g["params"]) for g in encoder_head_param_groups(wrapped, 1e-3, 0.5)] == expected
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(net)
        groups = encoder_head_param_groups(ddp, 1e-3, 0.5)
    finally:
        dist.destroy_process_group()
    assert [_ids(g["params"]) for g in groups] == expected and groups[0]["lr"] == pytest.approx(5e-4)


@pytest.mark.parametrize(
    "network, kwargs, match",
    [
        (torch.nn.Linear(2, 2), {}, "needs a network with 'encoder' and 'head' sub-modules; Linear has no 'encoder'"),
        (None, {"learning_rate": -1.0}, "learning_rate must be"),
        (None, {"encoder_lr_factor": -0.1}, "encoder_lr_factor must be"),
        (None, {"encoder_lr_factor": True}, "encoder_lr_factor must be"),
    ],
)
def test_bad_arguments_are_refused(network, kwargs, match):
    args = {"learning_rate": 1e-3, **kwargs}
    with pytest.raises(ValueError, match=match):
        encoder_head_param_groups(network if network is not None else _classifier(), **args)
