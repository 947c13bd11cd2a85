"""Tests of medssl3d.tasks.cpc: the overlapping grid, the prediction layout and the InfoNCE loss."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
import torch.nn.functional as F
from monai.data import MetaTensor

from medssl3d.losses import CPCLoss
from medssl3d.nets import UNetEncoder
from medssl3d.nets import global_pool
from medssl3d.tasks.cpc import CPCGridd, CPCNet, CPCTask, grid_patches

# small settings per spatial_dims: patch sides are multiples of 4 for the tiny encoder (levels=2)
SMALL = {3: {"patch_size": 8, "grid_size": 4}, 2: {"patch_size": 16, "grid_size": 5}}
SMALL_INPUT = {3: (20, 20, 20), 2: (48, 48)}  # (G - 1) * patch / 2 + patch


def _counting(encoder: UNetEncoder) -> list:
    """Record the input shape of every ``encoder.forward_features`` call."""
    calls, original = [], encoder.forward_features

    def forward_features(x):
        calls.append(tuple(x.shape))
        return original(x)

    encoder.forward_features = forward_features
    return calls


def _batch(task: CPCTask, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = task.transform()
    return torch.stack([t({"image": torch.rand(1, *task.input_size, generator=g)})["image"] for _ in range(n)])


def _tiny(spatial_dims: int, **kwargs) -> tuple[CPCTask, CPCNet, UNetEncoder]:
    task = CPCTask(spatial_dims, **SMALL[spatial_dims], code_size=16, context_size=16, **kwargs)
    encoder = UNetEncoder(spatial_dims, 1, base_filters=4, levels=2)
    return task, task.network(encoder), encoder


# (spatial_dims, patch_size, grid_size): deliberately non-cubic
GRID_CASES = [
    (3, (4, 6, 2), (3, 2, 4)),
    (3, 8, 4),
    (2, (6, 4), (2, 5)),
    (2, 16, 5),
]


@pytest.mark.parametrize("spatial_dims,patch_size,grid_size", GRID_CASES)
def test_grid_patches_are_the_documented_image_regions(spatial_dims, patch_size, grid_size):
    task = CPCTask(spatial_dims, patch_size=patch_size, grid_size=grid_size)
    p, g, s = task.patch_size, task.grid_size, task.stride
    assert s == tuple(v // 2 for v in p)
    assert task.input_size == tuple((gi - 1) * si + pi for gi, si, pi in zip(g, s, p))
    image = torch.arange(2 * math.prod(task.input_size), dtype=torch.float32).reshape(2, *task.input_size)
    out = task.transform()({"image": MetaTensor(image)})["image"]
    assert type(out) is torch.Tensor and out.dtype == torch.float32
    assert out.shape == (task.num_patches, 2, *p) and task.num_patches == math.prod(g)
    for n, pos in enumerate(itertools.product(*[range(gi) for gi in g])):  # row-major order
        region = image[(slice(None), *[slice(i * si, i * si + pi) for i, si, pi in zip(pos, s, p)])]
        assert torch.equal(out[n], region), (n, pos)


def test_defaults_follow_taleb():
    t3, t2 = CPCTask(3), CPCTask(2)
    assert (t3.patch_size, t3.grid_size, t3.num_patches, t3.input_size) == ((16,) * 3, (4,) * 3, 64, (40,) * 3)
    assert (t2.patch_size, t2.grid_size, t2.num_patches, t2.input_size) == ((32,) * 2, (5,) * 2, 25, (96,) * 2)
    assert t3.num_steps == 3 and t2.num_steps == 3 and CPCTask(2, grid_size=3).num_steps == 2
    assert t3.code_size == 128 and CPCTask.has_label is False


def test_transform_is_deterministic():
    task = CPCTask(2, **SMALL[2])
    image = torch.rand(1, *task.input_size)
    a = task.transform()({"image": image})["image"]
    b = task.transform()({"image": image.numpy()})["image"]
    assert torch.equal(a, b) and torch.equal(grid_patches(image, task.patch_size, task.stride), a)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_network_layout_against_loops(spatial_dims):
    """Row n of step k's predictions is the context at (b, r, rest) and its target the latent at (b, r + k, rest)."""
    torch.manual_seed(0)
    task, net, encoder = _tiny(spatial_dims)
    net.eval()
    calls = _counting(encoder)
    batch = 2
    x = _batch(task, batch)
    with torch.no_grad():
        out = net(x)
    assert calls == [(batch * task.num_patches, 1, *task.patch_size)]  # one encoder call for every patch
    g = task.grid_size
    assert len(out["predictions"]) == len(out["targets"]) == task.num_steps
    with torch.no_grad():
        z = net.latent(global_pool(encoder.forward_features(x.flatten(0, 1)))).view(batch, *g, -1)
        for k in range(1, task.num_steps + 1):
            pred, tgt = out["predictions"][k - 1], out["targets"][k - 1]
            n_k = batch * (g[0] - k) * math.prod(g[1:])
            assert pred.shape == tgt.shape == (n_k, 16)
            rows = itertools.product(range(batch), range(g[0] - k), *[range(gi) for gi in g[1:]])
            for n, (b, r, *rest) in enumerate(rows):
                column = z[(b, slice(None), *rest)]  # (G_0, D): the column this position belongs to
                context, _ = net.context(column[None, : r + 1])  # GRU over rows 0..r only
                assert torch.allclose(tgt[n], z[(b, r + k, *rest)], atol=1e-5)
                assert torch.allclose(pred[n], net.predictors[k - 1](context[0, -1]), atol=1e-5)


def _reference_info_nce(predictions, targets):
    """Slow InfoNCE: explicit loops over steps, predictions and candidates."""
    losses, right, judged = [], 0, 0
    for pred, tgt in zip(predictions, targets):
        terms = []
        for i in range(pred.shape[0]):
            scores = [sum(float(a) * float(b) for a, b in zip(pred[i], tgt[j])) for j in range(tgt.shape[0])]
            log_sum = math.log(sum(math.exp(v) for v in scores))
            terms.append(log_sum - scores[i])
            right += int(max(range(len(scores)), key=scores.__getitem__) == i)
            judged += 1
        losses.append(sum(terms) / len(terms))
    return sum(losses) / len(losses), right, judged


def test_info_nce_against_slow_reference():
    g = torch.Generator().manual_seed(4)
    sizes = [6, 4, 3]  # N_k shrinks with k
    predictions = tuple(torch.randn(n, 5, generator=g) for n in sizes)
    targets = tuple(p + 0.7 * torch.randn(p.shape, generator=g) for p in predictions)  # some right, some wrong
    output = {"predictions": predictions, "targets": targets}
    expected, right, judged = _reference_info_nce(predictions, targets)
    assert CPCLoss()(output, None).item() == pytest.approx(expected, rel=1e-5)
    assert CPCTask(2, **SMALL[2]).correct(output, None) == (right, judged) and judged == sum(sizes)
    assert 0 < right < judged  # the case is not trivial


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_loss_at_init_is_log_of_candidates(spatial_dims):
    """Measured: within 0.2 % of mean_k log(N_k) for these seeds (latents of different patches barely differ
    at initialisation); 5 % still tells apart a wrong candidate set, e.g. pooling all steps (+~0.5 nats) or
    one image only (-log B)."""
    batch = 3
    for seed in range(3):
        torch.manual_seed(seed)
        task, net, _ = _tiny(spatial_dims)
        out = net(_batch(task, batch, seed))
        g = task.grid_size
        n_k = [batch * (g[0] - k) * math.prod(g[1:]) for k in range(1, task.num_steps + 1)]
        assert [p.shape[0] for p in out["predictions"]] == n_k
        expected = sum(math.log(n) for n in n_k) / len(n_k)
        assert task.loss()(out, None).item() == pytest.approx(expected, rel=0.05)


# (spatial_dims, task settings) for the training test: 3D patches of 4^3 keep it fast (the encoder sees 1^3)
FIT_CASES = [(3, {"patch_size": 4, "grid_size": 4}), (2, {"patch_size": 16, "grid_size": 5})]


@pytest.mark.parametrize("spatial_dims,settings", FIT_CASES)
def test_loss_falls(spatial_dims, settings):
    """Measured over seeds 0-3: after 30 steps the loss is 0.4-0.65 of its start; 0.8 leaves room."""
    torch.manual_seed(0)
    task = CPCTask(spatial_dims, **settings, code_size=16, context_size=16)
    encoder = UNetEncoder(spatial_dims, 1, base_filters=4, levels=2)
    net = task.network(encoder)
    calls = _counting(encoder)
    # smooth random images (up-sampled noise): neighbouring patches are related, as in real scans
    coarse = torch.rand(2, 1, *[s // 4 for s in task.input_size], generator=torch.Generator().manual_seed(1))
    images = F.interpolate(coarse, size=task.input_size, mode="bilinear" if spatial_dims == 2 else "trilinear")
    t = task.transform()
    x = torch.stack([t({"image": img})["image"] for img in images])
    loss_fn = task.loss()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        out = net(x)
        loss = loss_fn(out, None)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert len(calls) == 30
    assert max(losses[-3:]) < 0.8 * losses[0], losses
    right, judged = task.correct(out, None)
    assert judged == sum(p.shape[0] for p in out["predictions"]) and right > 0


def test_state_is_json():
    task = CPCTask(3, patch_size=(8, 8, 4), grid_size=(4, 3, 3), code_size=32, num_steps=2)
    state = json.loads(json.dumps(task.state()))
    assert state == {
        "name": "cpc",
        "spatial_dims": 3,
        "input_size": [20, 16, 8],
        "patch_size": [8, 8, 4],
        "grid_size": [4, 3, 3],
        "code_size": 32,
        "context_size": 256,
        "num_steps": 2,
    }


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"spatial_dims": 5}, "spatial_dims"),
        ({"spatial_dims": 3, "patch_size": 7}, r"patch_size.*7"),
        ({"spatial_dims": 2, "patch_size": (16, 0)}, "patch_size"),
        ({"spatial_dims": 3, "grid_size": 1}, "grid_size.*1"),
        ({"spatial_dims": 3, "grid_size": 4, "num_steps": 4}, "num_steps.*4"),
        ({"spatial_dims": 3, "num_steps": 0}, "num_steps.*0"),
        ({"spatial_dims": 2, "code_size": 0}, "code_size.*0"),
        ({"spatial_dims": 2, "context_size": -3}, "context_size.*-3"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CPCTask(**kwargs)


def test_bad_inputs():
    task, net, _ = _tiny(2)
    with pytest.raises(ValueError, match=r"\(1, 40, 48\).*\(48, 48\)"):
        task.transform()({"image": torch.zeros(1, 40, 48)})
    with pytest.raises(ValueError, match=r"\(2, 24, 1, 16, 16\)"):
        net(torch.zeros(2, 24, 1, 16, 16))
    with pytest.raises(ValueError, match="spatial_dims"):
        task.network(UNetEncoder(3, 1, base_filters=2, levels=1))
    with pytest.raises(ValueError, match="num_steps"):
        CPCNet(UNetEncoder(2, 1, base_filters=2, levels=1), 2, (3, 3), num_steps=3)
    assert isinstance(task.transform(), CPCGridd)
