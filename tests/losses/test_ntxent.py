"""NT-Xent: a slow per-anchor reference, symmetry, temperature, gradients, bad input, cross-process gathering."""

from __future__ import annotations

import math
import os
import re
import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import medssl3d.losses.ntxent as ntxent
from medssl3d.losses import NTXentLoss, gather_with_grad


def reference_ntxent(z1: torch.Tensor, z2: torch.Tensor, temperature: float, anchors: range | None = None) -> torch.Tensor:
    """Python loop over anchors: -log(exp(s_ap / t) / sum_{k != a} exp(s_ak / t)), mean over the anchors."""
    z = torch.cat([z1, z2])
    n = z1.shape[0]
    anchors = range(2 * n) if anchors is None else anchors
    losses = []
    for a in anchors:
        p = (a + n) % (2 * n)
        sims = [torch.dot(z[a], z[k]) / (z[a].norm() * z[k].norm()) / temperature for k in range(2 * n) if k != a]
        positive = torch.dot(z[a], z[p]) / (z[a].norm() * z[p].norm()) / temperature
        losses.append(-(positive - torch.logsumexp(torch.stack(sims), dim=0)))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("batch", [1, 2, 5])
def test_matches_reference_loop(batch, temperature):
    g = torch.Generator().manual_seed(batch)
    z1, z2 = torch.randn(batch, 7, generator=g, dtype=torch.float64), torch.randn(batch, 7, generator=g, dtype=torch.float64)
    value = NTXentLoss(temperature)(z1, z2)
    assert value.shape == ()
    assert torch.allclose(value, reference_ntxent(z1, z2, temperature), atol=1e-12)


def test_symmetric_in_views():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 16, generator=g), torch.randn(6, 16, generator=g)
    loss = NTXentLoss(0.3)
    assert torch.allclose(loss(z1, z2), loss(z2, z1), atol=1e-6)


def test_identical_embeddings_give_log_of_candidates_at_any_temperature():
    z = torch.ones(4, 3)  # every cosine is 1: uniform softmax over 2N - 1 = 7 candidates
    for temperature in (0.1, 0.5, 2.0):
        assert math.isclose(float(NTXentLoss(temperature)(z, z)), math.log(7), rel_tol=1e-6)


def test_lower_temperature_sharpens_when_positives_are_closest():
    g = torch.Generator().manual_seed(1)
    z1 = torch.randn(8, 32, generator=g)
    z2 = z1 + 0.05 * torch.randn(8, 32, generator=g)  # each positive is the nearest candidate
    values = [float(NTXentLoss(t)(z1, z2)) for t in (1.0, 0.5, 0.1)]
    assert values[0] > values[1] > values[2]
    assert values[0] < math.log(15)  # better than chance


def test_gradient_matches_reference():
    g = torch.Generator().manual_seed(2)
    z1 = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    grads = torch.autograd.grad(NTXentLoss(0.2)(z1, z2), (z1, z2))
    expected = torch.autograd.grad(reference_ntxent(z1, z2, 0.2), (z1, z2))
    for got, want in zip(grads, expected):
        assert torch.allclose(got, want, atol=1e-12)


ILL_SHAPES = [((4, 8), (4, 9)), ((4, 8), (3, 8)), ((8,), (8,)), ((2, 4, 8), (2, 4, 8))]


@pytest.mark.parametrize("shape1, shape2", ILL_SHAPES)
def test_bad_shapes_name_the_shapes(shape1, shape2):
    with pytest.raises(ValueError, match=re.escape(str(tuple(shape1)))):
        NTXentLoss()(torch.randn(shape1), torch.randn(shape2))


@pytest.mark.parametrize("temperature", [0, -0.5, True, "0.5", float("nan")])
def test_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(temperature)


def test_gather_is_a_no_op_without_process_group():
    z = torch.randn(3, 4)
    assert gather_with_grad(z) is z
    assert torch.allclose(NTXentLoss(gather_distributed=True)(z, z.flip(0)), NTXentLoss()(z, z.flip(0)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gather_worker(
    rank: int, world: int, port: int, z1: torch.Tensor, z2: torch.Tensor, out: str, fallback: bool
) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    if fallback:  # the small autograd Function used where torch.distributed.nn is missing
        ntxent._differentiable_all_gather = None
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        n = z1.shape[0] // world
        local1 = z1[rank * n : (rank + 1) * n].clone().requires_grad_(True)
        local2 = z2[rank * n : (rank + 1) * n].clone().requires_grad_(True)
        loss = NTXentLoss(0.5, gather_distributed=True)(local1, local2)
        loss.backward()
        torch.save((loss.detach(), local1.grad, local2.grad), os.path.join(out, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("fallback", [False, True])
def test_gathered_loss_and_gradients_match_the_full_batch(tmp_path, fallback):
    """Two gloo processes, 3 samples each: rank r's loss is the full-batch loss over its 6 anchors (11
    candidates each), and its local gradients are those of the sum of both ranks' losses."""
    world, n = 2, 3
    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(world * n, 4, generator=g, dtype=torch.float64), torch.randn(world * n, 4, generator=g, dtype=torch.float64)
    # fork: the children reuse the imported torch (spawn re-imports it, ~10 s on a busy machine)
    args = (world, _free_port(), z1, z2, str(tmp_path), fallback)
    context = mp.start_processes(_gather_worker, args=args, nprocs=world, join=False, start_method="fork")
    deadline = time.monotonic() + 60
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.terminate()
            pytest.fail("the gloo workers did not finish in 60 s")
    out = [torch.load(tmp_path / f"{rank}.pt") for rank in range(world)]
    r1, r2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    total = 0
    for rank in range(world):
        anchors = [*range(rank * n, (rank + 1) * n), *range(world * n + rank * n, world * n + (rank + 1) * n)]
        expected = reference_ntxent(r1, r2, 0.5, anchors)
        assert torch.allclose(out[rank][0], expected.detach(), atol=1e-10)
        total = total + expected
    g1, g2 = torch.autograd.grad(total, (r1, r2))
    for rank in range(world):
        rows = slice(rank * n, (rank + 1) * n)
        assert torch.allclose(out[rank][1], g1[rows], atol=1e-10)
        assert torch.allclose(out[rank][2], g2[rows], atol=1e-10)
