"""Tests of medssl3d.tasks.rotation: the rotation table, the transform's labels, the network and the task."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medssl3d.nets import UNetEncoder
from medssl3d.tasks.rotation import RandRotate90Pretextd, RotationNet, RotationTask, rotate, unrotate

SIZES = {2: 16, 3: 8}
N_CLASSES = {2: 4, 3: 10}


def _counting(encoder: UNetEncoder) -> list:
    """Record the input shape of every ``encoder.forward_features`` call."""
    calls, original = [], encoder.forward_features

    def forward_features(x):
        calls.append(tuple(x.shape))
        return original(x)

    encoder.forward_features = forward_features
    return calls


def _classes_reproducing(task: RotationTask, x: torch.Tensor, out: torch.Tensor) -> list[int]:
    return [c for c in range(task.num_classes) if torch.equal(task.rotate(x, c), out)]


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_unrotate_undoes_every_class(spatial_dims):
    task = RotationTask(spatial_dims, input_size=8)
    x = torch.randn(2, *(8,) * spatial_dims, generator=torch.Generator().manual_seed(0))
    assert task.num_classes == N_CLASSES[spatial_dims] == len(task.rotations)
    for c in range(task.num_classes):
        y = task.rotate(x, c)
        assert y.shape == x.shape
        assert torch.equal(task.unrotate(y, c), x), c
        assert torch.equal(unrotate(rotate(x, c, spatial_dims), c, spatial_dims), x)
        assert torch.equal(task.unrotate(y, torch.tensor(c)), x)  # a 0-d label tensor works too
        assert torch.equal(y, x) == (c == 0)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_all_rotations_pairwise_different(spatial_dims):
    task = RotationTask(spatial_dims, input_size=6)
    x = torch.randn(1, *(6,) * spatial_dims, generator=torch.Generator().manual_seed(1))
    rotated = [task.rotate(x, c) for c in range(task.num_classes)]
    for a, b in itertools.combinations(range(task.num_classes), 2):
        assert not torch.equal(rotated[a], rotated[b]), (a, b)


def test_2d_quarter_turn_by_hand():
    x = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])
    # class 1: one counter-clockwise quarter turn of (row, column): the last column becomes the first row
    assert torch.equal(rotate(x, 1, 2), torch.tensor([[[1.0, 3.0], [0.0, 2.0]]]))
    assert torch.equal(rotate(x, 2, 2), torch.tensor([[[3.0, 2.0], [1.0, 0.0]]]))


def test_3d_classes_rotate_about_the_documented_axis():
    """Class in 1..3 rotates about spatial axis 0, 4..6 about 1, 7..9 about 2: only that axis' profile survives."""
    task = RotationTask(3, input_size=5)
    x = torch.randn(1, 5, 5, 5, generator=torch.Generator().manual_seed(2))

    def profile(v, axis):  # sum over the other spatial axes
        return v.sum(dim=tuple(d for d in (1, 2, 3) if d != axis + 1)).flatten()

    for c in range(1, 10):
        about = (c - 1) // 3
        (a, b), k = task.rotations[c]
        assert {a, b, about} == {0, 1, 2} and k == (c - 1) % 3 + 1
        y = task.rotate(x, c)
        for axis in range(3):
            assert torch.allclose(profile(y, axis), profile(x, axis), atol=1e-5) == (axis == about), (c, axis)
    # class 1 turns every axis-0 slice in its own plane
    y = task.rotate(x, 1)
    for i in range(5):
        assert torch.equal(y[:, i], torch.rot90(x[:, i], 1, dims=(1, 2)))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_transform_label_matches_applied_rotation(spatial_dims):
    task = RotationTask(spatial_dims, input_size=SIZES[spatial_dims])
    t = task.transform()
    t.set_random_state(seed=0)
    x = torch.randn(1, *task.input_size, generator=torch.Generator().manual_seed(3))
    seen = set()
    for _ in range(8 * task.num_classes):
        out = t({"image": MetaTensor(x.clone()), "other": 7})
        img, label = out["image"], out["label"]
        assert type(img) is torch.Tensor and img.dtype == torch.float32 and img.shape == x.shape
        assert label.dtype == torch.int64 and label.ndim == 0
        assert out["other"] == 7
        assert _classes_reproducing(task, x, img) == [int(label)]
        seen.add(int(label))
    assert seen == set(range(task.num_classes))  # every class is drawn, not a constant label


def test_transform_accepts_numpy_and_custom_keys():
    t = RotationTask(2, input_size=8).transform(keys="img", label_key="rot")
    t.set_random_state(seed=5)
    x = np.arange(64, dtype=np.float64).reshape(1, 8, 8)
    out = t({"img": x})
    assert out["img"].dtype == torch.float32
    assert torch.equal(out["img"], rotate(torch.as_tensor(x, dtype=torch.float32), out["rot"], 2))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_set_random_state_reproduces(spatial_dims):
    task = RotationTask(spatial_dims, input_size=8)
    x = torch.randn(1, *task.input_size)

    def labels(seed):
        t = task.transform().set_random_state(seed=seed)
        return [int(t({"image": x})["label"]) for _ in range(20)]

    assert labels(11) == labels(11)
    assert labels(11) != labels(12)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_network_calls_encoder_once_and_learns(spatial_dims):
    torch.manual_seed(0)
    task = RotationTask(spatial_dims, input_size=SIZES[spatial_dims])
    encoder = UNetEncoder(spatial_dims, 1, base_filters=4, levels=2)
    net = task.network(encoder)
    assert isinstance(net, RotationNet) and net.encoder is encoder
    calls = _counting(encoder)
    # a smooth, asymmetric image in every rotation: a learnable fixed batch
    grids = torch.meshgrid(*[torch.linspace(0, 1, SIZES[spatial_dims])] * spatial_dims, indexing="ij")
    base = sum((i + 1) * g**(i + 1) for i, g in enumerate(grids))[None] + 0.1 * torch.randn(1, *task.input_size)
    x = torch.stack([task.rotate(base, c) for c in range(task.num_classes)])
    y = torch.arange(task.num_classes)
    loss_fn = task.loss()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        out = net(x)
        assert out.shape == (task.num_classes, task.num_classes)
        loss = loss_fn(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert len(calls) == 20 and calls[0] == tuple(x.shape)
    assert losses[0] == pytest.approx(np.log(task.num_classes), rel=0.3)
    assert max(losses[-3:]) < 0.5 * losses[0], losses
    right, judged = task.correct(net.eval()(x), y)
    assert judged == task.num_classes and 0 <= right <= judged


def test_correct_counts_argmax_hits():
    task = RotationTask(2, input_size=8)
    logits = torch.tensor([[5.0, 0, 0, 0], [0, 0, 3.0, 0], [0, 1.0, 0, 0]])
    assert task.correct(logits, torch.tensor([0, 1, 1])) == (2, 3)


def test_state_is_json_and_defaults():
    task3, task2 = RotationTask(3), RotationTask(2)
    assert task3.input_size == (64, 64, 64) and task2.input_size == (128, 128)
    state = json.loads(json.dumps(task3.state()))
    assert state["name"] == "rotation" and state["num_classes"] == 10 and state["input_size"] == [64, 64, 64]
    assert state["rotations"][1] == [[1, 2], 1] and state["rotations"][9] == [[0, 1], 3]
    assert json.loads(json.dumps(task2.state()))["num_classes"] == 4
    assert RotationTask.has_label and RotationTask.name == "rotation"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"spatial_dims": 4}, "spatial_dims"),
        ({"spatial_dims": 3, "input_size": (32, 32, 16)}, r"\(32, 32, 16\)"),
        ({"spatial_dims": 2, "input_size": (32, 48)}, r"\(32, 48\)"),
        ({"spatial_dims": 3, "input_size": 0}, "input_size"),
        ({"spatial_dims": 2, "input_size": (32, 32, 32)}, "input_size"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RotationTask(**kwargs)


def test_bad_inputs():
    task = RotationTask(3, input_size=8)
    with pytest.raises(ValueError, match="10"):
        task.rotate(torch.zeros(1, 8, 8, 8), 10)
    with pytest.raises(ValueError, match=r"\(8, 8\)"):
        task.rotate(torch.zeros(8, 8), 1)
    with pytest.raises(ValueError, match=r"\(8, 8, 6\)"):
        task.transform()({"image": torch.zeros(1, 8, 8, 6)})
    with pytest.raises(ValueError, match="spatial_dims"):
        RandRotate90Pretextd("image", spatial_dims=1)
    net = task.network(UNetEncoder(3, 1, base_filters=2, levels=1))
    with pytest.raises(ValueError, match=r"\(1, 8, 8, 8\)"):
        net(torch.zeros(1, 8, 8, 8))
    with pytest.raises(ValueError, match="spatial_dims"):
        task.network(UNetEncoder(2, 1, base_filters=2, levels=1))
