"""Deterministic dataset splits: train/validation/test, k-fold, patient grouping, nested label fractions.

Everything here is plain Python and numpy (no torch), driven by seeds:

- :func:`split_dataset` holds out a test set fixed by the seed, then takes a validation part (a
  fraction, or fold ``k`` of a k-fold partition of the rest);
- :func:`label_fraction_subset` takes the first ``ceil(fraction * n)`` items of one seeded permutation,
  so the 5 % subset lies inside the 10 % subset, which lies inside the 25 % subset, and so on;
- a ``group_pattern`` (a regular expression on the file name) keeps items of one patient together in
  every split (e.g. ``r"(Patient\\d+)"``: left and right eye never end up on two sides);
- :func:`prepare_segmentation_split` wires a Decathlon folder through validation, the split and the
  label fraction and writes ``split.json`` (called from MONAI bundle configs). Its ``split_seed`` fixes
  the train/validation/test split and its ``seed`` the labelled subset, so repeats of a data-efficiency
  study (one ``seed`` each) draw different subsets but are all scored on the same test set.

Groups (or items) are ordered by their id (the file path, or the captured group) before the seeded
permutation, so a split depends on the seed and on which items there are, not on the order they
were listed in.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medssl3d.data.decathlon import class_names as _class_names
from medssl3d.data.decathlon import load_decathlon, read_dataset_json, validate_datalist
from medssl3d.data.pool import list_unlabelled_images
from medssl3d.utils.io import atomic_write_json

__all__ = [
    "split_dataset",
    "label_fraction_subset",
    "write_split_json",
    "load_split_json",
    "split_part",
    "prepare_segmentation_split",
    "datalist_split",
    "check_training_datalists",
    "prepare_unlabelled_pool",
    "group_ids",
]

PathLike = str | os.PathLike


def _check_seed(seed: Any, name: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {seed!r}.")
    return int(seed)


def _check_fraction(name: str, value: Any) -> float:
    """A fraction in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}.")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}; e.g. {name}=0.2 holds out 20 %.")
    return float(value)


def _check_n_folds(n_folds: Any, fold: Any) -> int | None:
    """``None``/0 (no k-fold) or an int >= 2, with ``fold`` in range."""
    if isinstance(fold, bool) or not isinstance(fold, numbers.Integral):
        raise ValueError(f"fold must be an integer, got {fold!r}.")
    if n_folds is None or (not isinstance(n_folds, bool) and isinstance(n_folds, numbers.Integral) and n_folds == 0):
        if fold != 0:
            raise ValueError(
                f"fold={fold} needs k-fold cross-validation; pass n_folds=<number of folds> (e.g. 5) or fold=0."
            )
        return None
    if isinstance(n_folds, bool) or not isinstance(n_folds, numbers.Integral) or n_folds < 2:
        raise ValueError(f"n_folds must be None/0 (no k-fold) or an integer >= 2, got {n_folds!r}.")
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must be in 0..{n_folds - 1} for n_folds={n_folds}, got {fold}.")
    return int(n_folds)


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
    if isinstance(items, (str, os.PathLike, Mapping)) or not isinstance(items, Sequence):
        raise ValueError(f"items must be a list of datalist entries, got {type(items).__name__}.")
    if len(items) == 0:
        raise ValueError("items is empty: nothing to split; check the datalist you passed.")
    seed = _check_seed(seed)
    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    k = _check_n_folds(n_folds, fold)
    if k is None and val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1 to leave training data, got {val_fraction} + {test_fraction}."
        )

    ids = group_ids(items, group_pattern, key)
    groups = _permuted_groups(ids, seed)
    n = len(groups)
    n_test = _count(test_fraction, n)
    if k is None:
        n_val = _count(val_fraction, n)
        while n - n_test - n_val < 1 and n_test + n_val > 0:
            if n_val > 0 and n_val >= n_test:
                n_val -= 1
            else:
                n_test -= 1
        test_groups = set(groups[:n_test])
        val_groups = set(groups[n_test : n_test + n_val])
    else:
        while n - n_test < k and n_test > 0:
            n_test -= 1
        if n - n_test < k:
            raise ValueError(
                f"n_folds={k} needs at least {k} groups outside the test set, but there are {n} groups in all; "
                "use fewer folds or more data."
            )
        test_groups = set(groups[:n_test])
        folds = np.array_split(np.arange(n_test, n), k)
        val_groups = {groups[i] for i in folds[fold]}

    parts: dict[str, list] = {"train": [], "validation": [], "test": []}
    for item, gid in zip(items, ids, strict=False):
        if gid in test_groups:
            parts["test"].append(item)
        elif gid in val_groups:
            parts["validation"].append(item)
        else:
            parts["train"].append(item)
    return parts


def _check_label_fraction(fraction: Any) -> float:
    if isinstance(fraction, str):
        try:
            fraction = float(fraction)
        except ValueError:
            raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}.") from None
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not math.isfinite(float(fraction)):
        raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}.")
    if not 0.0 < float(fraction) <= 1.0:
        hint = f"; for {fraction} % pass {float(fraction) / 100:g}" if 1 < float(fraction) <= 100 else ""
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}{hint}.")
    return float(fraction)


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
    fraction = _check_label_fraction(fraction)
    seed = _check_seed(seed)
    if isinstance(train_items, (str, os.PathLike, Mapping)) or not isinstance(train_items, Sequence):
        raise ValueError(f"train_items must be a list of datalist entries, got {type(train_items).__name__}.")
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


def _json_default(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable: {value!r}.")


def write_split_json(split: Mapping, path: PathLike) -> Path:
    """Write a split dictionary as JSON, atomically (a temporary file in the same folder, then ``os.replace``).

    Args:
        split: JSON-able dictionary (paths and numpy scalars are converted).
        path: the output file; missing parent folders are created.

    Returns:
        the path written.
    """
    return atomic_write_json(split, Path(os.fspath(path)).expanduser())


SPLIT_PARTS: tuple[str, ...] = ("train", "validation", "test")
_PART_ALIASES = {"training": "train", "val": "validation", "valid": "validation", "testing": "test"}


def load_split_json(path: PathLike) -> dict:
    """Read a ``split.json`` written by :func:`write_split_json` / :func:`prepare_segmentation_split`.

    Args:
        path: the JSON file.

    Returns:
        the split dictionary (``train``, ``validation``, ``test`` lists and the recorded settings).

    Raises:
        FileNotFoundError: the file is missing (run training first, which writes it).
        ValueError: the file is not valid JSON or lacks the ``train``/``validation``/``test`` lists.
    """
    path = Path(os.fspath(path)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Cannot find split file: {path}; run training first (it writes <output_dir>/split.json) "
            "or pass the output_dir of a training run."
        )
    try:
        split = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path} is not valid JSON ({e.msg} at line {e.lineno}); rewrite it by re-running the split."
        ) from e
    missing = [p for p in SPLIT_PARTS if not isinstance(split, dict) or not isinstance(split.get(p), list)]
    if missing:
        raise ValueError(
            f"{path} has no {missing} list(s); it is not a split file written by prepare_segmentation_split."
        )
    return split


def split_part(split: Mapping, name: str) -> list:
    """One part of a split: ``"train"``, ``"validation"`` or ``"test"`` (``"val"``/``"training"`` accepted).

    Args:
        split: the dictionary from :func:`prepare_segmentation_split` or :func:`load_split_json`.
        name: the part to return.

    Returns:
        the part's datalist.

    Raises:
        ValueError: an unknown part name, or an empty part (e.g. ``test_fraction=0``).
    """
    key = _PART_ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
    if key not in SPLIT_PARTS:
        raise ValueError(f"unknown split part {name!r}; choose one of {list(SPLIT_PARTS)}.")
    if key not in split:
        raise ValueError(f"the split has no {key!r} part (keys: {sorted(split)}); re-run prepare_segmentation_split.")
    part = list(split[key])
    if not part:
        raise ValueError(
            f"split part {key!r} is empty; choose another part or re-split with a non-zero "
            f"{'test_fraction' if key == 'test' else 'val_fraction' if key == 'validation' else 'label_fraction'}."
        )
    return part


def prepare_segmentation_split(
    dataset_dir: PathLike,
    output_dir: PathLike | None = None,
    seed: int = 0,
    split_seed: int | None = None,
    fold: int = 0,
    n_folds: int | None = None,
    label_fraction: float = 1.0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    group_pattern: str | None = None,
    validate: bool = True,
    progress: bool = False,
) -> dict:
    """Validate a Decathlon folder, split its ``training`` list and keep a labelled fraction for training.

    The ``test`` part is held out from the labelled ``training`` list (the Decathlon ``test`` images have
    no labels). ``label_fraction`` applies to the training part only; validation and test stay whole,
    so results at different label fractions are comparable. ``split_seed`` fixes the train/validation/test
    split and ``seed`` the labelled subset: repeats with different ``seed`` and one ``split_seed`` use
    different subsets of the same training part and are scored on the same test set. Meant to be called
    from bundle configs, so it takes plain JSON values (``label_fraction`` 1 or 0.1, ``n_folds`` null or 0
    for no k-fold, ``split_seed`` null to reuse ``seed``).

    Args:
        dataset_dir: folder containing ``dataset.json``.
        output_dir: when given, ``<output_dir>/split.json`` is written (atomically).
        seed: seed of the label-fraction permutation (and of the split when ``split_seed`` is ``None``).
        split_seed: seed of the train/validation/test split (and of the k-fold partition); ``None``: ``seed``
            (the behaviour before ``split_seed`` existed).
        fold: validation fold with ``n_folds``.
        n_folds: ``None``/0 for a plain split, or the number of cross-validation folds.
        label_fraction: fraction of the training part that keeps its labels, in (0, 1].
        val_fraction: validation fraction (without ``n_folds``).
        test_fraction: held-out test fraction.
        group_pattern: regular expression on file names naming the patient (see :func:`split_dataset`).
        validate: check every file with :func:`validate_datalist` first (loads each volume once).
        progress: show a progress bar while validating.

    Returns:
        ``{"train", "validation", "test", "train_full_size", "label_fraction", "seed", "split_seed", "fold",
        "n_folds", "class_names", "num_classes", "dataset_dir"}`` (``split_seed`` is the seed actually used
        for the split, i.e. ``seed`` when ``split_seed`` was ``None``).

    Raises:
        DataValidationError: the folder, ``dataset.json`` or the files are unusable (every problem listed).
        ValueError: bad split arguments.

    Example:
        >>> split = prepare_segmentation_split("Task07_Pancreas", "runs/split", label_fraction=0.1)  # doctest: +SKIP
        >>> len(split["train"]), split["train_full_size"]  # doctest: +SKIP
    """
    fraction = _check_label_fraction(label_fraction)
    seed = _check_seed(seed)
    split_seed = seed if split_seed is None else _check_seed(split_seed, "split_seed")
    k = _check_n_folds(n_folds, fold)
    info = read_dataset_json(dataset_dir)
    names = _class_names(info)
    items = load_decathlon(dataset_dir, "training")
    if validate:
        validate_datalist(items, num_classes=len(names), progress=progress)
    parts = split_dataset(
        items,
        seed=split_seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        n_folds=k,
        fold=fold,
        group_pattern=group_pattern,
    )
    train = label_fraction_subset(parts["train"], fraction, seed=seed, group_pattern=group_pattern)
    result = {
        "train": train,
        "validation": parts["validation"],
        "test": parts["test"],
        "train_full_size": len(parts["train"]),
        "label_fraction": fraction,
        "seed": seed,
        "split_seed": split_seed,
        "fold": int(fold),
        "n_folds": k,
        "class_names": names,
        "num_classes": len(names),
        "dataset_dir": os.path.abspath(os.fspath(dataset_dir)),
    }
    if output_dir is not None:
        write_split_json(result, Path(os.fspath(output_dir)) / "split.json")
    return result


def datalist_split(class_names: Sequence[str]) -> dict:
    """The split of a segmentation training whose lists are passed in directly, without a Decathlon folder.

    MONAI Label's ``BundleTrainTask`` overrides ``train#dataset#data`` and ``validate#dataset#data`` with
    the labelled images of its datastore and passes no ``dataset_dir``. The bundle then takes its class
    names from the config (the same as ``inference.json`` and ``metadata.json``), and
    :func:`check_training_datalists` checks and records the lists it was given.

    Args:
        class_names: class names, background first.

    Returns:
        the keys of :func:`prepare_segmentation_split` with empty ``train``/``validation``/``test`` lists,
        ``dataset_dir`` ``""`` and ``source`` ``"datalists"``.

    Raises:
        ValueError: fewer than two class names.
    """
    names = [str(n) for n in class_names] if not isinstance(class_names, str) else []
    if len(names) < 2:
        raise ValueError(f"class_names must list background and at least one class, got {class_names!r}.")
    return {
        "train": [],
        "validation": [],
        "test": [],
        "class_names": names,
        "num_classes": len(names),
        "dataset_dir": "",
        "source": "datalists",
    }


def check_training_datalists(
    train: Sequence[Mapping],
    validation: Sequence[Mapping] | None,
    class_names: Sequence[str],
    dataset_dir: PathLike | None = "",
    output_dir: PathLike | None = None,
    validate: bool = True,
    progress: bool = False,
) -> dict:
    """Refuse a segmentation training with nothing to train on; check and record lists given directly.

    A bundle's training and validation lists come either from a Decathlon ``dataset_dir`` (through
    :func:`prepare_segmentation_split`, which has already checked every file and written ``split.json``)
    or directly as ``train#dataset#data`` and ``validate#dataset#data``, as MONAI Label's
    ``BundleTrainTask`` passes its datastore's labelled images. In the second case every file is checked
    here like :func:`~medssl3d.data.decathlon.validate_datalist` does (exists, loads, image and label
    shapes match, label values below the number of classes), before the first step, and
    ``output_dir/split.json`` records both lists.

    Args:
        train: the training datalist the trainer will use.
        validation: the validation datalist (may be empty: training then runs without validation).
        class_names: class names, background first (label values must be below their number).
        dataset_dir: the Decathlon folder the lists came from, or empty when they were given directly.
        output_dir: where ``split.json`` is written for lists given directly; ``None`` writes nothing.
        validate: check every file of lists given directly.
        progress: show a progress bar while checking.

    Returns:
        ``{"train": number of training cases, "validation": number of validation cases}``.

    Raises:
        DataValidationError: no training cases, or (lists given directly) every problem with their files.
    """
    from medssl3d.data.decathlon import DataValidationError

    train = list(train or [])
    validation = list(validation or [])
    if not train:
        raise DataValidationError(
            "no training cases: pass dataset_dir (a Medical Segmentation Decathlon folder with dataset.json), "
            "or give train#dataset#data and validate#dataset#data as lists of {'image': path, 'label': path} "
            "(MONAI Label's BundleTrainTask passes the labelled images of its datastore this way: label some first)."
        )
    counts = {"train": len(train), "validation": len(validation)}
    if dataset_dir:
        return counts
    if validate:
        validate_datalist(train + validation, num_classes=len(class_names), progress=progress)
    if output_dir is not None:
        record = datalist_split(class_names)
        record.update(train=train, validation=validation)
        write_split_json(record, Path(os.fspath(output_dir)) / "split.json")
    return counts


def prepare_unlabelled_pool(
    dataset_dir: PathLike | None = None,
    extra_folders: Sequence[PathLike] | PathLike = (),
    include_test: bool = True,
    exclude_pattern: str | None = None,
) -> list[dict]:
    """Every image available for pretraining: a Decathlon folder's images plus unlabelled folders.

    Args:
        dataset_dir: a Decathlon folder; its ``training`` images (labels unused) and, with
            ``include_test``, its ``test`` images are taken. ``None``: only ``extra_folders``.
        extra_folders: folders (or one folder) searched with :func:`list_unlabelled_images`.
        include_test: include the Decathlon ``test`` images.
        exclude_pattern: passed to :func:`list_unlabelled_images` for ``extra_folders``.

    Returns:
        ``[{"image": path}, ...]`` without duplicates, Decathlon images first, then each folder's (sorted).

    Raises:
        ValueError: nothing to search, or no image found.
    """
    if isinstance(extra_folders, (str, os.PathLike)):
        extra_folders = [extra_folders]
    if dataset_dir is None and not extra_folders:
        raise ValueError("no images to pool: pass dataset_dir=<Decathlon folder> and/or extra_folders=[...].")
    images: list[Any] = []
    if dataset_dir is not None:
        images.extend(item["image"] for item in load_decathlon(dataset_dir, "training"))
        if include_test and "test" in read_dataset_json(dataset_dir):
            images.extend(item["image"] for item in load_decathlon(dataset_dir, "test"))
    for folder in extra_folders:
        images.extend(item["image"] for item in list_unlabelled_images(folder, exclude_pattern=exclude_pattern))
    unique: dict[str, Any] = {}
    for image in images:  # an image may be a list of channel files
        unique.setdefault(json.dumps(image, default=_json_default), image)
    if not unique:
        raise ValueError(f"no images found in dataset_dir={dataset_dir!r} or extra_folders={list(extra_folders)!r}.")
    return [{"image": image} for image in unique.values()]
