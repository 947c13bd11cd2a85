"""Permutation sets for the jigsaw puzzle task: greedy maximal minimum Hamming distance.

Noroozi, M., Favaro, P. "Unsupervised Learning of Visual Representations by Solving Jigsaw Puzzles",
ECCV 2016. https://arxiv.org/abs/1603.09246

The puzzle's classes are a fixed set of permutations of the grid cells. Noroozi & Favaro found that
the task gets more useful as the permutations get further apart, and chose them greedily: start from
one permutation and repeatedly add the candidate that lies furthest from the chosen set. Here "furthest"
is the largest *minimum* Hamming distance (number of positions where two permutations differ) to the
chosen permutations, ties broken by the largest sum of distances, then by a seeded random order.

For up to 9 items (the 3x3 grid of 2D) every permutation is a candidate (9! = 362880); for more items
(27 for the 3x3x3 grid of 3D) a candidate pool is sampled from the seed. All randomness comes from
``numpy.random.RandomState(seed)``, whose stream numpy keeps frozen, so a seed gives the same set on every
machine and numpy version. Measured minimum Hamming distances (see :func:`maximal_hamming_permutations`):

=========  ========  ======  =============  ===========================================
n_items    n_perms   seed    min. distance  without selection (``n_candidates=n_perms``)
=========  ========  ======  =============  ===========================================
9          100       0       6              3
27         100       0       24             22
=========  ========  ======  =============  ===========================================
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from medssl3d.utils.checks import check_int

__all__ = [
    "maximal_hamming_permutations",
    "min_hamming_distance",
    "check_permutations",
    "MAX_ENUMERATED_ITEMS",
    "DEFAULT_SAMPLED_CANDIDATES",
]

#: up to this many items every permutation is a candidate (9! = 362880 rows of 9 bytes)
MAX_ENUMERATED_ITEMS = 9
#: size of the seeded candidate pool for more items (for 27 items 100000 reach no larger distance)
DEFAULT_SAMPLED_CANDIDATES = 10_000


def _candidates(n_items: int, n_candidates: int | None, rng: np.random.RandomState) -> np.ndarray:
    """Distinct candidate permutations (M, n_items) int8 in a seeded random order."""
    total = math.factorial(n_items)
    if n_items <= MAX_ENUMERATED_ITEMS:
        every = np.array(list(itertools.permutations(range(n_items))), dtype=np.int8)
        if n_candidates is None or n_candidates >= total:
            return every[rng.permutation(total)]
        return every[rng.choice(total, size=n_candidates, replace=False)]
    m = DEFAULT_SAMPLED_CANDIDATES if n_candidates is None else min(n_candidates, total)
    # argsort of i.i.d. uniforms is a uniformly random permutation per row
    cand = np.argsort(rng.random_sample((m, n_items)), axis=1, kind="stable").astype(np.int8)
    # drop (astronomically unlikely) repeats, keeping the seeded order
    _, first = np.unique(cand, axis=0, return_index=True)
    return cand[np.sort(first)]


@functools.lru_cache(maxsize=16)
def _select(n_items: int, n_perms: int, seed: int, n_candidates: int | None) -> np.ndarray:
    rng = np.random.RandomState(seed)
    cand = _candidates(n_items, n_candidates, rng)
    if len(cand) < n_perms:
        raise ValueError(
            f"n_candidates={n_candidates} gives only {len(cand)} candidate permutations, fewer than "
            f"n_perms={n_perms}; raise n_candidates or lower n_perms."
        )
    # item-major layout: a distance is n_items vectorised compares of contiguous rows (20x faster)
    cand_t = np.ascontiguousarray(cand.T)

    def distances(row: np.ndarray) -> np.ndarray:
        dist = np.zeros(cand_t.shape[1], dtype=np.int16)
        for item in range(n_items):
            dist += cand_t[item] != row[item]
        return dist

    # score = min distance to the chosen set, ties broken by the sum of distances (lexicographic)
    scale = np.int64(n_items * n_perms + 1)
    chosen = [0]  # the first candidate of the seeded order starts the set
    min_d = distances(cand[0])
    sum_d = min_d.astype(np.int64)
    for _ in range(n_perms - 1):
        # chosen rows have min_d == 0, every other row >= 2 (distinct permutations differ twice at least)
        j = int(np.argmax(min_d.astype(np.int64) * scale + sum_d))
        chosen.append(j)
        dist = distances(cand[j])
        np.minimum(min_d, dist, out=min_d)
        sum_d += dist
    out = cand[chosen].astype(np.int64)
    out.flags.writeable = False
    return out


def maximal_hamming_permutations(
    n_items: int, n_perms: int = 100, seed: int = 0, n_candidates: int | None = None
) -> np.ndarray:
    """A set of ``n_perms`` permutations of ``range(n_items)`` chosen to be far apart (Noroozi & Favaro 2016).

    Greedy max-min selection: the first permutation is the first candidate of a seeded random order; each
    next one is the candidate with the largest minimum Hamming distance to those already chosen (ties: the
    largest sum of distances, then the earliest in the seeded order). Deterministic for a given seed.

    Measured minimum pairwise Hamming distance with the default candidates: 6 for ``(9, 100, seed=0)``
    and 24 for ``(27, 100, seed=0)`` (seeds 1-4 too). Without selection (``n_candidates=100``, i.e. 100
    random permutations) the distance is only 2-3 and 21-22: two random permutations of 27 items agree
    in about one place anyway, so the gain is smaller there. Results are cached, so building several
    tasks costs one selection.

    Args:
        n_items: number of puzzle pieces (9 for a 3x3 grid, 27 for 3x3x3); at least 2.
        n_perms: number of permutations (classes of the puzzle); at most ``n_items!``.
        seed: seed of ``numpy.random.RandomState`` for the candidate order / pool and the start.
        n_candidates: size of the candidate pool. ``None``: all ``n_items!`` permutations for
            ``n_items <= 9``, else a seeded sample of 10000.

    Returns:
        int64 array (n_perms, n_items); row ``k`` is permutation ``k``.

    Raises:
        ValueError: for a bad argument (the message names it).

    Example::

        perms = maximal_hamming_permutations(9, 100, seed=0)
        min_hamming_distance(perms)  # 6
    """
    n_items = check_int("n_items", n_items, 2)
    n_perms = check_int("n_perms", n_perms, 1)
    seed = check_int("seed", seed, 0)
    if n_candidates is not None:
        n_candidates = check_int("n_candidates", n_candidates, 1)
    total = math.factorial(n_items)
    if n_perms > total:
        raise ValueError(
            f"n_perms={n_perms} is more than the {total} permutations of n_items={n_items}; lower n_perms."
        )
    if n_candidates is not None and n_candidates < n_perms:
        raise ValueError(f"n_candidates={n_candidates} must be at least n_perms={n_perms}.")
    return _select(n_items, n_perms, seed, n_candidates).copy()


def min_hamming_distance(perms: np.ndarray | Sequence[Sequence[int]]) -> int:
    """Smallest Hamming distance between two different rows of ``perms`` (n_perms >= 2, n_items)."""
    arr = np.asarray(perms)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(
            f"min_hamming_distance needs a 2-d array with at least 2 rows (n_perms, n_items), got shape {arr.shape}."
        )
    dist = (arr[:, None, :] != arr[None, :, :]).sum(-1)
    np.fill_diagonal(dist, arr.shape[1] + 1)
    return int(dist.min())


def check_permutations(perms: Any, n_items: int) -> np.ndarray:
    """Validate a user-given permutation set and return it as an int64 array (n_perms, n_items).

    Every row must be a permutation of ``range(n_items)``, rows must be distinct, and there must be at
    least 2 (with one permutation the jigsaw label is constant and nothing is learned).

    Raises:
        ValueError: naming the first problem (shape, row, or duplicate rows).
    """
    n_items = check_int("n_items", n_items, 2)
    try:
        arr = np.asarray(perms)
    except (TypeError, ValueError) as e:
        raise ValueError(f"permutations must be a 2-d array of integers (n_perms, {n_items}): {e}") from None
    if arr.ndim != 2 or arr.shape[1] != n_items:
        raise ValueError(
            f"permutations must have shape (n_perms, {n_items}) (one permutation of the {n_items} grid cells per "
            f"row), got shape {arr.shape}."
        )
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"permutations must hold integers, got dtype {arr.dtype}.")
    arr = arr.astype(np.int64)
    if arr.shape[0] < 2:
        raise ValueError(
            f"permutations must hold at least 2 distinct permutations, got {arr.shape[0]}: with one the "
            "jigsaw label is always 0 and nothing is learned."
        )
    bad = np.flatnonzero(~np.all(np.sort(arr, axis=1) == np.arange(n_items), axis=1))
    if bad.size:
        raise ValueError(
            f"permutations row {int(bad[0])} {arr[bad[0]].tolist()} is not a permutation of range({n_items}) "
            f"({bad.size} bad row(s) in all)."
        )
    _, first, counts = np.unique(arr, axis=0, return_index=True, return_counts=True)
    if np.any(counts > 1):
        row = arr[first[np.argmax(counts > 1)]]
        dup = np.flatnonzero(np.all(arr == row, axis=1)).tolist()
        raise ValueError(f"permutations rows {dup} are the same permutation {row.tolist()}; rows must be distinct.")
    return arr
