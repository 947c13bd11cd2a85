"""Pretext array transforms against their dictionary forms, and their labels against what they did."""

from __future__ import annotations

import itertools
import math
import pickle

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medssl3d.transforms import (
    CPCGrid,
    CPCGridd,
    ExemplarViews,
    ExemplarViewsd,
    JigsawPuzzle,
    JigsawPuzzled,
    RandRotate90Pretext,
    RandRotate90Pretextd,
    RelativePatchLocation,
    RelativePatchLocationd,
    maximal_hamming_permutations,
    unrotate,
)

NO_AUGMENTATION = {"flip_prob": 0.0, "affine_prob": 0.0, "intensity_prob": 0.0, "noise_prob": 0.0}


def arange_image(size, channels=1) -> torch.Tensor:
    """Channel 0 holds each voxel's flat index, so a patch's first voxel tells where it was cut."""
    first = torch.arange(math.prod(size), dtype=torch.float32).reshape(1, *size)
    return torch.cat([first, -first][:channels])


def start_of(patch: torch.Tensor, size) -> np.ndarray:
    return np.array(np.unravel_index(int(patch[0].flatten()[0]), size))


def region(image: torch.Tensor, start, size) -> torch.Tensor:
    return image[(slice(None), *(slice(int(s), int(s) + p) for s, p in zip(start, size)))]


def same_seed_runs(array, dictionary, images, seed=11):
    """Outputs of the array form and of the dictionary form (key "image") for the same seed, call by call."""
    array.set_random_state(seed=seed)
    dictionary.set_random_state(seed=seed)
    return [(array(img), dictionary({"image": img})) for img in images]


# ---------------------------------------------------------------- jigsaw


@pytest.mark.parametrize("spatial_dims, patch_size, jitter", [(2, (3, 2), (2, 1)), (3, 2, 1)])
def test_jigsaw_array_matches_dict_and_its_label_is_the_shuffle(spatial_dims, patch_size, jitter):
    perms = maximal_hamming_permutations(3**spatial_dims, 12, seed=1)
    array = JigsawPuzzle(spatial_dims, perms, patch_size, jitter=jitter)
    dictionary = JigsawPuzzled("image", spatial_dims, perms, patch_size, jitter=jitter, label_key="k")
    assert dictionary.input_size == array.input_size
    np.testing.assert_array_equal(dictionary.permutations, array.permutations)
    image = arange_image(array.input_size)
    cell = np.array(array.cell_size)
    labels = set()
    for (x, k), d in same_seed_runs(array, dictionary, [image] * 6):
        assert torch.equal(x, d["image"]) and torch.equal(k, d["k"])
        assert type(x) is torch.Tensor and x.dtype == torch.float32 and k.dtype == torch.int64 and k.ndim == 0
        assert x.shape == (3**spatial_dims, 1, *array.patch_size)
        labels.add(int(k))
        for j, c in enumerate(perms[int(k)]):  # position j holds the patch of cell perms[k][j]
            start = start_of(x[j], array.input_size)
            offset = start - np.array(np.unravel_index(int(c), (3,) * spatial_dims)) * cell
            assert np.all(offset >= 0) and np.all(offset <= np.array(array.jitter)), (j, c, start)
            assert torch.equal(x[j], region(image, start, array.patch_size))
    assert len(labels) > 1


def test_jigsaw_randomize_false_reuses_the_draw_and_numpy_metatensor_inputs_work():
    array = JigsawPuzzle(2, maximal_hamming_permutations(9, 20), 2, jitter=2).set_random_state(seed=0)
    image = torch.rand(1, *array.input_size)
    first, label = array(image)
    again, label_again = array(MetaTensor(image), randomize=False)
    assert torch.equal(first, again) and label == label_again and type(again) is torch.Tensor
    from_numpy, _ = array(image.numpy().astype(np.float64), randomize=False)
    assert torch.equal(first, from_numpy) and from_numpy.dtype == torch.float32
    draws = [array(image) for _ in range(6)]
    assert any(not torch.equal(first, x) for x, _ in draws)  # a fresh draw per call by default


# ---------------------------------------------------------------- relative patch location


@pytest.mark.parametrize("spatial_dims, patch_size, jitter, gap", [(2, 3, 1, 2), (3, (2, 3, 2), (1, 0, 2), 1)])
def test_rpl_array_matches_dict_and_the_neighbour_sits_at_the_labelled_offset(spatial_dims, patch_size, jitter, gap):
    array = RelativePatchLocation(spatial_dims, patch_size, jitter=jitter, gap=gap)
    dictionary = RelativePatchLocationd(["image"], spatial_dims, patch_size, jitter=jitter, gap=gap)
    np.testing.assert_array_equal(dictionary.offsets, array.offsets)
    image = arange_image(array.input_size, channels=2)
    step = np.array(array.step)
    labels = set()
    for (pair, k), d in same_seed_runs(array, dictionary, [image] * 12):
        assert torch.equal(pair, d["image"]) and torch.equal(k, d["label"]) and k.dtype == torch.int64
        assert pair.shape == (2, 2, *array.patch_size)
        labels.add(int(k))
        centre, neighbour = start_of(pair[0], array.input_size), start_of(pair[1], array.input_size)
        # the jitter is smaller than a cell step, so a start's cell is start // step
        np.testing.assert_array_equal(centre // step, np.ones(spatial_dims))
        np.testing.assert_array_equal(neighbour // step - centre // step, array.offsets[int(k)])
        assert torch.equal(pair[1], region(image, neighbour, array.patch_size))
    assert len(labels) > 2


# ---------------------------------------------------------------- rotation


@pytest.mark.parametrize("spatial_dims, size", [(2, (6, 6)), (3, (4, 4, 4))])
def test_rotation_array_matches_dict_and_unrotate_gives_the_input_back(spatial_dims, size):
    array = RandRotate90Pretext(spatial_dims)
    dictionary = RandRotate90Pretextd("image", spatial_dims=spatial_dims)
    image = arange_image(size, channels=2)
    labels = set()
    for (x, k), d in same_seed_runs(array, dictionary, [MetaTensor(image)] * 12):
        assert torch.equal(x, d["image"]) and torch.equal(k, d["label"])
        assert type(x) is torch.Tensor and k.dtype == torch.int64 and k.ndim == 0
        assert torch.equal(unrotate(x, k, spatial_dims), image)
        labels.add(int(k))
        if int(k):
            assert not torch.equal(x, image)  # the label says it turned, and it did
    assert len(labels) > 2 and labels <= set(range(array.num_classes))


# ---------------------------------------------------------------- CPC


def test_cpc_array_returns_only_the_patches_and_matches_dict():
    grid = CPCGrid(patch_size=(4, 6), grid_size=(3, 2))
    assert grid.input_size == (8, 9)
    image = arange_image(grid.input_size, channels=2)
    patches = grid(image.numpy())
    assert isinstance(patches, torch.Tensor) and patches.shape == (6, 2, 4, 6) and patches.dtype == torch.float32
    assert torch.equal(patches, CPCGridd("image", (4, 6), (3, 2))({"image": MetaTensor(image)})["image"])
    for number, cell in enumerate(itertools.product(range(3), range(2))):  # row-major, stride patch / 2
        start = np.array(cell) * np.array(grid.stride)
        assert torch.equal(patches[number], region(image, start, grid.patch_size))


# ---------------------------------------------------------------- exemplar


def test_exemplar_array_returns_two_views_and_matches_dict():
    array = ExemplarViews(spatial_dims=2, noise_std=0.1)
    dictionary = ExemplarViewsd("image", spatial_dims=2, noise_std=0.1)
    images = [torch.rand(1, 12, 12) for _ in range(3)]
    for views, d in same_seed_runs(array, dictionary, images):
        assert isinstance(views, torch.Tensor) and views.shape == (2, 1, 12, 12) and views.dtype == torch.float32
        assert torch.equal(views, d["image"])
        assert not torch.equal(views[0], views[1])  # independent draws per view
    plain = ExemplarViews(spatial_dims=3, **NO_AUGMENTATION)(np.arange(27, dtype=np.float32).reshape(1, 3, 3, 3))
    assert torch.equal(plain, torch.arange(27.0).reshape(1, 1, 3, 3, 3).expand(2, 1, 3, 3, 3))


# ---------------------------------------------------------------- shared behaviour


def random_pairs():
    perms = maximal_hamming_permutations(9, 4)
    return [
        (JigsawPuzzled("image", 2, perms, 2), (1, 6, 6)),
        (RelativePatchLocationd("image", 2, 2), (1, 6, 6)),
        (RandRotate90Pretextd("image", spatial_dims=2), (1, 6, 6)),
        (ExemplarViewsd("image", spatial_dims=2), (1, 6, 6)),
    ]


@pytest.mark.parametrize("dictionary, shape", random_pairs())
def test_dictionary_hands_its_stream_to_the_array_form(dictionary, shape):
    dictionary.set_random_state(seed=4)
    assert dictionary.array_transform.R is dictionary.R
    image = torch.rand(*shape)
    first = [dictionary({"image": image})["image"] for _ in range(3)]
    copy = pickle.loads(pickle.dumps(dictionary.set_random_state(seed=4)))  # as a DataLoader worker gets it
    assert copy.array_transform.R is copy.R
    assert all(torch.equal(a, copy({"image": image})["image"]) for a in first)


def test_one_draw_is_shared_by_every_key_of_the_dictionary_form():
    xf = RelativePatchLocationd(["a", "b"], 2, 2, jitter=1).set_random_state(seed=2)
    image = torch.rand(1, *xf.input_size)
    for _ in range(4):
        out = xf({"a": image, "b": image.clone()})
        assert torch.equal(out["a"], out["b"])


def test_array_forms_refuse_bad_images_with_a_message_that_says_what_to_do():
    with pytest.raises(ValueError, match=r"JigsawPuzzle: the image must be channel-first \(C, 6, 6\).*\(6, 6\)"):
        JigsawPuzzle(2, maximal_hamming_permutations(9, 4), 2)(torch.zeros(6, 6))
    with pytest.raises(ValueError, match=r"RelativePatchLocation: the image .*\(1, 7, 6\).*task\.input_size"):
        RelativePatchLocation(2, 2)(torch.zeros(1, 7, 6))
    with pytest.raises(ValueError, match=r"image spatial shape \(4, 4, 5\) must have equal sides"):
        RandRotate90Pretext(3)(torch.zeros(1, 4, 4, 5))
    with pytest.raises(ValueError, match=r"image must be \(C, \*spatial\) with 2 spatial dims.*\(4, 4\)"):
        RandRotate90Pretext(2)(torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r"the image has shape \(1, 8, 8\) but the CPC grid needs"):
        CPCGrid((4, 4), (3, 2))(torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match=r"image must be \(C, \*spatial\) with 3 spatial dims"):
        ExemplarViews(3)(torch.zeros(4, 4, 4))
    with pytest.raises(ValueError, match="spatial_dims"):
        RandRotate90Pretext(1)
    with pytest.raises(ValueError, match="permutations"):
        JigsawPuzzle(2, [[0, 1, 2]], 2)
    with pytest.raises(ValueError, match="noise_std"):
        ExemplarViews(2, noise_std=-1.0)


def test_task_modules_re_export_the_moved_transforms():
    import medssl3d.tasks as tasks
    import medssl3d.transforms.pretext as pretext
    from medssl3d.tasks import cpc, exemplar, jigsaw, joint_embedding, permutations, rotation, rpl, triplet

    pairs = [
        (jigsaw.JigsawPuzzled, pretext.JigsawPuzzled),
        (rpl.RelativePatchLocationd, pretext.RelativePatchLocationd),
        (rpl.neighbour_offsets, pretext.neighbour_offsets),
        (cpc.CPCGridd, pretext.CPCGridd),
        (cpc.grid_patches, pretext.grid_patches),
        (rotation.RandRotate90Pretextd, pretext.RandRotate90Pretextd),
        (rotation.ROTATIONS_3D, pretext.ROTATIONS_3D),
        (rotation.unrotate, pretext.unrotate),
        (exemplar.ExemplarViewsd, pretext.ExemplarViewsd),
        (joint_embedding.TwoViewsd, pretext.TwoViewsd),
        (triplet.LabeledViewd, pretext.LabeledViewd),
        (triplet.as_class_label, pretext.as_class_label),
        (permutations.check_permutations, pretext.check_permutations),
        (tasks.CPCGridd, pretext.CPCGridd),
        (tasks.ROTATIONS_2D, pretext.ROTATIONS_2D),
    ]
    assert all(a is b for a, b in pairs)
