from __future__ import annotations

import itertools

import numpy as np
import pytest

from medssl3d.tasks.permutations import check_permutations, maximal_hamming_permutations, min_hamming_distance

# (n_items, promised minimum Hamming distance of the 100 permutations for seed 0, as documented)
PROMISES = [(9, 6), (27, 24)]


def _is_permutation_rows(perms: np.ndarray, n_items: int) -> bool:
    return bool(np.all(np.sort(perms, axis=1) == np.arange(n_items)))


@pytest.mark.parametrize("n_items, promised", PROMISES)
def test_default_set_is_distinct_and_far_apart(n_items, promised):
    perms = maximal_hamming_permutations(n_items, 100, seed=0)
    assert perms.shape == (100, n_items) and perms.dtype == np.int64
    assert _is_permutation_rows(perms, n_items)
    assert len(np.unique(perms, axis=0)) == 100
    assert min_hamming_distance(perms) >= promised
    # without selection (a pool of exactly 100 seeded random permutations) the distance is smaller
    unselected = maximal_hamming_permutations(n_items, 100, seed=0, n_candidates=100)
    assert _is_permutation_rows(unselected, n_items)
    baseline = min_hamming_distance(unselected)
    assert promised > baseline
    if n_items == 9:  # 9 items: random permutations often differ in 2-3 places only
        assert promised >= baseline + 3


def test_same_seed_same_set_other_seed_other_set():
    a = maximal_hamming_permutations(9, 100, seed=0)
    a[0, 0] = 99  # the cached result must not be changed through a returned array
    b = maximal_hamming_permutations(9, 100, seed=0)
    assert _is_permutation_rows(b, 9)
    np.testing.assert_array_equal(b, maximal_hamming_permutations(9, 100, seed=0))
    c = maximal_hamming_permutations(9, 100, seed=1)
    assert not np.array_equal(b, c)
    d27 = maximal_hamming_permutations(27, 100, seed=0)
    np.testing.assert_array_equal(d27, maximal_hamming_permutations(27, 100, seed=0))
    assert not np.array_equal(d27, maximal_hamming_permutations(27, 100, seed=2))


def test_greedy_max_min_against_brute_force():
    """Each chosen permutation maximises the minimum distance to the ones chosen before it (all 5! candidates)."""
    perms = maximal_hamming_permutations(5, 20, seed=3)
    every = np.array(list(itertools.permutations(range(5))))
    previous_best = 5
    for k in range(1, len(perms)):
        chosen = perms[:k]
        dist_all = (every[:, None, :] != chosen[None, :, :]).sum(-1).min(1)  # (120,) min distance to chosen
        best = dist_all.max()
        got = (perms[k][None, :] != chosen).sum(-1).min()
        assert got == best, f"step {k}: chose a permutation at min distance {got}, best possible {best}"
        assert best <= previous_best  # greedy max-min distances never increase
        previous_best = best


def test_all_permutations_of_few_items():
    perms = maximal_hamming_permutations(4, 24, seed=0)
    assert {tuple(p) for p in perms.tolist()} == set(itertools.permutations(range(4)))
    assert min_hamming_distance(perms) == 2


@pytest.mark.parametrize(
    "perms, expected",
    [
        ([[0, 1, 2, 3], [1, 2, 3, 0], [2, 3, 0, 1]], 4),
        ([[0, 1, 2, 3], [1, 2, 0, 3]], 3),
        ([[0, 1, 2, 3], [1, 0, 3, 2], [0, 1, 3, 2]], 2),
    ],
)
def test_min_hamming_distance_by_hand(perms, expected):
    assert min_hamming_distance(perms) == expected


def test_min_hamming_distance_needs_two_rows():
    with pytest.raises(ValueError, match="at least 2 rows"):
        min_hamming_distance([[0, 1, 2]])


BAD_ARGS = [
    ({"n_items": 1}, "n_items"),
    ({"n_items": True}, "n_items"),
    ({"n_items": 9, "n_perms": 0}, "n_perms"),
    ({"n_items": 4, "n_perms": 25}, r"n_perms=25 is more than the 24"),
    ({"n_items": 9, "seed": -1}, "seed"),
    ({"n_items": 9, "seed": 1.5}, "seed"),
    ({"n_items": 9, "n_perms": 100, "n_candidates": 50}, "n_candidates=50"),
]


@pytest.mark.parametrize("kwargs, pattern", BAD_ARGS)
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        maximal_hamming_permutations(**kwargs)


def test_check_permutations_accepts_valid_sets():
    out = check_permutations([[2, 0, 1], [0, 1, 2]], 3)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[2, 0, 1], [0, 1, 2]])
    np.testing.assert_array_equal(check_permutations(np.array([[1.0, 0.0], [0.0, 1.0]]), 2), [[1, 0], [0, 1]])
    stored = maximal_hamming_permutations(9, 10, seed=0)
    np.testing.assert_array_equal(check_permutations(stored.tolist(), 9), stored)
    assert len(check_permutations(list(itertools.permutations(range(3))), 3)) == 6


ILL_SETS = [
    ([0, 1, 2], 3, r"shape \(n_perms, 3\).*\(3,\)"),
    ([[0, 1, 2], [2, 1, 0]], 4, r"shape \(n_perms, 4\)"),
    ([[0, 1, 2]], 3, "at least 2"),
    ([[0, 1, 2], [0, 0, 2]], 3, r"row 1 \[0, 0, 2\] is not a permutation of range\(3\)"),
    ([[0, 1, 3], [0, 2, 1]], 3, r"row 0 \[0, 1, 3\]"),
    ([[0, 1, 2], [2, 1, 0], [0, 1, 2]], 3, r"rows \[0, 2\] are the same permutation \[0, 1, 2\]"),
    ([[0.5, 1, 2], [2, 1, 0]], 3, "integers"),
    ([["a", "b"], ["b", "a"]], 2, "integers"),
    ([[0, 1], [1, 0, 2]], 2, "permutations"),  # ragged
]


@pytest.mark.parametrize("perms, n_items, pattern", ILL_SETS)
def test_check_permutations_rejects(perms, n_items, pattern):
    with pytest.raises(ValueError, match=pattern):
        check_permutations(perms, n_items)
