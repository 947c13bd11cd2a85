from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.utils import set_determinism

from medssl3d.nets import UNetEncoder
from medssl3d.tasks.jigsaw import JigsawNet, JigsawPuzzled, JigsawTask
from medssl3d.tasks.permutations import maximal_hamming_permutations

# small, deliberately non-cubic geometries for the transform: (spatial_dims, patch_size, jitter)
GEOMETRIES = [(3, (4, 2, 3), (1, 2, 0)), (2, (5, 3), (2, 1)), (3, 3, 0), (2, 4, 0)]
# geometries the tiny encoder (levels=2: sides >= 4) can run on: (spatial_dims, patch_size, jitter)
NET_GEOMETRIES = [(3, 8, 1), (2, 16, 2)]


def arange_image(size, channels=2) -> torch.Tensor:
    """Channel 0 holds each voxel's flat index, channel 1 its negative: a patch's first voxel tells its corner."""
    first = torch.arange(math.prod(size), dtype=torch.float32).reshape(1, *size)
    return torch.cat([first, -first][:channels])


def decode_start(patch: torch.Tensor, size) -> np.ndarray:
    return np.array(np.unravel_index(int(patch[0].flatten()[0]), size))


def tiny_encoder(spatial_dims: int) -> UNetEncoder:
    return UNetEncoder(spatial_dims, 1, base_filters=4, levels=2)


@pytest.mark.parametrize("spatial_dims, patch_size, jitter", GEOMETRIES)
def test_label_matches_the_shuffle(spatial_dims, patch_size, jitter):
    task = JigsawTask(spatial_dims, patch_size=patch_size, jitter=jitter)
    patch, jit = task.patch_size, np.array(task.jitter)
    cell = np.array(patch) + jit
    assert task.input_size == tuple(3 * cell)
    image = arange_image(task.input_size)
    xf = task.transform()
    xf.set_random_state(seed=3)
    labels, shifts, independent = set(), set(), False
    for _ in range(6):
        out = xf({"image": image, "other": "kept"})
        x, k = out["image"], out["label"]
        assert out["other"] == "kept"
        assert x.shape == (27 if spatial_dims == 3 else 9, 2, *patch) and x.dtype == torch.float32
        assert k.dtype == torch.int64 and k.ndim == 0
        perm = torch.as_tensor(task.permutations[int(k)])
        labels.add(int(k))
        original = torch.empty_like(x)
        original[perm] = x  # position j holds cell perm[j]: undo the shuffle
        call_shifts = set()
        for i, cell_index in enumerate(itertools.product(range(3), repeat=spatial_dims)):
            start = decode_start(original[i], task.input_size)
            offset = start - np.array(cell_index) * cell
            assert np.all(offset >= 0) and np.all(offset <= jit), f"patch {i} at {start} is outside cell {cell_index}"
            call_shifts.add(tuple(offset))
            expected = image[(slice(None), *(slice(s, s + p) for s, p in zip(start, patch)))]
            assert torch.equal(original[i], expected)
        shifts |= call_shifts
        independent |= len(call_shifts) > 1
    assert len(labels) > 1
    if jit.any():
        assert len(shifts) > 1 and independent  # the jitter is drawn, independently per patch
    else:
        assert shifts == {(0,) * spatial_dims}


def test_puzzle_with_known_shifts():
    xf = JigsawPuzzled("image", 2, maximal_hamming_permutations(9, 5), patch_size=2, jitter=1)
    assert xf.input_size == (9, 9)
    image = arange_image((9, 9), channels=1)
    shifts = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1], [1, 1], [1, 1]])
    x = xf.puzzle(image, 4, shifts)
    perm = xf.permutations[4]
    for j in range(9):
        cell = perm[j]
        start = np.array(divmod(cell, 3)) * 3 + shifts[cell]
        assert torch.equal(x[j, 0], image[0, start[0] : start[0] + 2, start[1] : start[1] + 2])


def test_metatensor_and_numpy_inputs_give_plain_float32():
    task = JigsawTask(2, patch_size=4, jitter=0)
    xf = task.transform(keys=["image", "copy"], label_key="target")
    image = arange_image(task.input_size, channels=1)
    xf.set_random_state(seed=0)
    out = xf({"image": MetaTensor(image), "copy": image.numpy().astype(np.float64)})
    assert type(out["image"]) is torch.Tensor and out["image"].dtype == torch.float32
    assert torch.equal(out["image"], out["copy"])  # one draw shared by all keys
    assert "label" not in out and out["target"].dtype == torch.int64


def test_set_random_state_and_set_determinism_reproduce():
    task = JigsawTask(3, patch_size=3, jitter=2)
    image = torch.rand(1, *task.input_size)

    def run(seed):
        xf = task.transform()
        xf.set_random_state(seed=seed)
        return [xf({"image": image}) for _ in range(3)]

    a, b, c = run(5), run(5), run(6)
    for x, y in zip(a, b):
        assert torch.equal(x["image"], y["image"]) and x["label"] == y["label"]
    assert any(not torch.equal(x["image"], z["image"]) for x, z in zip(a, c))

    def loader_batch():
        set_determinism(seed=0)
        loader = DataLoader(Dataset([{"image": image}] * 4, transform=task.transform()), batch_size=4)
        return next(iter(loader))

    try:
        first, second = loader_batch(), loader_batch()
    finally:
        set_determinism(seed=None)
    assert first["image"].shape == (4, 27, 1, 3, 3, 3)
    assert torch.equal(first["image"], second["image"]) and torch.equal(first["label"], second["label"])


@pytest.mark.parametrize("spatial_dims, patch_size, jitter", NET_GEOMETRIES)
def test_network_shapes_order_and_one_encoder_call(spatial_dims, patch_size, jitter):
    torch.manual_seed(0)
    task = JigsawTask(
        spatial_dims, patch_size=patch_size, jitter=jitter, num_permutations=20, hidden_size=8, fc_size=16
    )
    encoder = tiny_encoder(spatial_dims)
    calls = []
    forward_features = encoder.forward_features

    def counting(x):
        calls.append(tuple(x.shape))
        return forward_features(x)

    encoder.forward_features = counting
    net = task.network(encoder)
    assert isinstance(net, JigsawNet) and net.encoder is encoder
    n = task.n_patches
    x = torch.randn(3, n, 1, *task.patch_size)
    net.eval()
    with torch.no_grad():
        out = net(x)
        assert out.shape == (3, 20)
        assert calls == [(3 * n, 1, *task.patch_size)]
        # the head sees patches in order: shuffling them changes the logits
        assert not torch.allclose(net(x[:, torch.as_tensor(task.permutations[1])]), out)


@pytest.mark.parametrize("spatial_dims, patch_size, jitter", NET_GEOMETRIES)
def test_loss_falls(spatial_dims, patch_size, jitter):
    torch.manual_seed(0)
    task = JigsawTask(spatial_dims, patch_size=patch_size, jitter=jitter)
    xf = task.transform()
    xf.set_random_state(seed=0)
    samples = [xf({"image": torch.rand(1, *task.input_size)}) for _ in range(4)]
    x = torch.stack([s["image"] for s in samples])
    y = torch.stack([s["label"] for s in samples])
    net, loss_fn = task.network(tiny_encoder(spatial_dims)), task.loss()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(100), abs=0.5)
    assert losses[-1] < 0.5 * losses[0], losses
    net.eval()
    with torch.no_grad():
        right, judged = task.correct(net(x), y)
    assert judged == 4 and 0 <= right <= 4


def test_correct_counts():
    task = JigsawTask(2, patch_size=4, jitter=0, num_permutations=3)
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    assert task.correct(logits, torch.tensor([1, 0, 0, 2])) == (2, 4)
    with pytest.raises(ValueError, match="target"):
        task.correct(logits, None)


def test_state_is_plain_and_rebuilds_the_same_task():
    task = JigsawTask(3, patch_size=(4, 6, 4), jitter=(1, 0, 2), num_permutations=30, seed=4, hidden_size=8)
    state = json.loads(json.dumps(task.state()))
    assert state["name"] == "jigsaw" and state["spatial_dims"] == 3
    assert state["patch_size"] == [4, 6, 4] and state["jitter"] == [1, 0, 2] and state["grid"] == [3, 3, 3]
    assert len(state["permutations"]) == 30 and len(state["permutations"][0]) == 27
    rebuilt = JigsawTask(**{k: v for k, v in state.items() if k != "name"})
    np.testing.assert_array_equal(rebuilt.permutations, task.permutations)
    assert rebuilt.input_size == task.input_size == (15, 18, 18)
    assert rebuilt.state() == task.state()
    # a stored set is reused as given, whatever the seed
    reused = JigsawTask(3, patch_size=4, seed=9, permutations=state["permutations"])
    np.testing.assert_array_equal(reused.permutations, task.permutations)
    assert not np.array_equal(JigsawTask(3, num_permutations=30, seed=5).permutations, task.permutations)


ILL_ARGS = [
    ({"spatial_dims": 4}, "spatial_dims"),
    ({"spatial_dims": 3, "patch_size": 0}, "patch_size"),
    ({"spatial_dims": 3, "patch_size": (4, 4)}, "patch_size"),
    ({"spatial_dims": 2, "jitter": -1}, "jitter"),
    ({"spatial_dims": 2, "jitter": 1.5}, "jitter"),
    ({"spatial_dims": 2, "grid": 1}, "grid"),
    ({"spatial_dims": 2, "grid": 0}, "grid"),
    ({"spatial_dims": 2, "num_permutations": 1}, "num_permutations"),
    ({"spatial_dims": 2, "grid": 2, "num_permutations": 30}, r"num_permutations=30 exceeds the 24"),
    ({"spatial_dims": 2, "seed": -1}, "seed"),
    ({"spatial_dims": 2, "hidden_size": 0}, "hidden_size"),
    ({"spatial_dims": 2, "fc_size": -2}, "fc_size"),
    ({"spatial_dims": 2, "permutations": [[0, 1, 2], [2, 1, 0]]}, r"shape \(n_perms, 9\)"),
    ({"spatial_dims": 2, "permutations": [list(range(9)), list(range(9))]}, "same permutation"),
    ({"spatial_dims": 2, "permutations": [list(range(9)), list(range(8, -1, -1))], "num_permutations": 5},
     "num_permutations=5 but 2"),
]


@pytest.mark.parametrize("kwargs, pattern", ILL_ARGS)
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        JigsawTask(**kwargs)


@pytest.mark.parametrize(
    "spatial_dims, shape, pattern",
    [
        (3, (1, 18, 18, 17), r"\(C, 18, 18, 18\).*\(1, 18, 18, 17\).*task\.input_size"),
        (3, (18, 18, 18), r"channel-first.*\(18, 18, 18\)"),
        (2, (1, 20, 18), r"\(C, 18, 18\).*\(1, 20, 18\).*crop/pad"),
    ],
)
def test_wrong_image_shape(spatial_dims, shape, pattern):
    task = JigsawTask(spatial_dims, patch_size=5, jitter=1)
    assert task.input_size == (18,) * spatial_dims
    with pytest.raises(ValueError, match=pattern):
        task.transform()({"image": torch.zeros(shape)})


def test_wrong_network_input_and_encoder():
    task = JigsawTask(2, patch_size=8, jitter=0, num_permutations=4, hidden_size=4, fc_size=4)
    net = task.network(tiny_encoder(2))
    with pytest.raises(ValueError, match=r"\(B, 9, C, S0, S1\).*\(2, 8, 1, 8, 8\)"):
        net(torch.zeros(2, 8, 1, 8, 8))
    with pytest.raises(ValueError, match="batch of patches"):
        net(torch.zeros(9, 1, 8, 8))
    with pytest.raises(ValueError, match="spatial_dims=3"):
        task.network(tiny_encoder(3))
    with pytest.raises(TypeError, match="forward_features"):
        task.network(torch.nn.Linear(2, 2))
