"""Which labelled layout a 2D dataset folder has, and the folder helpers every layout reader shares.

:func:`detect_classification_layout` tells the three layouts apart (``"folders"``, ``"csv"``, ``"npz"``,
see :mod:`medssl3d.data.classification`); the helpers list visible sub-folders and image files, find the
given parts (``train/``, ``val/``, ``test/``) of a folder layout and the labels CSV of a CSV layout.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medssl3d.data.errors import DatasetNotFoundError, DataValidationError
from medssl3d.data.images import CLASSIFICATION_IMAGE_SUFFIXES

__all__ = [
    "CLASSIFICATION_LAYOUTS",
    "detect_classification_layout",
    "check_dataset_dir",
    "part_folders",
    "visible_dirs",
    "images_in",
    "is_image_name",
    "find_csv",
    "format_problems",
]

PathLike = str | os.PathLike

CLASSIFICATION_LAYOUTS: tuple[str, ...] = ("folders", "csv", "npz")

# given parts of a folder layout -> split part
_FOLDER_PARTS = {
    "train": "train",
    "training": "train",
    "val": "validation",
    "valid": "validation",
    "validation": "validation",
    "test": "test",
    "testing": "test",
}


def is_image_name(name: str) -> bool:
    """Whether a file name has an image suffix (:data:`CLASSIFICATION_IMAGE_SUFFIXES`) and is not hidden."""
    return name.lower().endswith(CLASSIFICATION_IMAGE_SUFFIXES) and not name.startswith(".")


def visible_dirs(folder: Path) -> list[Path]:
    """The sub-folders of ``folder`` whose names do not start with ``.``, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def images_in(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, hidden folders skipped), sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / f for f in files if is_image_name(f))
    return sorted(found)


def format_problems(problems: Sequence[str], sep: str = ", ") -> str:
    """The first five ``problems`` joined by ``sep``, then how many more there are."""
    return sep.join(problems[:5]) + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")


def check_dataset_dir(dataset_dir: Any) -> Path:
    """``dataset_dir`` as an existing path (``~`` expanded).

    Raises:
        DatasetNotFoundError: ``dataset_dir`` is empty or does not exist.
    """
    if dataset_dir is None or not os.fspath(dataset_dir).strip():
        raise DatasetNotFoundError(
            "dataset_dir is empty; pass a folder of class sub-folders, a folder with images and a labels CSV, "
            "or a MedMNIST .npz file, e.g. --dataset_dir /data/aptos."
        )
    path = Path(os.fspath(dataset_dir)).expanduser()
    if not path.exists():
        raise DatasetNotFoundError(
            f"Cannot find dataset directory: {path}; pass dataset_dir=<folder of class folders, folder with a "
            "labels CSV, or a MedMNIST .npz file>."
        )
    return path


def part_folders(path: Path) -> dict[str, Path]:
    """Given parts (``train/``, ``val/``, ``test/`` ...) of a folder layout that hold class sub-folders.

    Raises:
        DataValidationError: two folders for one part (``val/`` and ``validation/``).
    """
    parts: dict[str, Path] = {}
    for sub in visible_dirs(path):
        part = _FOLDER_PARTS.get(sub.name.lower())
        if part is not None and visible_dirs(sub):
            if part in parts:
                raise DataValidationError(
                    f"{path} has two folders for the {part!r} part ({parts[part].name}/ and {sub.name}/); keep one."
                )
            parts[part] = sub
    return parts


def find_csv(path: Path, csv: PathLike | None) -> Path:
    """The labels CSV: ``csv`` (absolute, or relative to ``path``), ``path`` itself, or the only ``*.csv`` there.

    Raises:
        DatasetNotFoundError: the given ``csv`` does not exist.
        DataValidationError: no ``csv`` given and ``path`` holds none or several CSV files.
    """
    if csv is not None and os.fspath(csv).strip():
        given = Path(os.fspath(csv)).expanduser()
        for candidate in ([given] if given.is_absolute() else [path / given, given]):
            if candidate.is_file():
                return candidate
        raise DatasetNotFoundError(f"Cannot find labels CSV {os.fspath(csv)!r} (looked in {path}); pass its path.")
    if path.is_file():
        return path
    csvs = sorted(path.glob("*.csv"))
    if len(csvs) != 1:
        raise DataValidationError(f"{path} holds {len(csvs)} CSV files ({[p.name for p in csvs]}); pass csv=<file>.")
    return csvs[0]


def detect_classification_layout(dataset_dir: PathLike, csv: PathLike | None = None) -> str:
    """Which labelled layout ``dataset_dir`` has: ``"folders"``, ``"csv"`` or ``"npz"``.

    Order: an explicit ``csv`` -> ``"csv"``; a ``.npz`` file -> ``"npz"``; part folders
    (``train/`` ...) holding class sub-folders -> ``"folders"``; exactly one ``*.csv`` in the folder ->
    ``"csv"``; exactly one ``*.npz`` -> ``"npz"``; sub-folders that all hold images -> ``"folders"``.

    Args:
        dataset_dir: the folder (or ``.npz`` file).
        csv: a labels CSV, which forces the ``"csv"`` layout.

    Returns:
        the layout name.

    Raises:
        DatasetNotFoundError: ``dataset_dir`` is empty or missing.
        DataValidationError: the folder matches no layout, or is ambiguous (several CSV or npz files);
            the message says what was found.
    """
    path = check_dataset_dir(dataset_dir)
    if csv is not None and os.fspath(csv).strip():
        return "csv"
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return "npz"
        if path.suffix.lower() == ".csv":
            return "csv"
        raise DataValidationError(
            f"{path} is a file but neither a MedMNIST .npz nor a labels .csv; pass the dataset folder instead."
        )
    if part_folders(path):
        return "folders"
    csvs = sorted(path.glob("*.csv"))
    if len(csvs) == 1:
        return "csv"
    if len(csvs) > 1:
        raise DataValidationError(
            f"{path} holds several CSV files ({[p.name for p in csvs]}); pass csv=<the labels file>."
        )
    npzs = sorted(path.glob("*.npz"))
    if len(npzs) == 1:
        return "npz"
    if len(npzs) > 1:
        raise DataValidationError(
            f"{path} holds several .npz files ({[p.name for p in npzs]}); pass dataset_dir=<one of them>."
        )
    subdirs = visible_dirs(path)
    if subdirs and all(any(images_in(d)) for d in subdirs):
        return "folders"
    raise DataValidationError(
        f"Cannot tell the layout of {path} (sub-folders: {[d.name for d in subdirs][:10]}); expected class "
        "sub-folders of images (0/ 1/ ... or train/0 ... test/0 ...), an image folder with one labels CSV, "
        "or a MedMNIST .npz file."
    )
