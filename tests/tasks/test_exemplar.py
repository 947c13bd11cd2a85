"""Tests of medssl3d.tasks.exemplar: two independent views, negatives from other images, the triplet loss."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medssl3d.losses import ExemplarTripletLoss
from medssl3d.nets import UNetEncoder
from medssl3d.nets import global_pool
from medssl3d.tasks.exemplar import ExemplarNet, ExemplarTask, ExemplarViewsd

SIZES = {2: (32, 32), 3: (16, 16, 16)}
NO_AUGMENTATION = {
    "flip_prob": 0.0,
    "affine_prob": 0.0,
    "intensity_prob": 0.0,
    "noise_prob": 0.0,
}


def _counting(encoder: UNetEncoder) -> list:
    """Record the input shape of every ``encoder.forward_features`` call."""
    calls, original = [], encoder.forward_features

    def forward_features(x):
        calls.append(tuple(x.shape))
        return original(x)

    encoder.forward_features = forward_features
    return calls


def _image(spatial_dims: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, *SIZES[spatial_dims], generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_views_differ_from_each_other_and_from_input(spatial_dims):
    task = ExemplarTask(spatial_dims, input_size=SIZES[spatial_dims], embedding_size=8)
    t = task.transform().set_random_state(seed=0)
    x = _image(spatial_dims)
    for _ in range(3):
        out = t({"image": MetaTensor(x.clone()), "other": "kept"})
        views = out["image"]
        assert type(views) is torch.Tensor and views.dtype == torch.float32
        assert views.shape == (2, *x.shape)
        assert out["other"] == "kept" and "label" not in out
        assert not torch.allclose(views[0], views[1], atol=1e-3)
        assert not torch.allclose(views[0], x, atol=1e-3) and not torch.allclose(views[1], x, atol=1e-3)
        # small intensity changes only (scale 1 +- 0.1, shift +- 0.1, noise): the mean moves by < 0.2
        assert torch.all((views.mean(dim=tuple(range(1, views.ndim))) - x.mean()).abs() < 0.2)


def test_switched_off_augmentations_return_the_input():
    x = _image(3)
    views = ExemplarViewsd("image", spatial_dims=3, **NO_AUGMENTATION)({"image": x.numpy()})["image"]
    assert torch.allclose(views[0], x) and torch.allclose(views[1], x)


def test_views_are_independent_draws():
    """Flips only: each view is some flip of the input, and the two views' flips are drawn separately."""
    x = _image(2)
    flips = [x, x.flip(1), x.flip(2), x.flip(1).flip(2)]
    t = ExemplarViewsd("image", spatial_dims=2, **{**NO_AUGMENTATION, "flip_prob": 0.5}).set_random_state(seed=3)
    pairs = []
    for _ in range(40):
        views = t({"image": x})["image"]
        ids = [next(i for i, f in enumerate(flips) if torch.equal(v, f)) for v in views]
        pairs.append(tuple(ids))
    assert sum(a != b for a, b in pairs) >= 10  # independent: P(same flips) = 1/4
    assert {a for a, _ in pairs} == {0, 1, 2, 3} and {b for _, b in pairs} == {0, 1, 2, 3}


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_set_random_state_reproduces(spatial_dims):
    task = ExemplarTask(spatial_dims, input_size=SIZES[spatial_dims], embedding_size=8)
    x = _image(spatial_dims, seed=1)

    def views(seed):
        t = task.transform().set_random_state(seed=seed)
        assert all(a.R is t.R for a in t.augmentations)  # every draw comes from the transform's own stream
        return torch.stack([t({"image": x})["image"] for _ in range(2)])

    assert torch.equal(views(7), views(7))
    assert not torch.allclose(views(7), views(8))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_negative_is_positive_view_of_another_sample(spatial_dims):
    torch.manual_seed(0)
    task = ExemplarTask(spatial_dims, input_size=SIZES[spatial_dims], embedding_size=16)
    encoder = UNetEncoder(spatial_dims, 1, base_filters=4, levels=2)
    net = task.network(encoder).eval()
    assert isinstance(net, ExemplarNet) and net.encoder is encoder
    calls = _counting(encoder)
    batch = 3
    scale = torch.arange(1.0, batch + 1).view(batch, *[1] * (spatial_dims + 2))
    x = torch.randn(batch, 2, 1, *SIZES[spatial_dims]) * scale + scale  # distinct images -> distinct embeddings
    with torch.no_grad():
        out = net(x)
    assert calls == [(2 * batch, 1, *SIZES[spatial_dims])]  # one encoder call for all views
    idx = out["negative_index"]
    assert idx.dtype == torch.int64 and idx.shape == (batch,)
    assert torch.all(idx != torch.arange(batch)) and sorted(idx.tolist()) == list(range(batch))
    for name in ("anchor", "positive", "negative"):
        assert out[name].shape == (batch, 16)
    assert torch.equal(out["negative"], out["positive"][idx])
    with torch.no_grad():  # eval mode: embedding each view on its own gives the same vectors
        single = net.embedding(global_pool(encoder.forward_features(x[:, 1])))
        anchor = net.embedding(global_pool(encoder.forward_features(x[:, 0])))
    assert torch.allclose(out["positive"], single, atol=1e-5)
    assert torch.allclose(out["anchor"], anchor, atol=1e-5)
    for i in range(batch):
        assert torch.allclose(out["negative"][i], single[idx[i]], atol=1e-5)
    # each negative is nearest to the other sample's positive view, not to its own sample's
    assert torch.equal(torch.cdist(out["negative"], single).argmin(1), idx)
    assert torch.cdist(out["negative"], single).diagonal().min() > 1e-4


def test_batch_of_one_raises():
    net = ExemplarTask(2, input_size=16, embedding_size=4).network(UNetEncoder(2, 1, base_filters=2, levels=2))
    with pytest.raises(ValueError, match="batch_size"):
        net(torch.zeros(1, 2, 1, 16, 16))
    with pytest.raises(ValueError, match=r"\(2, 1, 16, 16\)"):
        net(torch.zeros(2, 1, 16, 16))


# (anchor, positive, negative, margin, expected loss, expected right) -- 1-D embeddings, hand-checkable
TRIPLET_CASES = [
    ([[0.0], [0.0]], [[1.0], [2.0]], [[3.0], [1.0]], 1.0, (max(1 - 3 + 1, 0) + max(2 - 1 + 1, 0)) / 2, 1),
    ([[0.0], [1.0]], [[1.0], [1.0]], [[1.5], [4.0]], 1.0, (0.5 + 0.0) / 2, 2),
    ([[0.0], [1.0]], [[1.0], [1.0]], [[1.5], [4.0]], 2.0, (1.5 + 0.0) / 2, 2),
]


@pytest.mark.parametrize("a,p,n,margin,expected,right", TRIPLET_CASES)
def test_triplet_loss_and_correct_by_hand(a, p, n, margin, expected, right):
    task = ExemplarTask(2, margin=margin)
    out = {"anchor": torch.tensor(a), "positive": torch.tensor(p), "negative": torch.tensor(n)}
    assert task.loss()(out, None).item() == pytest.approx(expected, abs=1e-4)
    assert task.correct(out, None) == (right, 2)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_loss_falls(spatial_dims):
    torch.manual_seed(0)
    task = ExemplarTask(spatial_dims, input_size=SIZES[spatial_dims], embedding_size=32)
    t = task.transform().set_random_state(seed=0)
    # four different images (blobs at different places) and their two views: a fixed batch
    grids = torch.meshgrid(*[torch.linspace(-1, 1, s) for s in SIZES[spatial_dims]], indexing="ij")
    centres = torch.rand(4, spatial_dims, generator=torch.Generator().manual_seed(1)) - 0.5
    images = [torch.exp(-sum((g - c) ** 2 for g, c in zip(grids, centre)) / 0.1)[None] for centre in centres]
    x = torch.stack([t({"image": img})["image"] for img in images])
    net = task.network(UNetEncoder(spatial_dims, 1, base_filters=4, levels=2))
    loss_fn = task.loss()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        loss = loss_fn(net(x), None)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-3:]) < 0.3 * losses[0], losses


def test_state_is_json_and_defaults():
    task = ExemplarTask(3, augmentation={"noise_std": 0.02})
    assert task.input_size == (64, 64, 64) and ExemplarTask(2).input_size == (128, 128)
    assert task.embedding_size == 1024 and task.margin == 1.0
    state = json.loads(json.dumps(task.state()))
    assert state == {
        "name": "exemplar",
        "spatial_dims": 3,
        "input_size": [64, 64, 64],
        "embedding_size": 1024,
        "margin": 1.0,
        "augmentation": {"noise_std": 0.02},
    }
    assert task.network(UNetEncoder(3, 1, base_filters=2, levels=1)).embedding.out_features == 1024
    assert ExemplarTask.has_label is False
    assert isinstance(task.loss(), ExemplarTripletLoss)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"spatial_dims": 1}, "spatial_dims"),
        ({"spatial_dims": 3, "input_size": (16, 16)}, "input_size"),
        ({"spatial_dims": 3, "embedding_size": 0}, "embedding_size.*0"),
        ({"spatial_dims": 3, "margin": -1.0}, "margin.*-1.0"),
        ({"spatial_dims": 2, "augmentation": {"flip_prob": 1.5}}, "flip_prob.*1.5"),
        ({"spatial_dims": 2, "augmentation": {"noise_std": -0.1}}, "noise_std.*-0.1"),
        ({"spatial_dims": 2, "augmentation": {"bogus": 1}}, "bogus"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExemplarTask(**kwargs)


def test_bad_image_shape():
    with pytest.raises(ValueError, match=r"\(16, 16\)"):
        ExemplarViewsd("image", spatial_dims=2)({"image": np.zeros((16, 16), np.float32)})
