"""Permutation sets for the jigsaw puzzle task (greedy maximal minimum Hamming distance).

The code lives with the jigsaw transform in :mod:`medssl3d.transforms.pretext.permutations`; this module
re-exports it so that ``from medssl3d.tasks.permutations import maximal_hamming_permutations`` keeps working.
"""

from __future__ import annotations

from medssl3d.transforms.pretext.permutations import (
    DEFAULT_SAMPLED_CANDIDATES,
    MAX_ENUMERATED_ITEMS,
    check_permutations,
    maximal_hamming_permutations,
    min_hamming_distance,
)

__all__ = [
    "maximal_hamming_permutations",
    "min_hamming_distance",
    "check_permutations",
    "MAX_ENUMERATED_ITEMS",
    "DEFAULT_SAMPLED_CANDIDATES",
]
