"""Tests of medssl3d.tasks.triplet: labelled triplet pretraining (labels in, L2-normalised embeddings out)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medssl3d.losses import LabeledTripletLoss
from medssl3d.nets import UNetEncoder
from medssl3d.tasks import TASKS, create_task
from medssl3d.tasks.triplet import (
    LabeledTripletTask,
    LabeledViewd,
    TripletEmbeddingNet,
    TripletLabelLoss,
    as_class_label,
    nearest_neighbour_correct,
)
from medssl3d.transforms import CLAHEd, MultiStageRandomChoiceJigsawd, RemoveBackgroundd

SIZES = {2: (32, 32), 3: (16, 12, 20)}  # non-cubic in 3D
CHANNELS = {2: 3, 3: 1}


def _task(spatial_dims: int, **kwargs) -> LabeledTripletTask:
    """One view per image unless told otherwise (the two-view default has its own tests below)."""
    return LabeledTripletTask(spatial_dims, input_size=SIZES[spatial_dims], **{"num_views": 1, **kwargs})


def _encoder(spatial_dims: int) -> UNetEncoder:
    torch.manual_seed(0)
    return UNetEncoder(spatial_dims, CHANNELS[spatial_dims], base_filters=4, levels=2)


def _image(spatial_dims: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(CHANNELS[spatial_dims], *SIZES[spatial_dims], generator=g)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("label", [3, np.int64(3), torch.tensor(3), torch.tensor([3]), np.array([3], np.uint8)])
def test_transform_passes_the_data_label_through_as_int64(spatial_dims, label):
    task = _task(spatial_dims)
    t = task.transform()
    assert isinstance(t, LabeledViewd)
    t.set_random_state(seed=0)
    x = _image(spatial_dims)
    out = t({"image": MetaTensor(x.clone()), "label": label, "other": "kept"})
    assert type(out["image"]) is torch.Tensor and out["image"].dtype == torch.float32
    assert out["image"].shape == x.shape and not torch.allclose(out["image"], x, atol=1e-3)
    assert out["label"].dtype == torch.int64 and out["label"].ndim == 0 and int(out["label"]) == 3
    assert out["other"] == "kept"
    again = task.transform().set_random_state(seed=0)({"image": x.clone(), "label": 3})
    assert torch.equal(out["image"], again["image"])  # reproducible through set_random_state


def test_transform_uses_label_key_and_needs_a_label():
    t = _task(2).transform(label_key="grade").set_random_state(seed=0)
    assert int(t({"image": _image(2), "grade": 4})["grade"]) == 4
    with pytest.raises(KeyError, match="grade"):
        t({"image": _image(2)})
    for bad in (1.5, -1, "2", True, None, torch.tensor([1, 2]), torch.tensor(1.0)):
        with pytest.raises(ValueError, match="class index"):
            t({"image": _image(2), "grade": bad})
    assert as_class_label(np.array(2)).dtype == torch.int64


def test_optional_preprocessing_and_jigsaw_are_in_the_view():
    task = LabeledTripletTask(2, input_size=32, clahe=True, remove_background=0.05, jigsaw_grid_sizes=[4, 2, 1])
    steps = task.transform().transform.transforms
    assert isinstance(steps[0], RemoveBackgroundd) and isinstance(steps[1], CLAHEd)
    assert isinstance(steps[-1], MultiStageRandomChoiceJigsawd)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_network_gives_unit_128d_embeddings(spatial_dims):
    task = _task(spatial_dims)
    encoder = _encoder(spatial_dims)
    net = task.network(encoder)
    assert isinstance(net, TripletEmbeddingNet) and net.encoder is encoder
    x = torch.stack([_image(spatial_dims, seed=i) for i in range(3)])
    z = net(x)
    assert z.shape == (3, 128)
    assert torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5)
    assert net(x[:, None]).shape == (3, 1, 128)  # (B, V, C, *spatial) views
    with pytest.raises(ValueError, match="spatial dims"):
        net(x[:, None, None])
    with pytest.raises(ValueError, match="spatial dims"):
        net(x[0])


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_loss_falls_on_a_tiny_labelled_batch(spatial_dims):
    task = _task(spatial_dims, gamma=2.0)
    net, loss = task.network(_encoder(spatial_dims)), task.loss()
    assert isinstance(loss, TripletLabelLoss) and isinstance(loss.loss, LabeledTripletLoss)
    assert (loss.loss.margin, loss.loss.gamma) == (1.0, 2.0)
    t = task.transform().set_random_state(seed=0)
    labels = [0, 0, 1, 1, 2, 2]
    items = [t({"image": _image(spatial_dims, seed=i), "label": y}) for i, y in enumerate(labels)]
    x, y = torch.stack([it["image"] for it in items]), torch.stack([it["label"] for it in items])
    assert y.dtype == torch.int64 and y.shape == (6,)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    values = []
    for _ in range(6):
        opt.zero_grad()
        value = loss(net(x), y)
        value.backward()
        opt.step()
        values.append(value.item())
    assert loss.loss.last_num_valid == 3 * 2 * 4  # 3 classes x 2 ordered pairs x 4 negatives
    assert values[-1] < values[0], values
    with pytest.raises(ValueError, match="labels"):
        loss(net(x), None)


def test_loss_runs_in_float32_under_autocast():
    z = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = _task(2).loss()(z, torch.tensor([0, 0, 1, 1]))
    assert value.dtype == torch.float32
    assert torch.allclose(value, LabeledTripletLoss()(z, torch.tensor([0, 0, 1, 1])))


# points on a line; label 1 and 2 are alone (not judged); sample 3's nearest is sample 2 (another label)
HAND = [
    ([0.0, 0.1, 1.0, 1.1, 5.0], [0, 0, 1, 0, 2], (2, 3)),
    ([0.0, 1.0, -1.0], [0, 0, 1], (1, 2)),  # sample 0: a tie (1 vs 1) counts as wrong
    ([0.0, 1.0, 3.0], [7, 7, 7], (3, 3)),  # one label: every nearest neighbour agrees
    ([0.0, 1.0, 3.0], [0, 1, 2], (0, 0)),  # no partners: nothing judged
    ([0.0], [0], (0, 0)),
]


@pytest.mark.parametrize("points, labels, expected", HAND)
def test_correct_by_hand(points, labels, expected):
    z = torch.tensor(points)[:, None] * torch.tensor([[1.0, 0.0]])
    assert nearest_neighbour_correct(z, torch.tensor(labels)) == expected
    assert _task(2).correct(z, torch.tensor(labels)[:, None]) == expected  # (B, 1) labels accepted


def test_correct_needs_labels_and_matching_shapes():
    with pytest.raises(ValueError, match="labels"):
        _task(2).correct(torch.zeros(2, 4), None)
    with pytest.raises(ValueError, match="one label per row|labels"):
        nearest_neighbour_correct(torch.zeros(3, 4), torch.zeros(2))


def test_registry_state_and_defaults_follow_the_reference():
    assert TASKS["triplet"] == "LabeledTripletTask"
    task = create_task("triplet", 2)
    assert isinstance(task, LabeledTripletTask) and task.name == "triplet" and task.has_label
    assert task.input_size == (128, 128) and create_task("triplet", 3).input_size == (64, 64, 64)
    state = json.loads(json.dumps(task.state()))
    assert state["embedding_dim"] == 128 and state["margin"] == 1.0 and state["gamma"] == 1.0
    assert state["num_views"] == 2  # "paired samples, 128 anchor-positive pairs" per batch of 256
    rebuilt = LabeledTripletTask(**{k: v for k, v in state.items() if k != "name"})
    assert rebuilt.state() == state


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"margin": 0}, "margin"),
        ({"gamma": -1.0}, "gamma"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"clahe": 1}, "clahe"),
        ({"remove_background": "yes"}, "remove_background"),
        ({"jigsaw_grid_sizes": [64]}, "jigsaw_grid_sizes"),
        ({"augmentation": {"nope": 1}}, "augmentation"),
        ({"input_size": 0}, "input_size"),
        ({"num_views": 0}, "num_views"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LabeledTripletTask(2, **{"input_size": 32, **kwargs})


def test_pretraining_pipeline_keeps_the_label(tmp_path):
    from PIL import Image

    from medssl3d.transforms import pretraining_transforms

    path = tmp_path / "c2_Patient001_L.png"
    Image.fromarray((np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)).save(path)
    task = LabeledTripletTask(2, input_size=32)
    chain = pretraining_transforms(task.input_size, task.transform(), spatial_dims=2, in_channels=3, resize=True)
    chain.set_random_state(seed=0)
    out = chain({"image": str(path), "label": 2})
    assert out["image"].shape == (2, 3, 32, 32) and out["label"].dtype == torch.int64 and int(out["label"]) == 2


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_two_views_are_independent_draws_with_the_label(spatial_dims):
    task = _task(spatial_dims, num_views=2)
    t = task.transform().set_random_state(seed=1)
    x = _image(spatial_dims)
    out = t({"image": x.clone(), "label": 4})
    assert out["image"].shape == (2, *x.shape) and out["image"].dtype == torch.float32
    assert not torch.allclose(out["image"][0], out["image"][1], atol=1e-3)
    assert int(out["label"]) == 4 and out["label"].dtype == torch.int64
    again = task.transform().set_random_state(seed=1)({"image": x.clone(), "label": 4})
    assert torch.equal(out["image"], again["image"])
    # each view is a draw of the same one-view pipeline: the first equals a one-view transform with that seed
    one = LabeledViewd("image", task.view_transform(), num_views=1)
    one.transform.set_random_state(seed=t._seeds[0])
    assert torch.allclose(one.transform({"image": x.clone()})["image"], out["image"][0])


def test_two_view_network_loss_and_score():
    task = _task(2, num_views=2)
    net, loss = task.network(_encoder(2)).eval(), task.loss()
    x = torch.stack([torch.stack([_image(2, seed=2 * i), _image(2, seed=2 * i + 1)]) for i in range(3)])
    z = net(x)
    assert z.shape == (3, 2, 128)
    # one encoder call over all views gives what each view alone gives (eval mode: no batch statistics)
    assert torch.allclose(z[:, 1], net(x[:, 1]), atol=1e-5)
    labels = torch.tensor([0, 1, 2])  # every class alone in the batch: only the other view is a positive
    value = loss(z, labels)
    flat = LabeledTripletLoss()(z.reshape(6, 128), torch.tensor([0, 0, 1, 1, 2, 2]))
    assert torch.allclose(value, flat)
    assert loss.loss.last_num_valid == 6 * 1 * 4  # 6 anchors x 1 positive (its other view) x 4 negatives
    assert LabeledTripletLoss()(z[:, 0], labels) == 0 and _task(2).loss().loss.last_num_valid == 0
    # the held-out score judges the first view only (the other view would be a trivial neighbour)
    assert task.correct(z, torch.tensor([0, 0, 1])) == nearest_neighbour_correct(z[:, 0], torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match=r"\(B, V, D\) embeddings need \(B,\) labels"):
        loss(z, torch.tensor([0, 1]))
