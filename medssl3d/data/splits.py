"""Deterministic dataset splits: train/validation/test, k-fold, patient grouping, nested label fractions.

Everything here is plain Python and numpy (no torch), driven by seeds:

- :func:`split_dataset` holds out a test set fixed by the seed, then takes a validation part (a
  fraction, or fold ``k`` of a k-fold partition of the rest);
- :func:`label_fraction_subset` takes the first ``ceil(fraction * n)`` items of one seeded permutation,
  so the 5 % subset lies inside the 10 % subset, which lies inside the 25 % subset, and so on;
- a ``group_pattern`` (a regular expression on the file name, see :func:`group_ids`) keeps items of one
  patient together in every split (e.g. ``r"(Patient\\d+)"``: left and right eye never end up on two sides).

Groups (or items) are ordered by their id (the file path, or the captured group) before the seeded
permutation, so a split depends on the seed and on which items there are, not on the order they
were listed in.

The ``split.json`` file that records a split is read and written by :mod:`medssl3d.data.split_files`;
:mod:`medssl3d.data.segmentation` applies these splits to a Decathlon folder.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medssl3d.utils.checks import check_int, check_non_negative_int, check_number

__all__ = [
    "split_dataset",
    "label_fraction_subset",
    "group_ids",
    "check_folds",
    "check_label_fraction",
]


def _check_fraction(name: str, value: Any) -> float:
    """A held-out fraction (``val_fraction``, ``test_fraction``) in [0, 1)."""
    try:
        number = check_number(name, value)
    except ValueError:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}.") from None
    if not 0.0 <= number < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}; e.g. {name}=0.2 holds out 20 %.")
    return number


def check_label_fraction(fraction: Any) -> float:
    """The fraction of labelled training items to keep, in (0, 1] (a numeric string is accepted).

    Args:
        fraction: e.g. ``0.1`` or ``"0.1"`` for 10 %.

    Returns:
        the fraction as a ``float``.

    Raises:
        ValueError: not a finite number, or outside (0, 1] (a percentage such as 10 gets the value to pass).
    """
    try:
        number = check_number("fraction", float(fraction) if isinstance(fraction, str) else fraction)
    except ValueError:
        raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}.") from None
    if not 0.0 < number <= 1.0:
        percent = f"; for {number:g} % pass {number / 100:g}" if 1 < number <= 100 else ""
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}{percent}.")
    return number


def check_folds(n_folds: Any, fold: Any) -> int | None:
    """The number of cross-validation folds: ``None`` for a plain split, else an int >= 2 with ``fold`` in range.

    Args:
        n_folds: ``None`` or 0 for no k-fold, or the number of folds (>= 2).
        fold: the validation fold, in ``0..n_folds-1`` (must be 0 without k-fold).

    Returns:
        ``None`` (no k-fold) or ``n_folds`` as an ``int``.

    Raises:
        ValueError: ``fold`` is not an integer or out of range, or ``n_folds`` is 1, negative or not an integer.
    """
    fold = check_int("fold", fold)
    folds_message = f"n_folds must be None/0 (no k-fold) or an integer >= 2, got {n_folds!r}."
    try:
        k = 0 if n_folds is None else check_non_negative_int("n_folds", n_folds)
    except ValueError:
        raise ValueError(folds_message) from None
    if k == 0:
        if fold != 0:
            raise ValueError(
                f"fold={fold} needs k-fold cross-validation; pass n_folds=<number of folds> (e.g. 5) or fold=0."
            )
        return None
    if k == 1:
        raise ValueError(folds_message)
    if not 0 <= fold < k:
        raise ValueError(f"fold must be in 0..{k - 1} for n_folds={k}, got {fold}.")
    return k


def _check_datalist(name: str, items: Any) -> None:
    """``ValueError`` unless ``items`` is a list of datalist entries (not one path or one dictionary)."""
    if isinstance(items, (str, os.PathLike, Mapping)) or not isinstance(items, Sequence):
        raise ValueError(f"{name} must be a list of datalist entries, got {type(items).__name__}.")


def _item_path(item: Any, key: str, index: int) -> str:
    """The path identifying ``item``: ``item[key]`` (first entry of a list), or the item itself if a path."""
    if isinstance(item, Mapping):
        if key not in item:
            raise ValueError(f"item {index} has no {key!r} key ({dict(item)!r}); pass key=<the image key>.")
        value = item[key]
    else:
        value = item
    if isinstance(value, (list, tuple)) and value:
        value = value[0]
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"item {index} has {key}={value!r}, which is not a path; splits group items by file path.")
    return os.fspath(value)


def group_ids(items: Sequence, group_pattern: str | None = None, key: str = "image") -> list[str]:
    """The group id of every item: its path, or the ``group_pattern`` match in the file name.

    Args:
        items: datalist (dictionaries with ``key``) or plain paths.
        group_pattern: regular expression searched in the base name of each path; its first capture
            group (or the whole match when it has none) is the group id. ``None`` or ``""``: each path
            is its own group.
        key: dictionary key holding the path.

    Returns:
        one id per item, in the order of ``items``.

    Raises:
        ValueError: an invalid pattern, or files the pattern does not match (all named).
    """
    paths = [_item_path(item, key, i) for i, item in enumerate(items)]
    if group_pattern is None or group_pattern == "":  # "" from a config or command line means no grouping
        return paths
    try:
        regex = re.compile(group_pattern)
    except (re.error, TypeError) as e:
        raise ValueError(f"group_pattern={group_pattern!r} is not a valid regular expression: {e}.") from e
    ids: list[str] = []
    unmatched: list[str] = []
    for path in paths:
        name = os.path.basename(path.rstrip("/\\"))
        match = regex.search(name)
        if match is None:
            unmatched.append(path)
            continue
        group = match.group(1) if regex.groups and match.group(1) is not None else match.group(0)
        ids.append(group)
    if unmatched:
        shown = ", ".join(unmatched[:10]) + (f" and {len(unmatched) - 10} more" if len(unmatched) > 10 else "")
        raise ValueError(
            f"group_pattern={group_pattern!r} does not match the file name of {shown}; "
            "fix the pattern (it is searched in the base name) or rename the files."
        )
    return ids


def _permuted_groups(ids: list[str], seed: int) -> list[str]:
    """Unique ids sorted, then permuted by ``seed``."""
    unique = sorted(set(ids))
    order = np.random.default_rng(seed).permutation(len(unique))
    return [unique[i] for i in order]


def _count(fraction: float, n: int) -> int:
    """``round(fraction * n)`` (half up), at least 1 when ``fraction > 0``."""
    k = int(math.floor(fraction * n + 0.5))
    return max(k, 1) if fraction > 0 else 0


def _fraction_parts(groups: list[str], val_fraction: float, test_fraction: float) -> tuple[set[str], set[str]]:
    """Test and validation groups of a plain split: the first groups of the permutation, training keeps >= 1."""
    n = len(groups)
    n_test, n_val = _count(test_fraction, n), _count(val_fraction, n)
    while n - n_test - n_val < 1 and n_test + n_val > 0:
        if n_val > 0 and n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return set(groups[:n_test]), set(groups[n_test : n_test + n_val])


def _kfold_parts(groups: list[str], test_fraction: float, n_folds: int, fold: int) -> tuple[set[str], set[str]]:
    """Test groups (the first of the permutation) and fold ``fold`` of ``n_folds`` near-equal folds of the rest."""
    n = len(groups)
    n_test = _count(test_fraction, n)
    while n - n_test < n_folds and n_test > 0:
        n_test -= 1
    if n - n_test < n_folds:
        raise ValueError(
            f"n_folds={n_folds} needs at least {n_folds} groups outside the test set, but there are {n} groups "
            "in all; use fewer folds or more data."
        )
    folds = np.array_split(np.arange(n_test, n), n_folds)
    return set(groups[:n_test]), {groups[i] for i in folds[fold]}


def split_dataset(
    items: Sequence,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    n_folds: int | None = None,
    fold: int = 0,
    group_pattern: str | None = None,
    key: str = "image",
) -> dict[str, list]:
    """Split a datalist into train, validation and test parts, deterministically by ``seed``.

    The test part is the first ``round(test_fraction * G)`` groups of a seeded permutation of the ``G``
    groups (items, or patients with ``group_pattern``): it depends on the seed only, not on ``fold``.
    Without ``n_folds`` the next ``round(val_fraction * G)`` groups are the validation part. With
    ``n_folds`` the non-test groups are cut into ``n_folds`` near-equal folds and fold ``fold`` is the
    validation part (each item is validation in exactly one fold; ``val_fraction`` is then unused).
    A requested (> 0) fraction gives at least one group, and the training part always keeps at least
    one group. Each part lists its items in the order of ``items``.

    Args:
        items: datalist (dictionaries with ``key``) or plain paths.
        seed: seed of the permutation.
        val_fraction: fraction of groups for validation, in [0, 1).
        test_fraction: fraction of groups held out for testing, in [0, 1); with ``val_fraction`` < 1.
        n_folds: ``None`` or 0 for a plain split; an integer >= 2 for k-fold cross-validation.
        fold: the validation fold, in ``0..n_folds-1`` (must be 0 without ``n_folds``).
        group_pattern: regular expression on the file base name whose first capture group (or match)
            names the group; all items of a group land on the same side, e.g. ``r"(Patient\\d+)"``.
        key: dictionary key holding the path.

    Returns:
        ``{"train": [...], "validation": [...], "test": [...]}``.

    Raises:
        ValueError: empty ``items``, fractions outside [0, 1) or summing to >= 1, ``fold`` out of range,
            too few groups for ``n_folds``, or a ``group_pattern`` that does not match a file (named).

    Example:
        >>> items = [{"image": f"Patient{i // 2:03d}_{'LR'[i % 2]}.png"} for i in range(20)]
        >>> parts = split_dataset(items, seed=1, group_pattern=r"(Patient\\d+)")
        >>> sorted(len(v) for v in parts.values())
        [4, 4, 12]
    """
    _check_datalist("items", items)
    if len(items) == 0:
        raise ValueError("items is empty: nothing to split; check the datalist you passed.")
    seed = check_non_negative_int("seed", seed)
    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    k = check_folds(n_folds, fold)
    if k is None and val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1 to leave training data, got {val_fraction} + {test_fraction}."
        )

    ids = group_ids(items, group_pattern, key)
    groups = _permuted_groups(ids, seed)
    if k is None:
        test_groups, val_groups = _fraction_parts(groups, val_fraction, test_fraction)
    else:
        test_groups, val_groups = _kfold_parts(groups, test_fraction, k, fold)
    parts: dict[str, list] = {"train": [], "validation": [], "test": []}
    for item, gid in zip(items, ids, strict=False):
        part = "test" if gid in test_groups else "validation" if gid in val_groups else "train"
        parts[part].append(item)
    return parts


def label_fraction_subset(
    train_items: Sequence,
    fraction: float,
    seed: int = 0,
    group_pattern: str | None = None,
    key: str = "image",
) -> list:
    """A nested labelled subset: the first ``ceil(fraction * n)`` items of one seeded permutation.

    The permutation depends only on ``seed`` and on the items (not on ``fraction``), so for one seed
    the 5 % subset is inside the 10 % subset, which is inside the 25 % subset, and so on. With
    ``group_pattern`` whole groups are taken, in permuted order, until at least ``ceil(fraction * n)``
    items are in. At least one item is returned; ``fraction=1`` returns every item.

    Args:
        train_items: the training part of a split.
        fraction: fraction of labelled items to keep, in (0, 1].
        seed: seed of the permutation.
        group_pattern: as in :func:`split_dataset`.
        key: dictionary key holding the path.

    Returns:
        the chosen items in the order of ``train_items``.

    Raises:
        ValueError: ``fraction`` outside (0, 1] (e.g. 10 for 10 %), empty ``train_items``, or a
            ``group_pattern`` that does not match a file.

    Example:
        >>> items = [f"case_{i:02d}.nii.gz" for i in range(40)]
        >>> small = label_fraction_subset(items, 0.05, seed=3)
        >>> set(small) <= set(label_fraction_subset(items, 0.1, seed=3))
        True
    """
    fraction = check_label_fraction(fraction)
    seed = check_non_negative_int("seed", seed)
    _check_datalist("train_items", train_items)
    if len(train_items) == 0:
        raise ValueError("train_items is empty: no training items to take a labelled fraction of.")
    ids = group_ids(train_items, group_pattern, key)
    target = max(1, math.ceil(round(fraction * len(train_items), 9)))
    sizes: dict[str, int] = {}
    for gid in ids:
        sizes[gid] = sizes.get(gid, 0) + 1
    chosen: set[str] = set()
    count = 0
    for gid in _permuted_groups(ids, seed):
        if count >= target:
            break
        chosen.add(gid)
        count += sizes[gid]
    return [item for item, gid in zip(train_items, ids, strict=False) if gid in chosen]
