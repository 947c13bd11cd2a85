"""VICReg / SiCoVa: hand-computed terms, Gram vs direct paths against float64, logging, bad input."""

from __future__ import annotations

import math
import re

import pytest
import torch

from medssl3d.losses import VICRegLoss, covariance_loss, cross_correlation_loss, invariance_loss, variance_loss

# Z: centred rows (-1, -1), (0, 1), (1, 0): both variances 1, covariance 0.5.
Z = torch.tensor([[0.0, 0.0], [1.0, 2.0], [2.0, 1.0]])
# Z2: Z with its columns swapped: centred (-1, -1), (1, 0), (0, 1).
Z2 = Z.flip(1)

# (function, args, kwargs, expected), each worked out by hand in the comment
TERM_CASES = [
    (variance_loss, (Z,), {"gamma": 2.0, "eps": 0.0}, 1.0),  # std 1 -> relu(2 - 1)
    (variance_loss, (0.5 * Z,), {"eps": 0.0}, 0.5),  # std 0.5 -> relu(1 - 0.5)
    (variance_loss, (Z,), {}, 0.0),  # std sqrt(1 + 1e-4) > 1
    (invariance_loss, (Z, Z2), {}, 4 / 6),  # squared differences 0 + 0 + 1 + 1 + 1 + 1 over 6
    (covariance_loss, (Z,), {}, 0.25),  # 2 off-diagonal entries 0.5 ** 2, / D = 2
    (covariance_loss, (0.5 * Z,), {}, 0.015625),  # covariance 0.125
    (cross_correlation_loss, (Z, Z), {"eps": 0.0}, 0.5),  # C = [[1, .5], [.5, 1]]: diagonal 0, off 2 * 0.25
    (cross_correlation_loss, (Z, Z2), {"eps": 0.0}, 2.5),  # C = [[.5, 1], [1, .5]]: 2 * 0.25 + 2 * 1
    (cross_correlation_loss, (Z, Z2), {"eps": 0.0, "off_diagonal_weight": 0.5}, 1.5),  # 0.5 + 0.5 * 2
]


@pytest.mark.parametrize("method", ["direct", "gram"])
@pytest.mark.parametrize("function, args, kwargs, expected", TERM_CASES)
def test_terms_by_hand(function, args, kwargs, expected, method):
    if function in (covariance_loss, cross_correlation_loss):
        kwargs = {**kwargs, "method": method}
    value = function(*args, **kwargs)
    assert value.shape == () and value.dtype == torch.float32
    assert math.isclose(float(value), expected, rel_tol=1e-6, abs_tol=1e-7)


def test_total_by_hand_and_last_terms():
    # invariance 2/3, variance 0 (std > 1), covariance 0.25 + 0.25, cross ~2.5 (eps 1e-5)
    loss = VICRegLoss(cross_weight=2.0)
    value = loss(Z, Z2)
    assert math.isclose(float(value), 25 * 2 / 3 + 0.5 + 2 * 2.5, rel_tol=1e-4)
    assert set(loss.last_terms) == {"invariance", "variance", "covariance", "cross_correlation", "loss"}
    assert math.isclose(loss.last_terms["covariance"], 0.5, rel_tol=1e-6)
    assert math.isclose(loss.last_terms["loss"], float(value), rel_tol=1e-6)
    assert all(isinstance(v, float) for v in loss.last_terms.values())
    plain = VICRegLoss()
    assert math.isclose(float(plain(Z, Z2)), 25 * 2 / 3 + 0.5, rel_tol=1e-6)
    assert "cross_correlation" not in plain.last_terms  # not computed when its weight is 0


def test_sicova_settings():
    loss = VICRegLoss.sicova()
    assert math.isclose(loss.cross_weight, 5e-3 * 5e-3**2) and loss.eps == 1e-3
    assert (loss.sim_weight, loss.var_weight, loss.cov_weight) == (25.0, 25.0, 1.0)
    assert VICRegLoss.sicova(cross_weight=1.0).cross_weight == 1.0


def _direct64_covariance(z: torch.Tensor) -> torch.Tensor:
    zc = z - z.mean(0)
    cov = zc.T @ zc / (z.shape[0] - 1)
    return (cov.pow(2).sum() - cov.diagonal().pow(2).sum()) / z.shape[1]


def _direct64_cross(z1: torch.Tensor, z2: torch.Tensor, weight: float) -> torch.Tensor:
    n1 = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0) + 1e-5)
    n2 = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0) + 1e-5)
    c = n1.T @ n2 / (z1.shape[0] - 1)
    diag = c.diagonal()
    return (1 - diag).pow(2).sum() + weight * (c.pow(2).sum() - diag.pow(2).sum())


def _embeddings(seed: int, batch: int = 16, dim: int = 512) -> torch.Tensor:
    """float32, offset mean 100 and one dominant dimension (std 1000): a float32 Gram subtraction would cancel."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, dim, generator=g) + 100.0
    z[:, 0] *= 1000
    return z


@pytest.mark.parametrize("method", ["auto", "gram", "direct"])
def test_covariance_paths_match_float64_value_and_gradient(method):
    z = _embeddings(0).requires_grad_(True)
    z64 = z.detach().double().requires_grad_(True)
    value = covariance_loss(z, method=method)
    expected = _direct64_covariance(z64)
    (grad,) = torch.autograd.grad(value, z)
    (grad64,) = torch.autograd.grad(expected, z64)
    assert value.dtype == torch.float32
    assert math.isclose(value.item(), expected.item(), rel_tol=1e-5)
    assert torch.allclose(grad.double(), grad64, rtol=1e-4, atol=1e-4 * float(grad64.abs().max()))


@pytest.mark.parametrize("method", ["auto", "gram", "direct"])
def test_cross_correlation_paths_match_float64_value_and_gradient(method):
    z1 = _embeddings(1).requires_grad_(True)
    z2 = (z1.detach() + 0.3 * _embeddings(2)).requires_grad_(True)  # correlated views
    z1_64, z2_64 = (z.detach().double().requires_grad_(True) for z in (z1, z2))
    value = cross_correlation_loss(z1, z2, off_diagonal_weight=0.3, method=method)
    expected = _direct64_cross(z1_64, z2_64, 0.3)
    grads = torch.autograd.grad(value, (z1, z2))
    grads64 = torch.autograd.grad(expected, (z1_64, z2_64))
    assert math.isclose(value.item(), expected.item(), rel_tol=1e-5)
    for got, want in zip(grads, grads64):
        assert torch.allclose(got.double(), want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


def test_loss_goes_down():
    g = torch.Generator().manual_seed(4)
    base = torch.randn(8, 4, generator=g)
    projector = torch.nn.Linear(4, 32)
    optimiser = torch.optim.SGD(projector.parameters(), lr=0.01)
    loss = VICRegLoss.sicova()
    values = []
    for _ in range(10):
        optimiser.zero_grad()
        value = loss(projector(base + 0.1 * torch.randn(8, 4, generator=g)), projector(base))
        value.backward()
        optimiser.step()
        values.append(value.item())
    assert values[-1] < values[0]


ILL_SHAPES = [((4, 8), (4, 9)), ((1, 8), (1, 8)), ((8,), (8,))]


@pytest.mark.parametrize("shape1, shape2", ILL_SHAPES)
def test_bad_shapes_name_the_shapes(shape1, shape2):
    with pytest.raises(ValueError, match=re.escape(str(tuple(shape1)))):
        VICRegLoss(cross_weight=1.0)(torch.randn(shape1), torch.randn(shape2))
    with pytest.raises(ValueError, match=re.escape(str(tuple(shape1)))):
        cross_correlation_loss(torch.randn(shape1), torch.randn(shape2))


ILL_ARGS = [
    ({"sim_weight": -1.0}, "sim_weight"),
    ({"cross_weight": float("nan")}, "cross_weight"),
    ({"cov_weight": True}, "cov_weight"),
    ({"gamma": 0.0}, "gamma"),
    ({"eps": -1e-4}, "eps"),
    ({"method": "grams"}, "grams"),
]


@pytest.mark.parametrize("kwargs, name", ILL_ARGS)
def test_bad_arguments_name_the_value(kwargs, name):
    with pytest.raises(ValueError, match=name):
        VICRegLoss(**kwargs)
