"""The ``"npz"`` layout: a MedMNIST v2 archive with ``train_images``, ``train_labels``, ``val_*`` and ``test_*``.

Its items name an image by reference (``"<file>.npz#train_images[12]"``,
:func:`~medssl3d.data.images.npz_reference`) so ``split.json`` stays small;
:func:`~medssl3d.data.images.load_npz_image` reads the array back. Labels are (N,) or (N, 1) class indices,
or with ``multi_label`` (N, C) multi-hot (ChestMNIST: C = 14). Yang et al. 2023, "MedMNIST v2", Scientific
Data 10:41.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medssl3d.data.errors import DataValidationError
from medssl3d.data.images import npz_reference

__all__ = ["read_npz"]

# MedMNIST array prefix -> split part
_NPZ_PARTS = {"train": "train", "val": "validation", "test": "test"}


def _npz_multi_hot(labels: np.ndarray, path: Path, part: str) -> np.ndarray:
    """(N, C) multi-hot labels of a multi-label archive as int64, checked to hold only 0 and 1."""
    if labels.ndim == 1:
        raise DataValidationError(
            f"{path}: {part}_labels has shape {labels.shape}, one class index per image (single-label); pass "
            "multi_label=false, or give (N, C) multi-hot labels."
        )
    if labels.ndim != 2:
        raise DataValidationError(f"{path}: {part}_labels has shape {labels.shape}; expected (N, C) multi-hot labels.")
    bad = np.unique(labels[(labels != 0) & (labels != 1)])
    if bad.size:
        raise DataValidationError(
            f"{path}: {part}_labels holds values {bad[:10].tolist()}; multi-hot labels must be 0 or 1."
        )
    return labels.astype(np.int64)


def _class_indices(labels: np.ndarray, path: Path, part: str) -> np.ndarray:
    """(N,) class indices of a single-label archive ((N, 1) is flattened; (N, C) is refused)."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim == 2:
        raise DataValidationError(
            f"{path}: {part}_labels has shape {labels.shape}: {labels.shape[1]} labels per image, a "
            "multi-label set such as ChestMNIST; pass multi_label=true (bundle: --multi_label true) "
            "to train a multi-label classifier (sigmoid outputs, one per finding)."
        )
    if labels.ndim != 1:
        raise DataValidationError(
            f"{path}: {part}_labels has shape {labels.shape}; only single-label (N,) or (N, 1) "
            "labels, or (N, C) multi-hot labels with multi_label=true, are supported."
        )
    return labels


def _part_labels(archive: Any, path: Path, part: str, multi_label: bool) -> np.ndarray:
    """The checked integer labels of one part (``train``, ``val``, ``test``) of an open archive."""
    if f"{part}_labels" not in archive.files:
        raise DataValidationError(f"{path} has {part}_images but no {part}_labels.")
    labels = np.asarray(archive[f"{part}_labels"])
    n_images = archive[f"{part}_images"].shape[0]
    labels = _npz_multi_hot(labels, path, part) if multi_label else _class_indices(labels, path, part)
    if labels.shape[0] != n_images:
        raise DataValidationError(
            f"{path}: {part}_labels has {labels.shape[0]} entries but {part}_images has {n_images}."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise DataValidationError(f"{path}: {part}_labels holds non-integer values.")
        labels = labels.astype(np.int64)
    return labels


def _archive_items(archive: Any, path: Path, multi_label: bool) -> list[dict]:
    """Items of every part of an open archive, as npz references with their ``"section"``."""
    files = set(archive.files)
    parts = [p for p in _NPZ_PARTS if f"{p}_images" in files]
    if "train" not in parts:
        raise DataValidationError(
            f"{path} has no 'train_images' array (arrays: {sorted(files)}); expected a MedMNIST archive "
            "with train_images/train_labels (and val_*, test_*)."
        )
    items: list[dict] = []
    widths: dict[str, int] = {}
    for part in parts:
        labels = _part_labels(archive, path, part, multi_label)
        if multi_label:
            widths[part] = labels.shape[1]
        items.extend(
            {"image": npz_reference(path, f"{part}_images", i),
             "label": label if multi_label else int(label), "section": _NPZ_PARTS[part]}
            for i, label in enumerate(labels.tolist())
        )
    if len(set(widths.values())) > 1:
        raise DataValidationError(
            f"{path}: the label arrays have different numbers of findings {widths}; re-export the archive."
        )
    return items


def read_npz(path: Path, multi_label: bool = False) -> list[dict]:
    """Items of a MedMNIST archive: ``[{"image": npz reference, "label": int or multi-hot list, "section"}]``.

    Args:
        path: the ``.npz`` file, or a folder holding exactly one.
        multi_label: read (N, C) multi-hot labels instead of class indices.

    Raises:
        DataValidationError: no single archive, an unreadable archive, no ``train_images``, labels missing,
            of the wrong shape or count, or not integers (not 0/1 for multi-label).
    """
    if path.is_dir():
        npzs = sorted(path.glob("*.npz"))
        if len(npzs) != 1:
            raise DataValidationError(f"{path} holds {len(npzs)} .npz files; pass dataset_dir=<the .npz file>.")
        path = npzs[0]
    try:
        with np.load(path, allow_pickle=False) as archive:
            return _archive_items(archive, path, multi_label)
    except (OSError, ValueError) as e:
        if isinstance(e, DataValidationError):
            raise
        raise DataValidationError(f"{path} cannot be read as an .npz archive ({e}); re-download it.") from e
