from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medssl3d.nets import UNetEncoder
from medssl3d.tasks.rpl import (
    RelativePatchLocationd,
    RelativePatchLocationNet,
    RelativePatchLocationTask,
    neighbour_offsets,
)

# small, deliberately non-cubic geometries for the transform: (spatial_dims, patch_size, jitter, gap)
GEOMETRIES = [(3, (3, 2, 4), (1, 2, 0), (2, 0, 1)), (2, (5, 3), (2, 1), (1, 3)), (3, 2, 0, 1), (2, 3, 0, 0)]
# geometries the tiny encoder (levels=2: sides >= 4) can run on
NET_GEOMETRIES = [(3, 8, 1, 2), (2, 16, 2, 4)]


def arange_image(size, channels=2) -> torch.Tensor:
    """Channel 0 holds each voxel's flat index, channel 1 its negative: a patch's first voxel tells its corner."""
    first = torch.arange(math.prod(size), dtype=torch.float32).reshape(1, *size)
    return torch.cat([first, -first][:channels])


def decode_start(patch: torch.Tensor, size) -> np.ndarray:
    return np.array(np.unravel_index(int(patch[0].flatten()[0]), size))


def tiny_encoder(spatial_dims: int) -> UNetEncoder:
    return UNetEncoder(spatial_dims, 1, base_filters=4, levels=2)


def test_offsets_order():
    expected_2d = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
    assert neighbour_offsets(2).tolist() == [list(o) for o in expected_2d]
    off3 = neighbour_offsets(3)
    assert off3.shape == (26, 3) and off3.dtype == np.int64
    assert off3[0].tolist() == [-1, -1, -1] and off3[12].tolist() == [0, 0, -1] and off3[13].tolist() == [0, 0, 1]
    assert off3[25].tolist() == [1, 1, 1]
    assert {tuple(o) for o in off3.tolist()} == set(itertools.product((-1, 0, 1), repeat=3)) - {(0, 0, 0)}
    for dims in (2, 3):
        task = RelativePatchLocationTask(dims)
        np.testing.assert_array_equal(task.offsets, neighbour_offsets(dims))
        np.testing.assert_array_equal(task.transform().offsets, task.offsets)
        assert task.n_classes == 3**dims - 1


@pytest.mark.parametrize("spatial_dims, patch_size, jitter, gap", GEOMETRIES)
def test_every_class_is_centre_plus_offset(spatial_dims, patch_size, jitter, gap):
    task = RelativePatchLocationTask(spatial_dims, patch_size=patch_size, jitter=jitter, gap=gap)
    patch, jit, gp = np.array(task.patch_size), np.array(task.jitter), np.array(task.gap)
    step = patch + jit + gp
    assert task.input_size == tuple(3 * (patch + jit) + 2 * gp)
    image = arange_image(task.input_size)
    xf = task.transform()

    # forced class, no jitter: neighbour corner == centre corner + offsets[k] * step exactly
    zero = np.zeros((2, spatial_dims), dtype=np.int64)
    for k in range(task.n_classes):
        pair = xf.patch_pair(image, k, zero)
        centre, neighbour = decode_start(pair[0], task.input_size), decode_start(pair[1], task.input_size)
        np.testing.assert_array_equal(centre, step)
        np.testing.assert_array_equal(neighbour - centre, task.offsets[k] * step)

    # random draws: every class appears, each patch lies inside its cell, the label names the neighbour
    xf.set_random_state(seed=1)
    seen, shifts, independent = set(), set(), False
    for _ in range(2000):
        out = xf({"image": image})
        x, k = out["image"], int(out["label"])
        assert x.shape == (2, 2, *patch) and x.dtype == torch.float32 and out["label"].dtype == torch.int64
        seen.add(k)
        cells = np.stack([np.ones(spatial_dims, dtype=np.int64), 1 + task.offsets[k]])
        pair_shifts = []
        for p in range(2):
            start = decode_start(x[p], task.input_size)
            offset = start - cells[p] * step
            assert np.all(offset >= 0) and np.all(offset <= jit), f"class {k}: patch {p} at {start} leaves its cell"
            pair_shifts.append(tuple(offset))
            expected = image[(slice(None), *(slice(s, s + q) for s, q in zip(start, patch)))]
            assert torch.equal(x[p], expected)
        shifts.update(pair_shifts)
        independent |= pair_shifts[0] != pair_shifts[1]
        diff = decode_start(x[1], task.input_size) - decode_start(x[0], task.input_size)
        # along every axis where the neighbour differs, the two patches are at least `gap` apart
        moved = task.offsets[k] != 0
        assert np.all(np.abs(diff[moved]) >= (patch + gp)[moved])
        if len(seen) == task.n_classes and (independent or not jit.any()):
            break
    assert seen == set(range(task.n_classes))
    if jit.any():
        assert len(shifts) > 1 and independent  # the jitter is drawn, independently per patch
    else:
        assert shifts == {(0,) * spatial_dims}


def test_metatensor_input_multiple_keys_and_label_key():
    task = RelativePatchLocationTask(2, patch_size=4, jitter=1, gap=1)
    image = arange_image(task.input_size, channels=1)
    xf = task.transform(keys=["a", "b"], label_key="where")
    xf.set_random_state(seed=0)
    out = xf({"a": MetaTensor(image), "b": image.numpy().astype(np.float64)})
    assert type(out["a"]) is torch.Tensor and out["a"].dtype == torch.float32
    assert torch.equal(out["a"], out["b"])  # one draw shared by all keys
    assert "label" not in out and 0 <= int(out["where"]) < 8


def test_set_random_state_reproduces():
    task = RelativePatchLocationTask(3, patch_size=3, jitter=2, gap=1)
    image = torch.rand(1, *task.input_size)

    def run(seed):
        xf = task.transform()
        xf.set_random_state(seed=seed)
        return [xf({"image": image}) for _ in range(5)]

    a, b, c = run(11), run(11), run(12)
    for x, y in zip(a, b):
        assert torch.equal(x["image"], y["image"]) and x["label"] == y["label"]
    assert any(not torch.equal(x["image"], z["image"]) for x, z in zip(a, c))


@pytest.mark.parametrize("spatial_dims, patch_size, jitter, gap", NET_GEOMETRIES)
def test_network_shapes_and_one_encoder_call(spatial_dims, patch_size, jitter, gap):
    torch.manual_seed(0)
    task = RelativePatchLocationTask(spatial_dims, patch_size=patch_size, jitter=jitter, gap=gap, hidden_size=16)
    encoder = tiny_encoder(spatial_dims)
    calls = []
    forward_features = encoder.forward_features

    def counting(x):
        calls.append(tuple(x.shape))
        return forward_features(x)

    encoder.forward_features = counting
    net = task.network(encoder)
    assert isinstance(net, RelativePatchLocationNet) and net.encoder is encoder
    x = torch.randn(3, 2, 1, *task.patch_size)
    net.eval()
    with torch.no_grad():
        out = net(x)
        assert out.shape == (3, task.n_classes)
        assert calls == [(6, 1, *task.patch_size)]
        assert not torch.allclose(net(x.flip(1)), out)  # centre and neighbour are not interchangeable


@pytest.mark.parametrize("spatial_dims, patch_size, jitter, gap", NET_GEOMETRIES)
def test_loss_falls(spatial_dims, patch_size, jitter, gap):
    torch.manual_seed(0)
    task = RelativePatchLocationTask(spatial_dims, patch_size=patch_size, jitter=jitter, gap=gap, hidden_size=64)
    xf = task.transform()
    xf.set_random_state(seed=0)
    samples = [xf({"image": torch.rand(1, *task.input_size)}) for _ in range(4)]
    x = torch.stack([s["image"] for s in samples])
    y = torch.stack([s["label"] for s in samples])
    net, loss_fn = task.network(tiny_encoder(spatial_dims)), task.loss()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(task.n_classes), abs=0.5)
    assert losses[-1] < 0.5 * losses[0], losses
    net.eval()
    with torch.no_grad():
        right, judged = task.correct(net(x), y)
    assert judged == 4 and 0 <= right <= 4


def test_correct_counts():
    task = RelativePatchLocationTask(2)
    logits = torch.zeros(3, 8)
    logits[0, 7] = logits[1, 2] = logits[2, 0] = 1.0
    assert task.correct(logits, torch.tensor([7, 2, 5])) == (2, 3)
    with pytest.raises(ValueError, match="logits"):
        task.correct(logits, torch.tensor([1, 2]))


def test_state_is_plain_and_rebuilds():
    task = RelativePatchLocationTask(3, patch_size=(4, 8, 4), jitter=(1, 0, 2), gap=3, hidden_size=32)
    state = json.loads(json.dumps(task.state()))
    assert state == {
        "name": "rpl", "spatial_dims": 3, "patch_size": [4, 8, 4], "jitter": [1, 0, 2], "gap": [3, 3, 3],
        "hidden_size": 32,
    }
    rebuilt = RelativePatchLocationTask(**{k: v for k, v in state.items() if k != "name"})
    assert rebuilt.input_size == task.input_size == (21, 30, 24)
    assert RelativePatchLocationTask(3).input_size == (65, 65, 65)
    assert RelativePatchLocationTask(2).input_size == (248, 248)


ILL_ARGS = [
    ({"spatial_dims": 1}, "spatial_dims"),
    ({"spatial_dims": 3, "patch_size": 0}, "patch_size"),
    ({"spatial_dims": 2, "patch_size": (4, 4, 4)}, "patch_size"),
    ({"spatial_dims": 2, "jitter": -2}, "jitter"),
    ({"spatial_dims": 3, "gap": -1}, "gap"),
    ({"spatial_dims": 3, "gap": (1, 2)}, "gap"),
    ({"spatial_dims": 3, "hidden_size": 0}, "hidden_size"),
]


@pytest.mark.parametrize("kwargs, pattern", ILL_ARGS)
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        RelativePatchLocationTask(**kwargs)
    if "hidden_size" not in kwargs and kwargs["spatial_dims"] in (2, 3):
        transform_kwargs = {"patch_size": 4, **{k: v for k, v in kwargs.items() if k != "spatial_dims"}}
        with pytest.raises(ValueError, match=pattern):
            RelativePatchLocationd("image", kwargs["spatial_dims"], **transform_kwargs)


def test_wrong_image_and_network_input():
    task = RelativePatchLocationTask(2, patch_size=8, jitter=1, gap=2)
    assert task.input_size == (31, 31)
    with pytest.raises(ValueError, match=r"\(C, 31, 31\).*\(1, 32, 32\).*task\.input_size"):
        task.transform()({"image": torch.zeros(1, 32, 32)})
    with pytest.raises(ValueError, match=r"channel-first.*\(31, 31\)"):
        task.transform()({"image": torch.zeros(31, 31)})
    net = task.network(tiny_encoder(2))
    with pytest.raises(ValueError, match=r"\(B, 2, C, S0, S1\).*\(4, 3, 1, 8, 8\)"):
        net(torch.zeros(4, 3, 1, 8, 8))
    with pytest.raises(ValueError, match="spatial_dims=3"):
        task.network(tiny_encoder(3))
