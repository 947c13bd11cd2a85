"""Labelled 2D image-classification datasets: class folders, an image folder with a CSV, MedMNIST ``.npz``.

Three layouts are recognised (:func:`detect_classification_layout`):

- ``"folders"``: one sub-folder per class (``0/ 1/ ... 4/`` or ``NORMAL/ PNEUMONIA/``), either directly
  in ``dataset_dir`` or inside given parts ``train/``, ``val/`` (or ``validation/``) and ``test/``, as
  APTOS-style folders (``train/0 .. train/4``, ``test/0 .. test/4``). Integer folder names are the labels;
  other names are sorted and numbered from 0.
- ``"csv"``: images in a folder and a CSV naming each file and its integer label, e.g. EyePACS
  ``trainLabels.csv`` (``image``, ``level``), APTOS ``train.csv`` (``id_code``, ``diagnosis``; file names
  without an extension are matched to the files present) or the Rahim DR set's ``labels.csv``
  (``file``, ``dr_grade_0_4``). Rows with an empty label (ungraded images) are skipped and counted.
- ``"npz"``: a MedMNIST v2 archive with ``train_images``, ``train_labels``, ``val_*`` and ``test_*`` arrays.
  Its items name an image by reference (``"<file>.npz#train_images[12]"``, :func:`npz_reference`) so
  ``split.json`` stays small; :func:`load_npz_image` (used by the loading transform) reads the array back.

Multi-label data (``multi_label=True``: several findings per image, each item's ``"label"`` a multi-hot list
of C ints in {0, 1}) comes from a CSV, either one column of finding names separated by ``|`` (NIH
ChestX-ray14 ``Finding Labels``: ``"Atelectasis|Effusion"``; the ``no_finding`` name, ``"No Finding"`` by
default, means none) or one 0/1 column per finding (``label_columns``, CheXpert-like; blank = 0), or from a
MedMNIST archive whose ``*_labels`` are (N, C) multi-hot (ChestMNIST: C = 14). Class folders hold one label
per image and are single-label only.

:func:`prepare_classification_split` is the bundle entry point: it reads any layout, keeps the parts a
layout defines (MedMNIST ``test_*``, a ``test/`` folder) and otherwise splits with
:func:`~medssl3d.data.splits.split_dataset` by ``split_seed``, takes the labelled fraction of the training
part by ``seed``, and writes ``split.json``. Fundus file names carry patient ids (``Patient001_L``):
``group_pattern="auto"`` keeps both eyes of a patient on one side whenever every file name has one.

References: Taleb et al. 2020, "3D Self-Supervised Methods for Medical Imaging" (NeurIPS), fine-tune
their encoders for 5-grade diabetic retinopathy scored with quadratic weighted kappa; Yang et al. 2023,
"MedMNIST v2", Scientific Data 10:41 (the ``.npz`` layout).
"""

from __future__ import annotations

import csv as _csv
import functools
import logging
import math
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medssl3d.data.decathlon import DatasetNotFoundError, DataValidationError
from medssl3d.data.splits import group_ids, label_fraction_subset, split_dataset, write_split_json

__all__ = [
    "CLASSIFICATION_LAYOUTS",
    "CLASSIFICATION_IMAGE_SUFFIXES",
    "DEFAULT_GROUP_PATTERN",
    "DEFAULT_NO_FINDING",
    "FINDING_SEPARATOR",
    "detect_classification_layout",
    "read_classification_dataset",
    "load_classification_datalist",
    "prepare_classification_split",
    "resolve_group_pattern",
    "npz_reference",
    "parse_npz_reference",
    "load_npz_image",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

CLASSIFICATION_LAYOUTS: tuple[str, ...] = ("folders", "csv", "npz")
#: Suffixes (lower case) of 2D image files listed in class folders and matched for extension-less CSV names.
CLASSIFICATION_IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Patient id in fundus file names (``Patient001_L.jpg`` -> ``Patient001``), used by ``group_pattern="auto"``.
DEFAULT_GROUP_PATTERN = r"(Patient\d+)"

# given parts of a folder layout / MedMNIST archive -> split part
_FOLDER_PARTS = {
    "train": "train",
    "training": "train",
    "val": "validation",
    "valid": "validation",
    "validation": "validation",
    "test": "test",
    "testing": "test",
}
_NPZ_PARTS = {"train": "train", "val": "validation", "test": "test"}
# CSV columns tried, in order, when image_column / label_column are not given
_IMAGE_COLUMNS = ("image", "file", "filename", "file_name", "path", "image_path", "image_id", "id_code", "id", "name")
_LABEL_COLUMNS = ("label", "labels", "diagnosis", "level", "grade", "dr_grade", "class", "target")
_LABEL_PREFIXES = ("dr_grade", "label", "grade")
# multi-label CSVs: NIH ChestX-ray14 names its columns "Image Index" and "Finding Labels"
_MULTI_IMAGE_COLUMNS = (*_IMAGE_COLUMNS, "image index", "image_index")
_FINDING_COLUMNS = ("finding labels", "finding_labels", "findings", "finding", *_LABEL_COLUMNS)
#: Separator of the finding names in one CSV cell (NIH ChestX-ray14: ``"Atelectasis|Effusion"``).
FINDING_SEPARATOR = "|"
#: The finding name that means "no finding" (all zeros) in a ``|``-separated column (NIH ChestX-ray14).
DEFAULT_NO_FINDING = "No Finding"
_NPZ_REF_RE = re.compile(r"^(?P<path>.+\.npz)#(?P<array>[A-Za-z0-9_]+)\[(?P<index>\d+)\]$", re.IGNORECASE)


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(CLASSIFICATION_IMAGE_SUFFIXES) and not name.startswith(".")


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / f for f in files if _is_image_name(f))
    return sorted(found)


def _check_dataset_dir(dataset_dir: Any) -> Path:
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


def _part_folders(path: Path) -> dict[str, Path]:
    """Given parts (``train/``, ``val/``, ``test/`` ...) of a folder layout that hold class sub-folders."""
    parts: dict[str, Path] = {}
    for sub in _visible_dirs(path):
        part = _FOLDER_PARTS.get(sub.name.lower())
        if part is not None and _visible_dirs(sub):
            if part in parts:
                raise DataValidationError(
                    f"{path} has two folders for the {part!r} part ({parts[part].name}/ and {sub.name}/); keep one."
                )
            parts[part] = sub
    return parts


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
    path = _check_dataset_dir(dataset_dir)
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
    if _part_folders(path):
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
    subdirs = _visible_dirs(path)
    if subdirs and all(any(_images_in(d)) for d in subdirs):
        return "folders"
    raise DataValidationError(
        f"Cannot tell the layout of {path} (sub-folders: {[d.name for d in subdirs][:10]}); expected class "
        "sub-folders of images (0/ 1/ ... or train/0 ... test/0 ...), an image folder with one labels CSV, "
        "or a MedMNIST .npz file."
    )


def _check_num_classes(num_classes: Any) -> int | None:
    if num_classes is None:
        return None
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2 (or None to infer it), got {num_classes!r}.")
    return int(num_classes)


def _check_num_findings(num_findings: Any) -> int | None:
    if num_findings is None:
        return None
    if isinstance(num_findings, bool) or not isinstance(num_findings, numbers.Integral) or num_findings < 1:
        raise ValueError(
            f"num_classes (findings) must be a positive integer (or None to infer it), got {num_findings!r}."
        )
    return int(num_findings)


def _class_names(labels: Sequence[int], num_classes: int | None, names: Sequence[str] | None, where: str) -> list[str]:
    """Class names for integer labels; checks every label is in ``[0, num_classes)``."""
    labels_arr = np.asarray(labels, dtype=np.int64)
    n = num_classes if num_classes is not None else max(int(labels_arr.max(initial=-1)) + 1, len(names or ()))
    if names is not None:
        if len(names) != n:
            raise ValueError(
                f"class_names has {len(names)} names ({list(names)}) but there are {n} classes in {where}; "
                "give one name per class, or pass class_names=None."
            )
        out = [str(x) for x in names]
    else:
        out = [str(i) for i in range(n)]
    bad = np.unique(labels_arr[(labels_arr < 0) | (labels_arr >= n)])
    if bad.size:
        hint = " (labels look 1-based: subtract 1)" if bad.min() == n and labels_arr.min() >= 1 else ""
        raise DataValidationError(
            f"labels {bad.tolist()} in {where} are out of range [0, {n - 1}] for num_classes={n}{hint}; "
            "fix the labels or pass the right num_classes."
        )
    return out


# ----------------------------------------------------------------------------------------------- folders


def _read_folders(path: Path, num_classes: int | None) -> tuple[list[dict], list[str] | None]:
    parts = _part_folders(path)
    roots = parts if parts else {None: path}
    class_dirs: dict[str | None, list[Path]] = {part: _visible_dirs(root) for part, root in roots.items()}
    all_names = sorted({d.name for dirs in class_dirs.values() for d in dirs})
    numeric = all(re.fullmatch(r"\d+", n) for n in all_names)
    if numeric:
        index = {n: int(n) for n in all_names}
        names = None
    else:
        index = {n: i for i, n in enumerate(all_names)}
        names = all_names
    items: list[dict] = []
    empty = []
    for part, dirs in class_dirs.items():
        for d in dirs:
            files = _images_in(d)
            if not files:
                empty.append(str(d))
            for f in files:
                item = {"image": str(f.resolve()), "label": index[d.name]}
                if part is not None:
                    item["section"] = part
                items.append(item)
    if empty:
        logger.warning("class folders without images (suffixes %s): %s", CLASSIFICATION_IMAGE_SUFFIXES, empty)
    if not items:
        raise DataValidationError(
            f"no images ({', '.join(CLASSIFICATION_IMAGE_SUFFIXES)}) in the class folders of {path}; "
            "check the folder or its file types."
        )
    if names is not None and num_classes is not None and len(names) != num_classes:
        raise DataValidationError(
            f"{path} has {len(names)} class folders {names} but num_classes={num_classes}; pass "
            f"num_classes={len(names)} or fix the folders."
        )
    return items, names


# --------------------------------------------------------------------------------------------------- csv


def _pick_column(columns: list[str], given: str | None, candidates: Sequence[str], prefixes: Sequence[str],
                 role: str, arg: str, csv_path: Path, exclude: str | None = None) -> str:
    """The column named ``given`` (case-insensitive), else the first candidate/prefix match other than ``exclude``."""
    if given is not None and str(given).strip():
        if given in columns:
            return str(given)
        lower = {c.lower(): c for c in columns}
        if str(given).lower() in lower:
            return lower[str(given).lower()]
        raise DataValidationError(
            f"{role} column {given!r} not found in {csv_path}; available columns: {columns}; "
            f"pass {arg}=<one of them>."
        )
    usable = [c for c in columns if c != exclude]
    lower = {c.lower(): c for c in usable}
    for name in candidates:
        if name in lower:
            return lower[name]
    for prefix in prefixes:
        for c in usable:
            if c.lower().startswith(prefix):
                return c
    raise DataValidationError(
        f"cannot tell which column of {csv_path} holds the {role}; available columns: {columns}; "
        f"pass {arg}=<one of them>."
    )


def _find_csv(path: Path, csv: PathLike | None) -> Path:
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


def _image_base(csv_path: Path, dataset_dir: Path, image_dir: PathLike | None, first: str) -> tuple[Path, str]:
    """The folder the CSV's file names are relative to, and the suffix to append ("" if names carry one)."""
    if image_dir is not None and os.fspath(image_dir).strip():
        base = Path(os.fspath(image_dir)).expanduser()
        if not base.is_absolute() and not base.is_dir():
            base = dataset_dir / base
        if not base.is_dir():
            raise DatasetNotFoundError(f"Cannot find image folder {os.fspath(image_dir)!r}; pass image_dir=<folder>.")
        bases = [base]
    else:
        folder = csv_path.parent
        bases = [folder, folder / "images", dataset_dir, dataset_dir / "images", dataset_dir / "train_images"]
    suffixes = [""] if _is_image_name(Path(first).name) else ["", *CLASSIFICATION_IMAGE_SUFFIXES]
    seen = set()
    for base in bases:
        if base in seen or not base.is_dir():
            continue
        seen.add(base)
        for suffix in suffixes:
            if (base / (first + suffix)).is_file():
                return base, suffix
    raise DataValidationError(
        f"the first image of {csv_path}, {first!r}, was not found in {[str(b) for b in bases if b.is_dir()]} "
        f"(suffixes tried: {[s for s in suffixes if s]}); pass image_dir=<folder holding the images>."
    )


def _parse_label(value: str) -> int | None:
    """An integer label from a CSV cell; ``None`` for an empty cell; ``ValueError`` otherwise."""
    value = value.strip()
    if not value or value.lower() in ("nan", "na", "none", "null"):
        return None
    number = float(value)  # ValueError for text
    if not math.isfinite(number) or number != int(number):
        raise ValueError(value)
    return int(number)


def _parse_binary(value: str) -> int:
    """0 or 1 from a 0/1 CSV cell (blank and ``nan`` count as 0); ``ValueError`` for anything else."""
    value = value.strip()
    if not value or value.lower() in ("nan", "na", "none", "null"):
        return 0
    number = float(value)  # ValueError for text
    if number not in (0.0, 1.0):
        raise ValueError(value)
    return int(number)


def _findings_in(cell: str, no_finding: str | None) -> tuple[str, ...] | None:
    """The finding names of a ``|``-separated cell; ``()`` for the ``no_finding`` name; ``None`` for a blank cell.

    Raises:
        ValueError: ``no_finding`` together with findings (``"No Finding|Effusion"``).
    """
    names = tuple(dict.fromkeys(t.strip() for t in cell.split(FINDING_SEPARATOR) if t.strip()))
    if not names or (len(names) == 1 and names[0].lower() in ("nan", "na", "none", "null")):
        return None
    if no_finding and no_finding in names:
        if len(names) > 1:
            raise ValueError(f"{no_finding!r} together with findings")
        return ()
    return names


def _label_columns(label_columns: Any) -> list[str] | None:
    """``label_columns`` as a list of column names (a comma-separated string is split); ``None`` when not given."""
    if label_columns is None:
        return None
    if isinstance(label_columns, str):
        label_columns = [c for c in (part.strip() for part in label_columns.split(",")) if c]
    columns = [str(c) for c in label_columns]
    if not columns:
        return None
    if len(set(columns)) != len(columns):
        raise ValueError(f"label_columns lists a column twice: {columns}.")
    return columns


def _shown(problems: Sequence[str], sep: str = ", ") -> str:
    return sep.join(problems[:5]) + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")


def _read_csv(path: Path, csv: PathLike | None, image_column: str | None, label_column: str | None,
              image_dir: PathLike | None, multi_label: bool = False, label_columns: Sequence[str] | None = None,
              no_finding: str | None = DEFAULT_NO_FINDING,
              class_names: Sequence[str] | None = None) -> tuple[list[dict], dict[str, Any]]:
    """Items of a CSV layout and the column bookkeeping.

    Single-label: ``"label"`` is an int. Multi-label: ``"label"`` is a multi-hot list, and the info holds the
    finding names (``"finding_names"``: ``label_columns``, else ``class_names``, else the sorted findings seen).
    """
    csv_path = _find_csv(path, csv)
    dataset_dir = path if path.is_dir() else path.parent
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = _csv.DictReader(f)
        columns = [c for c in (reader.fieldnames or []) if c is not None]
        rows = list(reader)
    if not columns or not rows:
        raise DataValidationError(f"{csv_path} has no header or no rows; it must list one image per row.")
    img_col = _pick_column(columns, image_column, _MULTI_IMAGE_COLUMNS if multi_label else _IMAGE_COLUMNS, (),
                           "image file", "image_column", csv_path)
    lab_col: str | None = None
    lab_cols: list[str] = []
    if multi_label and label_columns:
        lab_cols = [
            _pick_column(columns, c, (), (), "label", "label_columns", csv_path) for c in label_columns
        ]
        if img_col in lab_cols:
            raise ValueError(f"label_columns {lab_cols} include the image column {img_col!r} of {csv_path}.")
        logger.info("%s: images from column %r, %d findings from the 0/1 columns %s",
                    csv_path, img_col, len(lab_cols), lab_cols)
    else:
        lab_col = _pick_column(
            columns, label_column, _FINDING_COLUMNS if multi_label else _LABEL_COLUMNS, _LABEL_PREFIXES, "label",
            "label_column", csv_path, exclude=img_col,
        )
        if image_column is None or label_column is None:
            logger.info("%s: images from column %r, labels from column %r", csv_path, img_col, lab_col)
    first = next((r[img_col].strip() for r in rows if (r.get(img_col) or "").strip()), None)
    if first is None:
        raise DataValidationError(f"column {img_col!r} of {csv_path} is empty; pass image_column=<file name column>.")
    base, suffix = _image_base(csv_path, dataset_dir, image_dir, first)
    items: list[dict] = []
    bad_labels: list[str] = []
    missing: list[str] = []
    skipped = 0
    for row_number, row in enumerate(rows, start=2):  # line 1 is the header
        name = (row.get(img_col) or "").strip()
        label: Any
        if lab_cols:
            label = []
            for col in lab_cols:
                cell = row.get(col) or ""
                try:
                    label.append(_parse_binary(cell))
                except ValueError:
                    bad_labels.append(f"line {row_number}, column {col!r}: {cell!r}")
            if len(label) != len(lab_cols):
                continue
        else:
            cell = row.get(lab_col) or ""
            try:
                label = _findings_in(cell, no_finding) if multi_label else _parse_label(cell)
            except ValueError as e:
                bad_labels.append(f"line {row_number}: {cell!r}" + (f" ({e})" if multi_label else ""))
                continue
            if label is None:
                skipped += 1
                continue
        if not name:
            missing.append(f"line {row_number}: empty {img_col!r}")
            continue
        file = Path(name + suffix) if Path(name).is_absolute() else base / (name + suffix)
        if not file.is_file():
            missing.append(str(file))
            continue
        items.append({"image": str(file.resolve()), "label": label, "_line": row_number})
    if bad_labels and lab_cols:
        raise DataValidationError(
            f"label columns of {csv_path} must hold 0 or 1 (blank counts as 0); found {_shown(bad_labels)}; fix "
            "these values (e.g. map CheXpert's -1 'uncertain' to 0 or 1) or pass other label_columns."
        )
    if bad_labels and multi_label:
        raise DataValidationError(
            f"label column {lab_col!r} of {csv_path} names {no_finding!r} together with findings "
            f"({_shown(bad_labels)}); fix the rows, or pass no_finding='' to treat {no_finding!r} as a finding."
        )
    if bad_labels:
        hint = ""
        if any(FINDING_SEPARATOR in b for b in bad_labels):
            hint = f" The cells hold '{FINDING_SEPARATOR}'-separated findings: pass multi_label=true."
        raise DataValidationError(
            f"label column {lab_col!r} of {csv_path} holds values that are not integer class indices "
            f"({_shown(bad_labels)}); pass label_column=<a column of integer labels> (columns: {columns}).{hint}"
        )
    if missing:
        raise DataValidationError(
            f"{len(missing)} image(s) listed in {csv_path} (column {img_col!r}) do not exist: "
            f"{_shown(missing, '; ')}; fix the CSV, restore the files, or pass image_dir=<folder holding them>."
        )
    if skipped:
        logger.warning("%s: skipped %d row(s) with an empty %r (unlabelled images)", csv_path, skipped, lab_col)
    if not items:
        raise DataValidationError(f"{csv_path} has no labelled rows in column {lab_col!r}.")
    info = {"csv": str(csv_path.resolve()), "image_column": img_col, "label_column": lab_col, "num_skipped": skipped}
    if multi_label:
        info["label_columns"] = lab_cols or None
        if lab_cols:
            names = lab_cols
        else:
            names = _finding_vocabulary(items, class_names, no_finding, csv_path, lab_col)
            index = {n: k for k, n in enumerate(names)}
            for item in items:
                hot = [0] * len(names)
                for finding in item["label"]:
                    hot[index[finding]] = 1
                item["label"] = hot
        info["finding_names"] = names
    for item in items:
        del item["_line"]
    return items, info


def _finding_vocabulary(items: Sequence[Mapping], class_names: Sequence[str] | None, no_finding: str | None,
                        csv_path: Path, column: str | None) -> list[str]:
    """The finding names of a ``|``-separated column: ``class_names`` (every finding must be one), else sorted."""
    seen = sorted({f for it in items for f in it["label"]})
    if class_names is None:
        if not seen:
            raise DataValidationError(
                f"column {column!r} of {csv_path} names no finding (every row is {no_finding!r}); pass "
                "class_names=<the finding names> to train on it anyway."
            )
        return seen
    names = [str(c) for c in class_names]
    if len(set(names)) != len(names):
        raise ValueError(f"class_names lists a name twice: {names}.")
    if no_finding and no_finding in names:
        raise ValueError(
            f"class_names includes {no_finding!r}, which no_finding={no_finding!r} reads as 'no finding' (all "
            "zeros); drop it from class_names, or pass no_finding='' to make it a finding of its own."
        )
    known = set(names)
    unknown = [
        f"line {it['_line']}: {f!r}" for it in items for f in it["label"] if f not in known
    ]
    if unknown:
        raise DataValidationError(
            f"column {column!r} of {csv_path} names findings that are not in class_names {names}: "
            f"{_shown(unknown)}; add them to class_names (or pass class_names=[] to take the names from the data)."
        )
    return names


# --------------------------------------------------------------------------------------------------- npz


def npz_reference(path: PathLike, array: str, index: int) -> str:
    """The string naming image ``index`` of ``array`` in an ``.npz`` file: ``"<abs path>#<array>[<index>]"``."""
    return f"{os.path.abspath(os.fspath(path))}#{array}[{int(index)}]"


def parse_npz_reference(ref: Any) -> tuple[str, str, int] | None:
    """``(path, array, index)`` of an :func:`npz_reference` string, or ``None`` for anything else."""
    if not isinstance(ref, str):
        return None
    match = _NPZ_REF_RE.match(ref)
    if match is None:
        return None
    return match["path"], match["array"], int(match["index"])


@functools.lru_cache(maxsize=8)
def _npz_array(path: str, array: str) -> np.ndarray:
    with np.load(path, allow_pickle=False) as f:
        if array not in f.files:
            raise DataValidationError(f"{path} has no array {array!r} (arrays: {sorted(f.files)}).")
        return f[array]


def load_npz_image(ref: str) -> np.ndarray:
    """The image an :func:`npz_reference` names, as stored (e.g. (H, W) or (H, W, 3) uint8).

    The array is read once per process and kept (a small LRU cache), so a dataset of references
    costs one ``np.load`` per array.

    Raises:
        ValueError: ``ref`` is not a reference, or the index is out of range.
        DataValidationError: the file lacks the array.
    """
    parsed = parse_npz_reference(ref)
    if parsed is None:
        raise ValueError(f"{ref!r} is not an npz image reference ('<file>.npz#<array>[<index>]').")
    path, array, index = parsed
    if not os.path.isfile(path):
        raise DatasetNotFoundError(f"Cannot find {path} (named by {ref!r}); was the dataset moved?")
    data = _npz_array(path, array)
    if index >= data.shape[0]:
        raise ValueError(f"{ref!r}: index {index} is out of range for {array} with {data.shape[0]} images.")
    return data[index]


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


def _read_npz(path: Path, multi_label: bool = False) -> list[dict]:
    if path.is_dir():
        npzs = sorted(path.glob("*.npz"))
        if len(npzs) != 1:
            raise DataValidationError(f"{path} holds {len(npzs)} .npz files; pass dataset_dir=<the .npz file>.")
        path = npzs[0]
    try:
        with np.load(path, allow_pickle=False) as f:
            files = set(f.files)
            parts = [p for p in _NPZ_PARTS if f"{p}_images" in files]
            if "train" not in parts:
                raise DataValidationError(
                    f"{path} has no 'train_images' array (arrays: {sorted(files)}); expected a MedMNIST archive "
                    "with train_images/train_labels (and val_*, test_*)."
                )
            items: list[dict] = []
            widths: dict[str, int] = {}
            for part in parts:
                if f"{part}_labels" not in files:
                    raise DataValidationError(f"{path} has {part}_images but no {part}_labels.")
                labels = np.asarray(f[f"{part}_labels"])
                n_images = f[f"{part}_images"].shape[0]
                if multi_label:
                    labels = _npz_multi_hot(labels, path, part)
                    widths[part] = labels.shape[1]
                else:
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
                if labels.shape[0] != n_images:
                    raise DataValidationError(
                        f"{path}: {part}_labels has {labels.shape[0]} entries but {part}_images has {n_images}."
                    )
                if not np.issubdtype(labels.dtype, np.integer):
                    if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
                        raise DataValidationError(f"{path}: {part}_labels holds non-integer values.")
                    labels = labels.astype(np.int64)
                section = _NPZ_PARTS[part]
                items.extend(
                    {"image": npz_reference(path, f"{part}_images", i),
                     "label": label if multi_label else int(label), "section": section}
                    for i, label in enumerate(labels.tolist())
                )
            if len(set(widths.values())) > 1:
                raise DataValidationError(
                    f"{path}: the label arrays have different numbers of findings {widths}; re-export the archive."
                )
    except (OSError, ValueError) as e:
        if isinstance(e, DataValidationError):
            raise
        raise DataValidationError(f"{path} cannot be read as an .npz archive ({e}); re-download it.") from e
    return items


# ------------------------------------------------------------------------------------------------ public


def _finding_names(num_findings: int, names: Sequence[str] | None, where: str) -> list[str]:
    """Names of the C findings of multi-label data: ``names`` (one per finding) or ``finding_0 .. finding_{C-1}``."""
    if names is None:
        return [f"finding_{k}" for k in range(num_findings)]
    if len(names) != num_findings:
        raise ValueError(
            f"class_names has {len(names)} names ({list(names)}) but {where} has {num_findings} findings per image; "
            "give one name per finding, or pass class_names=[] to take the names from the data."
        )
    out = [str(x) for x in names]
    if len(set(out)) != len(out):
        raise ValueError(f"class_names lists a name twice: {out}.")
    return out


def read_classification_dataset(
    dataset_dir: PathLike,
    csv: PathLike | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    image_dir: PathLike | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    multi_label: bool = False,
    label_columns: Sequence[str] | str | None = None,
    no_finding: str | None = DEFAULT_NO_FINDING,
) -> dict[str, Any]:
    """Read a labelled 2D dataset of any layout (see the module docstring).

    Args:
        dataset_dir: a folder of class folders, a folder with images and a labels CSV, or a MedMNIST ``.npz``
            (file or the folder holding it).
        csv: the labels CSV (absolute, or relative to ``dataset_dir``); default: the only ``*.csv`` there.
        image_column: CSV column of file names (default: the first of ``image``, ``file``, ``filename``,
            ``path``, ``id_code``, ``id`` ... present; multi-label also ``Image Index``). Names without a suffix
            get the image suffix found.
        label_column: CSV column of integer labels (default: the first of ``label``, ``diagnosis``,
            ``level``, ``grade``, ``class``, ``target``, then a column starting with ``dr_grade``/``label``).
            Multi-label: the column of ``|``-separated finding names (default: ``Finding Labels``,
            ``findings``, then the single-label candidates); a blank cell skips the row (unlabelled).
        image_dir: folder the CSV's file names are relative to (default: the CSV's folder, its ``images/``,
            ``dataset_dir/images`` or ``dataset_dir/train_images``, whichever holds the first file).
        num_classes: number of classes; labels must lie in ``[0, num_classes)``. Default: largest label + 1.
            Multi-label: the number of findings C, if given it must match the data.
        class_names: one name per class; ``None``, ``[]`` or ``""``: the folder names, or ``"0", "1", ...``.
            Multi-label: one name per finding; for a ``|``-separated column the list of findings (every name in
            the CSV must be one of them); default: ``label_columns``, the sorted findings seen in the CSV, or
            ``finding_0 .. finding_{C-1}`` for an ``.npz``.
        multi_label: several findings per image; each item's ``"label"`` is a multi-hot list of C ints in
            {0, 1}. Needs a CSV or ``.npz`` layout.
        label_columns: multi-label CSV with one 0/1 column per finding (CheXpert-like; blank = 0); a list of
            column names (or one comma-separated string). Replaces ``label_column``.
        no_finding: in a ``|``-separated column, the name meaning "no finding" (all zeros); ``None``/``""``:
            none.

    Returns:
        ``{"items": [{"image": path or npz reference, "label": int (multi-label: list of C ints)[, "section":
        "train"|"validation"|"test"]}], "class_names", "num_classes"`` (multi-label: C findings),
        ``"multi_label", "layout", "csv", "image_column", "label_column", "label_columns", "num_skipped"}``.
        ``section`` marks parts the layout defines (``train/``, ``test/`` folders; MedMNIST arrays).

    Raises:
        DatasetNotFoundError: the folder or CSV is missing.
        DataValidationError: layout not recognised, column missing (available columns listed), non-integer
            or out-of-range labels, listed images missing; multi-label: values other than 0/1 in a label
            column or array (file, line and column named), findings not in ``class_names``, class folders;
            single-label: an ``.npz`` with (N, C) multi-hot labels (pass ``multi_label=True``).
        ValueError: bad ``num_classes``/``class_names`` (multi-label: not one name per finding),
            ``label_columns`` without ``multi_label`` or with ``label_column``.
    """
    n = _check_num_classes(num_classes) if not multi_label else _check_num_findings(num_classes)
    if isinstance(class_names, str) and not class_names.strip():
        class_names = None  # "" from a command line (MONAI drops None overrides): names from the data
    if isinstance(class_names, str):
        raise ValueError(f"class_names must be a list of names, got the string {class_names!r}.")
    if class_names is not None and len(class_names) == 0:
        class_names = None
    columns = _label_columns(label_columns)
    if columns and not multi_label:
        raise ValueError(f"label_columns={columns} (one 0/1 column per finding) needs multi_label=True.")
    if columns and label_column is not None and str(label_column).strip():
        raise ValueError(
            f"pass either label_column={label_column!r} ('|'-separated findings) or label_columns={columns} "
            "(0/1 columns), not both."
        )
    no_finding = str(no_finding).strip() if no_finding is not None and str(no_finding).strip() else None
    path = _check_dataset_dir(dataset_dir)
    layout = detect_classification_layout(path, csv)
    info: dict[str, Any] = {"csv": None, "image_column": None, "label_column": None, "num_skipped": 0}
    folder_names = None
    if layout == "folders":
        if multi_label:
            raise DataValidationError(
                f"{path} holds class folders, one label per image, but multi_label=True; multi-label data needs a "
                f"CSV (finding names separated by '{FINDING_SEPARATOR}', or label_columns of 0/1) or a MedMNIST "
                ".npz with (N, C) labels; or pass multi_label=false."
            )
        items, folder_names = _read_folders(path, n)
    elif layout == "csv":
        items, info = _read_csv(path, csv, image_column, label_column, image_dir, multi_label, columns,
                                no_finding, class_names)
    else:
        items = _read_npz(path, multi_label)
    if not multi_label:
        names = class_names if class_names is not None else folder_names
        names = _class_names([it["label"] for it in items], n, names, str(path))
        return {"items": items, "class_names": names, "num_classes": len(names), "multi_label": False,
                "layout": layout, **info}
    width = len(items[0]["label"])
    if layout == "npz":
        names = _finding_names(width, class_names, str(path))
    elif columns:
        names = _finding_names(width, class_names if class_names is not None else info["finding_names"],
                               f"label_columns {info['label_columns']} of {info['csv']}")
    else:
        names = info.pop("finding_names")  # class_names (checked) or the findings seen
    info.pop("finding_names", None)
    if n is not None and n != len(names):
        raise ValueError(
            f"num_classes={n} but {path} has {len(names)} findings ({names}); pass num_classes=None (or "
            f"{len(names)}) for multi-label data."
        )
    info.setdefault("label_columns", None)
    return {"items": items, "class_names": names, "num_classes": len(names), "multi_label": True,
            "layout": layout, **info}


def load_classification_datalist(
    dataset_dir: PathLike,
    csv: PathLike | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    image_dir: PathLike | None = None,
    num_classes: int | None = None,
) -> list[dict]:
    """The items of :func:`read_classification_dataset`: ``[{"image": ..., "label": int[, "section"]}, ...]``.

    Example:
        >>> items = load_classification_datalist("fundus_dr_srahim", label_column="dr_grade_0_4")  # doctest: +SKIP
        >>> items[0]  # doctest: +SKIP
        {'image': '/data/fundus_dr_srahim/images/c01_Patient001_L.jpg', 'label': 0}
    """
    return read_classification_dataset(dataset_dir, csv, image_column, label_column, image_dir, num_classes)["items"]


def resolve_group_pattern(items: Sequence[Mapping], group_pattern: str | None, key: str = "image") -> str | None:
    """The patient-grouping pattern to use for ``items``.

    ``"auto"`` means :data:`DEFAULT_GROUP_PATTERN` (``Patient\\d+``) when it matches every file name, and no
    grouping (logged) when it matches none. ``None``/``""`` mean no grouping; any other pattern is returned
    as is (and must match every file name, see :func:`~medssl3d.data.splits.group_ids`).

    Raises:
        ValueError: ``"auto"`` and only some file names carry a patient id (a typo would otherwise silently
            let one patient's eyes reach both sides).
    """
    if group_pattern is None or str(group_pattern).strip() == "":
        return None
    if str(group_pattern).strip().lower() != "auto":
        return str(group_pattern)
    regex = re.compile(DEFAULT_GROUP_PATTERN)
    names = [os.path.basename(str(it[key])) for it in items]
    matched = [regex.search(n) is not None for n in names]
    if names and all(matched):
        logger.info("group_pattern='auto': grouping images by patient id %s", DEFAULT_GROUP_PATTERN)
        return DEFAULT_GROUP_PATTERN
    if any(matched):
        missing = [n for n, m in zip(names, matched) if not m]
        raise ValueError(
            f"group_pattern='auto': {len(names) - len(missing)} file names carry a patient id "
            f"({DEFAULT_GROUP_PATTERN}) but {len(missing)} do not (e.g. {missing[:3]}); rename them, or pass "
            "group_pattern=<a pattern matching every name> or group_pattern='' to split by image."
        )
    logger.info("group_pattern='auto': file names carry no patient id (%s); splitting by image", DEFAULT_GROUP_PATTERN)
    return None


def _validate_images(items: Sequence[Mapping], progress: bool) -> None:
    """Decode every image file once (Pillow, or the training loader for other formats); npz references by index."""
    from PIL import Image

    problems: list[str] = []
    iterator: Any = items
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(items, desc="validating images")
    for item in iterator:
        image = item["image"]
        if parse_npz_reference(image) is not None:
            try:
                load_npz_image(image)
            except (ValueError, OSError) as e:
                problems.append(str(e))
            continue
        try:
            if str(image).lower().endswith(CLASSIFICATION_IMAGE_SUFFIXES):
                with Image.open(image) as im:
                    im.load()
            else:  # other formats (e.g. a 2D NIfTI listed in a CSV) go through the training loader
                from medssl3d.transforms.classification import LoadClassificationImage

                LoadClassificationImage(None)(image)
        except Exception as e:  # any decoder failure is reported, not raised
            reason = " ".join(str(e).split())[:200]
            problems.append(
                f"image file {image} cannot be read ({type(e).__name__}: {reason}); re-export or remove it."
            )
    if problems:
        header = f"{len(problems)} unreadable image(s) among {len(items)}:"
        raise DataValidationError("\n".join([header] + [f"  - {p}" for p in problems[:20]]))


def _stratum(label: Any) -> int:
    """An item's stratum value: its class, or for a multi-hot list whether it has any finding (0/1)."""
    return int(any(label)) if isinstance(label, (list, tuple)) else int(label)


def _strata(items: Sequence[Mapping], pattern: str | None) -> list[int]:
    """Stratum of every item: the largest label in its group (a patient's worse eye), or its own label.

    Multi-label items are stratified on "has any finding": 1 when the group has an image with a finding.
    """
    ids = group_ids(items, pattern)
    worst: dict[str, int] = {}
    for item, gid in zip(items, ids):
        worst[gid] = max(worst.get(gid, -1), _stratum(item["label"]))
    return [worst[gid] for gid in ids]


def _by_stratum(items: Sequence[Mapping], strata: Sequence[int] | None, run: Any) -> Any:
    """Apply ``run(sub_items)`` to each stratum (or to all items when ``strata`` is None) and merge the results.

    ``run`` returns a dict of lists (a split) or a list; merged lists keep the order of ``items``.
    """
    if strata is None:
        return run(list(items))
    order = {id(it): i for i, it in enumerate(items)}
    merged: Any = None
    for s in sorted(set(strata)):
        out = run([it for it, st in zip(items, strata) if st == s])
        if isinstance(out, dict):
            merged = {k: [] for k in out} if merged is None else merged
            for k, v in out.items():
                merged[k].extend(v)
        else:
            merged = (merged or []) + list(out)
    if isinstance(merged, dict):
        return {k: sorted(v, key=lambda it: order[id(it)]) for k, v in merged.items()}
    return sorted(merged, key=lambda it: order[id(it)])


def _class_counts(items: Sequence[Mapping], n: int, multi_label: bool) -> list[int]:
    """Images per class, or for multi-label items positive images per finding."""
    if multi_label:
        return np.asarray([it["label"] for it in items], dtype=np.int64).reshape(-1, n).sum(axis=0).tolist()
    return np.bincount([it["label"] for it in items], minlength=n).tolist()


def _strip(items: Sequence[Mapping]) -> list[dict]:
    return [{k: v for k, v in it.items() if k != "section"} for it in items]


def prepare_classification_split(
    dataset_dir: PathLike,
    output_dir: PathLike | None = None,
    split_seed: int = 0,
    seed: int = 0,
    label_fraction: float = 1.0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    group_pattern: str | None = "auto",
    csv: PathLike | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    image_dir: PathLike | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    stratify: bool = True,
    validate: bool = True,
    progress: bool = False,
    multi_label: bool = False,
    label_columns: Sequence[str] | str | None = None,
    no_finding: str | None = DEFAULT_NO_FINDING,
) -> dict:
    """Read a labelled 2D dataset, split it, keep a labelled fraction for training, write ``split.json``.

    Parts the layout defines are kept (MedMNIST ``val_*``/``test_*``; ``val/``, ``test/`` folders); the
    missing ones are drawn from the training items by :func:`~medssl3d.data.splits.split_dataset` with
    ``split_seed``, whole patients at a time with a group pattern. ``label_fraction`` then keeps a nested,
    ``seed``-dependent subset of the training part (:func:`~medssl3d.data.splits.label_fraction_subset`;
    validation and test stay whole). So repeats with different ``seed`` share one test set, and for one
    ``seed`` the 10 % subset lies inside the 25 % one.

    With ``stratify`` both steps run once per class stratum (a patient's stratum is the worse grade of
    their images) and the parts are merged, so a rare grade (16 of 593 Rahim DR images are grade 4)
    reaches the test part and a small label fraction keeps every grade: each requested fraction gives at
    least one patient of each stratum that has enough of them. Meant for bundle configs (plain JSON values).

    Multi-label (``multi_label=True``): class strata do not apply (an image has several findings, and one
    stratum per finding combination would leave most strata with one patient), so ``stratify`` splits and
    subsamples two strata, patients with at least one finding and patients with none; the positives of each
    finding are then spread at random, not balanced. Patient grouping, ``split_seed``, ``seed`` and the nested
    label fractions work as above.

    Args:
        dataset_dir: see :func:`read_classification_dataset`.
        output_dir: when given, ``<output_dir>/split.json`` is written atomically (npz items are stored as
            references, so the file stays small).
        split_seed: seed of the train/validation/test split.
        seed: seed of the labelled-fraction subset.
        label_fraction: fraction of the training part that keeps its labels, in (0, 1].
        val_fraction: validation fraction, used when the layout gives no validation part.
        test_fraction: test fraction, used when the layout gives no test part.
        group_pattern: ``"auto"`` (group by ``Patient\\d+`` when every file name has it), ``None``/``""``
            (no grouping) or a regular expression (see :func:`resolve_group_pattern`).
        csv, image_column, label_column, image_dir, num_classes, class_names: see
            :func:`read_classification_dataset`.
        stratify: split and subsample per class stratum (multi-label: "any finding" or not; see above);
            ``False`` splits all groups at once.
        validate: open and decode every image first, so a corrupt file fails before training.
        progress: show a progress bar while validating.
        multi_label, label_columns, no_finding: multi-label findings, see :func:`read_classification_dataset`;
            ``multi_label`` also takes the strings ``"true"``/``"false"``.

    Returns:
        ``{"train", "validation", "test"`` (items ``{"image", "label"}``), ``"train_full_size",
        "label_fraction", "seed", "split_seed", "group_pattern", "stratified", "multi_label", "class_names",
        "num_classes"`` (multi-label: C findings), ``"class_counts"`` (per part: images per class; multi-label:
        positive images per finding), ``"layout", "given_parts", "csv", "image_column", "label_column",
        "label_columns", "num_skipped", "dataset_dir"}``; multi-label adds ``"num_with_findings"`` (per part:
        images with at least one finding).

    Raises:
        DatasetNotFoundError, DataValidationError: unusable data (see :func:`read_classification_dataset`),
            unreadable images (all listed).
        ValueError: bad split arguments, or a ``group_pattern`` that misses some file names.

    Example:
        >>> split = prepare_classification_split("fundus_dr_srahim", "runs/dr", label_column="dr_grade_0_4",
        ...                                      num_classes=5, label_fraction=0.1)  # doctest: +SKIP
    """
    from medssl3d.utils.flags import as_flag

    multi = as_flag(multi_label, "multi_label")
    data = read_classification_dataset(
        dataset_dir, csv, image_column, label_column, image_dir, num_classes, class_names,
        multi_label=multi, label_columns=label_columns, no_finding=no_finding,
    )
    items = data["items"]
    pattern = resolve_group_pattern(items, group_pattern)
    given = {it["section"] for it in items if "section" in it}
    if given and "train" not in given:
        raise DataValidationError(f"{dataset_dir} defines parts {sorted(given)} but no training part (train/).")
    pool = [it for it in items if it.get("section", "train") == "train"]
    fractions = {
        "val_fraction": 0.0 if "validation" in given else val_fraction,
        "test_fraction": 0.0 if "test" in given else test_fraction,
    }
    parts = _by_stratum(
        pool,
        _strata(pool, pattern) if stratify else None,
        lambda sub: split_dataset(sub, seed=split_seed, group_pattern=pattern, **fractions),
    )
    for part in ("validation", "test"):
        if part in given:
            parts[part] = [it for it in items if it.get("section") == part]
    if given:
        logger.info("%s gives the parts %s; the others are split off the training part", dataset_dir, sorted(given))
    train = _by_stratum(
        parts["train"],
        _strata(parts["train"], pattern) if stratify else None,
        lambda sub: label_fraction_subset(sub, label_fraction, seed=seed, group_pattern=pattern),
    )
    if validate:
        _validate_images(train + parts["validation"] + parts["test"], progress)
    n = data["num_classes"]
    named_parts = (("train", train), ("validation", parts["validation"]), ("test", parts["test"]))
    result = {
        "train": _strip(train),
        "validation": _strip(parts["validation"]),
        "test": _strip(parts["test"]),
        "train_full_size": len(parts["train"]),
        "label_fraction": float(label_fraction),
        "seed": int(seed),
        "split_seed": int(split_seed),
        "group_pattern": pattern,
        "stratified": bool(stratify),
        "multi_label": multi,
        "class_names": data["class_names"],
        "num_classes": n,
        "class_counts": {name: _class_counts(part, n, multi) for name, part in named_parts},
        "layout": data["layout"],
        "given_parts": sorted(given),
        "csv": data["csv"],
        "image_column": data["image_column"],
        "label_column": data["label_column"],
        "label_columns": data.get("label_columns"),
        "num_skipped": data["num_skipped"],
        "dataset_dir": os.path.abspath(os.fspath(dataset_dir)),
    }
    if multi:
        result["num_with_findings"] = {name: sum(any(it["label"]) for it in part) for name, part in named_parts}
        logger.info("multi-label split: %s positive images per finding %s, images with a finding %s",
                    data["class_names"], result["class_counts"], result["num_with_findings"])
    else:
        logger.info("classification split: %s images per class %s", data["class_names"], result["class_counts"])
    if output_dir is not None:
        write_split_json(result, Path(os.fspath(output_dir)) / "split.json")
    return result
