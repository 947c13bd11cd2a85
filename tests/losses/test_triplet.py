"""LabeledTripletLoss (batch-all mining) against brute-force loops over triplets."""

from __future__ import annotations

import itertools
import re
import warnings

import pytest
import torch
import torch.nn.functional as F

from medssl3d.losses import ExemplarTripletLoss, LabeledTripletLoss, valid_triplet_mask


def brute_force(embeddings: torch.Tensor, labels: torch.Tensor, margin: float, gamma: float, normalize: bool = True):
    """(number of valid triplets, their losses) from three nested loops."""
    x = F.normalize(embeddings, dim=1) if normalize else embeddings
    labels = labels.tolist()
    losses = []
    for a, p, n in itertools.product(range(len(labels)), repeat=3):
        if a != p and labels[a] == labels[p] and labels[a] != labels[n]:
            d_ap, d_an = torch.dist(x[a], x[p]), torch.dist(x[a], x[n])
            losses.append(torch.relu(d_ap**gamma - d_an**gamma + margin))
    return len(losses), losses


@pytest.mark.parametrize("seed", range(5))
def test_valid_triplet_count_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (9,), generator=g)
    count, _ = brute_force(torch.randn(9, 2, dtype=torch.float64), labels, 1.0, 1.0)
    assert int(valid_triplet_mask(labels).sum()) == count
    loss = LabeledTripletLoss()
    loss(torch.randn(9, 4, generator=g), labels)
    assert loss.last_num_valid == count


@pytest.mark.parametrize(
    "margin, gamma, normalize", [(1.0, 1.0, True), (0.2, 1.0, True), (0.5, 2.0, True), (0.3, 0.5, True), (1.0, 1.5, False)]
)
def test_loss_and_active_fraction_match_brute_force(margin, gamma, normalize):
    g = torch.Generator().manual_seed(int(10 * margin + gamma))
    embeddings = torch.randn(10, 6, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (10,), generator=g)
    count, losses = brute_force(embeddings, labels, margin, gamma, normalize)
    assert count > 0
    loss = LabeledTripletLoss(margin=margin, gamma=gamma, normalize=normalize)
    value = loss(embeddings, labels)
    assert torch.allclose(value, torch.stack(losses).mean(), atol=1e-9)
    assert loss.last_fraction_active == pytest.approx(sum(float(v) > 0 for v in losses) / count)


def test_defaults_follow_the_reference():
    loss = LabeledTripletLoss()
    assert (loss.margin, loss.gamma, loss.normalize) == (1.0, 1.0, True)


def test_docstring_count():
    loss = LabeledTripletLoss()
    loss(torch.randn(8, 16), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    assert loss.last_num_valid == 4 * 2 * 6


@pytest.mark.parametrize("labels", [torch.zeros(6, dtype=torch.long), torch.arange(6)], ids=["one_label", "all_different"])
def test_no_valid_triplet_gives_zero_without_warnings(labels):
    embeddings = torch.randn(6, 4, requires_grad=True)
    loss = LabeledTripletLoss()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = loss(embeddings, labels)
        value.backward()
    assert value.item() == 0.0 and not torch.isnan(value)
    assert loss.last_num_valid == 0 and loss.last_fraction_active == 0.0
    assert torch.equal(embeddings.grad, torch.zeros_like(embeddings))


def test_gradient_is_finite_for_duplicate_embeddings():
    embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], requires_grad=True)
    for gamma in (1.0, 0.5):
        value = LabeledTripletLoss(gamma=gamma)(embeddings, torch.tensor([0, 0, 1, 1]))
        (grad,) = torch.autograd.grad(value, embeddings)
        assert torch.isfinite(grad).all()


def test_column_labels_are_accepted():
    embeddings, labels = torch.randn(6, 3), torch.tensor([0, 0, 1, 1, 2, 2])
    loss = LabeledTripletLoss()
    assert torch.equal(loss(embeddings, labels), loss(embeddings, labels[:, None]))


@pytest.mark.parametrize("embedding_shape, label_shape", [((6, 3), (5,)), ((6,), (6,)), ((6, 3), (6, 2)), ((2, 6, 3), (2, 6))])
def test_bad_shapes_name_the_shapes(embedding_shape, label_shape):
    with pytest.raises(ValueError, match=re.escape(str(embedding_shape))):
        LabeledTripletLoss()(torch.randn(embedding_shape), torch.zeros(label_shape, dtype=torch.long))


@pytest.mark.parametrize(
    "kwargs, name", [({"margin": 0}, "margin"), ({"gamma": -1.0}, "gamma"), ({"margin": True}, "margin"), ({"eps": -1.0}, "eps")]
)
def test_bad_arguments_name_the_value(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LabeledTripletLoss(**kwargs)


def test_exemplar_triplet_loss_is_unchanged():
    anchor = torch.zeros(2, 3)
    out = {"anchor": anchor, "positive": anchor, "negative": anchor + 10}
    assert ExemplarTripletLoss()(out).item() == 0.0
