"""Tests of medssl3d.tasks.joint_embedding: SimCLR and SiCoVa views, networks, losses and retrieval accuracy."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.transforms import Compose

from medssl3d.losses import NTXentLoss, VICRegLoss
from medssl3d.nets import UNetEncoder
from medssl3d.tasks import TASKS, create_task
from medssl3d.nets import global_pool
from medssl3d.tasks.joint_embedding import (
    JointEmbeddingNet,
    SiCoVaTask,
    SimCLRTask,
    TwoViewsd,
    ViewPairLoss,
    view_retrieval_correct,
)
from medssl3d.transforms import CLAHEd, MultiStageRandomChoiceJigsawd, RemoveBackgroundd

SIZES = {2: (32, 32), 3: (16, 12, 20)}  # non-cubic in 3D
TASK_CASES = [(SimCLRTask, {}), (SiCoVaTask, {"expander_dim": 32})]


def _task(cls, spatial_dims, **kwargs):
    return cls(spatial_dims, input_size=SIZES[spatial_dims], **dict(TASK_CASES)[cls], **kwargs)


def _encoder(spatial_dims: int, in_channels: int = 3) -> UNetEncoder:
    torch.manual_seed(0)
    return UNetEncoder(spatial_dims, in_channels, base_filters=4, levels=2)


def _counting(encoder: UNetEncoder) -> list:
    """Record the input shape of every ``encoder.forward_features`` call."""
    calls, original = [], encoder.forward_features

    def forward_features(x):
        calls.append(tuple(x.shape))
        return original(x)

    encoder.forward_features = forward_features
    return calls


def _image(spatial_dims: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(channels, *SIZES[spatial_dims], generator=torch.Generator().manual_seed(seed))


def _views(task, spatial_dims: int, batch: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    t = task.transform().set_random_state(seed=seed)
    return torch.stack([t({"image": _image(spatial_dims, channels, seed + i)})["image"] for i in range(batch)])


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("cls", [SimCLRTask, SiCoVaTask])
def test_views_differ_and_are_plain_tensors_without_label(cls, spatial_dims):
    task = _task(cls, spatial_dims)
    t = task.transform()
    assert isinstance(t, TwoViewsd)
    t.set_random_state(seed=0)
    x = _image(spatial_dims)
    out = t({"image": MetaTensor(x.clone()), "other": "kept"})
    views = out["image"]
    assert type(views) is torch.Tensor and views.dtype == torch.float32
    assert views.shape == (2, *x.shape)
    assert out["other"] == "kept" and "label" not in out
    assert not torch.allclose(views[0], views[1], atol=1e-3)
    again = task.transform().set_random_state(seed=0)({"image": x.clone()})["image"]
    assert torch.equal(views, again)  # reproducible through set_random_state


def test_optional_preprocessing_and_jigsaw_are_in_each_view():
    task = SimCLRTask(2, input_size=32, clahe=True, remove_background=0.05, jigsaw_grid_sizes=[4, 2, 1])
    steps = task.view_transform().transforms
    assert isinstance(steps[0], RemoveBackgroundd) and isinstance(steps[1], CLAHEd)
    assert isinstance(steps[-1], MultiStageRandomChoiceJigsawd)
    plain = SimCLRTask(2, input_size=32).view_transform().transforms
    assert not any(isinstance(s, (RemoveBackgroundd, CLAHEd, MultiStageRandomChoiceJigsawd)) for s in plain)
    assert isinstance(task.view_transform(), Compose)
    views = task.transform().set_random_state(seed=1)({"image": torch.rand(3, 32, 32)})["image"]
    assert views.shape == (2, 3, 32, 32) and torch.isfinite(views).all()


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("cls, embedding", [(SimCLRTask, 128), (SiCoVaTask, 32)])
def test_network_shapes_and_one_encoder_call(cls, embedding, spatial_dims):
    task = _task(cls, spatial_dims)
    encoder = _encoder(spatial_dims, 1)
    net = task.network(encoder)
    assert isinstance(net, JointEmbeddingNet) and net.encoder is encoder
    calls = _counting(encoder)
    x = torch.rand(3, 2, 1, *SIZES[spatial_dims])
    out = net(x)
    assert calls == [(6, 1, *SIZES[spatial_dims])]  # both views of the batch in one call
    assert set(out) == {"z1", "z2", "h1", "h2"}
    assert out["z1"].shape == out["z2"].shape == (3, embedding)
    assert out["h1"].shape == out["h2"].shape == (3, encoder.out_channels)
    # view 1 / view 2 are x[:, 0] / x[:, 1] (eval mode: batch norm does not mix samples)
    net.eval()
    out = net(x)
    with torch.no_grad():
        h1 = global_pool(encoder.forward_features(x[:, 0]))
        h2 = global_pool(encoder.forward_features(x[:, 1]))
    assert torch.allclose(out["h1"], h1, atol=1e-5) and torch.allclose(out["h2"], h2, atol=1e-5)
    assert torch.allclose(out["z2"], net.head(h2), atol=1e-5)


def test_network_rejects_a_single_view():
    net = SimCLRTask(2, input_size=32).network(_encoder(2))
    with pytest.raises(ValueError, match="two views"):
        net(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="two views"):
        net(torch.rand(2, 3, 3, 32, 32))


def test_losses_are_the_configured_pure_losses():
    simclr = SimCLRTask(2, temperature=0.2).loss()
    assert isinstance(simclr, ViewPairLoss) and isinstance(simclr.loss, NTXentLoss)
    assert simclr.loss.temperature == 0.2
    sicova = SiCoVaTask(2, cov_weight=2.0).loss()
    assert isinstance(sicova.loss, VICRegLoss) and sicova.loss.cov_weight == 2.0
    reference = VICRegLoss.sicova()
    assert sicova.loss.cross_weight == pytest.approx(reference.cross_weight) and sicova.loss.eps == reference.eps
    z1, z2 = torch.randn(4, 8), torch.randn(4, 8)
    out = {"z1": z1, "z2": z2, "h1": z2, "h2": z1}
    assert torch.equal(simclr(out, None), NTXentLoss(0.2)(z1, z2))


@pytest.mark.parametrize("cls", [SimCLRTask, SiCoVaTask])
def test_loss_falls_on_a_fixed_batch(cls):
    task = _task(cls, 2)
    net = task.network(_encoder(2))
    loss_fn = task.loss()
    x = _views(task, 2, batch=6)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = loss_fn(net(x), None)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]


def _slow_correct(a: torch.Tensor, b: torch.Tensor) -> int:
    z = F.normalize(torch.cat([a, b]), dim=1)
    n, right = a.shape[0], 0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        sims = {j: float(z[i] @ z[j]) for j in range(2 * n) if j != i}
        right += all(sims[pos] > s for j, s in sims.items() if j != pos)
    return right


E = torch.eye(3)
CORRECT_CASES = [
    (E[:2], E[:2] + 0.1, (4, 4)),  # every view closest to its partner
    (E[:2], E[[1, 0]], (0, 4)),  # views swapped: every anchor finds the other image
    (E, E[[0, 2, 1]], (2, 6)),  # sample 0 right in both directions; samples 1 and 2 swapped
    (E[:2], E[:2] * 0 + 1, (0, 4)),  # ties with a negative count as wrong
    (E[:1], E[:1], (0, 0)),  # one sample: no negatives, nothing judged
]


@pytest.mark.parametrize("a, b, expected", CORRECT_CASES)
def test_retrieval_correct_by_hand(a, b, expected):
    assert view_retrieval_correct(a, b) == expected


def test_retrieval_correct_matches_slow_reference_and_is_symmetric():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    b = a + 0.8 * b
    right, judged = view_retrieval_correct(a, b)
    assert judged == 14 and right == _slow_correct(a, b)
    assert view_retrieval_correct(b, a) == (right, judged)
    with pytest.raises(ValueError, match="same shape"):
        view_retrieval_correct(a, b[:3])


def test_correct_uses_embedding_for_simclr_and_representation_for_sicova():
    good, bad = (E, E + 0.1), (E, E[[1, 2, 0]])
    out = {"z1": good[0], "z2": good[1], "h1": bad[0], "h2": bad[1]}
    assert SimCLRTask(2).correct(out, None) == (6, 6)
    assert SiCoVaTask(2, expander_dim=8).correct(out, None) == (0, 6)
    assert SiCoVaTask(2, expander_dim=8, accuracy_on="embedding").correct(out, None) == (6, 6)


@pytest.mark.parametrize("name, cls", [("simclr", SimCLRTask), ("sicova", SiCoVaTask)])
def test_registry_and_state_are_json(name, cls):
    assert name in TASKS
    task = create_task(name, 3, clahe=True, jigsaw_grid_sizes=(2, 1), augmentation={"scale": (0.5, 1.0)})
    assert isinstance(task, cls) and task.name == name and not task.has_label
    assert task.input_size == (64, 64, 64) and create_task(name, 2).input_size == (128, 128)
    state = json.loads(json.dumps(task.state()))
    assert state["name"] == name and state["spatial_dims"] == 3 and state["input_size"] == [64, 64, 64]
    assert state["jigsaw_grid_sizes"] == [2, 1] and state["augmentation"] == {"scale": [0.5, 1.0]}
    assert state["accuracy_on"] == ("embedding" if name == "simclr" else "representation")


def test_sicova_defaults_follow_the_reference():
    task = SiCoVaTask(2)
    assert task.expander_dim == 8192 and task.expander_layers == 3
    assert task.weights == {
        "sim_weight": 25.0,
        "var_weight": 25.0,
        "cov_weight": 1.0,
        "cross_weight": pytest.approx(1.25e-7),
    }
    assert SimCLRTask(2).temperature == 0.5 and SimCLRTask(2).projection_dim == 128


ILL_CASES = [
    (SimCLRTask, {"spatial_dims": 4}, "spatial_dims"),
    (SimCLRTask, {"input_size": (32, 0)}, "input_size"),
    (SimCLRTask, {"temperature": 0}, "temperature"),
    (SimCLRTask, {"projection_dim": 0}, "projection_dim"),
    (SimCLRTask, {"clahe": "yes"}, "clahe"),
    (SimCLRTask, {"remove_background": "0.1"}, "remove_background"),
    (SimCLRTask, {"jigsaw_grid_sizes": [64], "input_size": 32}, "jigsaw_grid_sizes"),
    (SimCLRTask, {"jigsaw_grid_sizes": [2, 0]}, "jigsaw_grid_sizes"),
    (SimCLRTask, {"augmentation": {"sharpness": 1.0}}, "augmentation"),
    (SimCLRTask, {"augmentation": {"flip_prob": 2.0}}, "flip_prob"),
    (SimCLRTask, {"accuracy_on": "logits"}, "logits"),
    (SiCoVaTask, {"expander_dim": 0}, "expander_dim"),
    (SiCoVaTask, {"expander_layers": 0}, "expander_layers"),
    (SiCoVaTask, {"var_weight": -1.0}, "var_weight"),
]


@pytest.mark.parametrize("cls, kwargs, match", ILL_CASES)
def test_bad_arguments_raise(cls, kwargs, match):
    kwargs = {"spatial_dims": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)
