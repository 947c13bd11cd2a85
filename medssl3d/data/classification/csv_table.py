"""The ``"csv"`` layout: images in a folder and a CSV naming each file and its label.

E.g. EyePACS ``trainLabels.csv`` (``image``, ``level``), APTOS ``train.csv`` (``id_code``, ``diagnosis``; file
names without an extension are matched to the files present) or the Rahim DR set's ``labels.csv`` (``file``,
``dr_grade_0_4``). Rows with an empty label (ungraded images) are skipped and counted. Multi-label CSVs hold
``|``-separated finding names in one column or one 0/1 column per finding
(:mod:`~medssl3d.data.classification.multilabel`).

The column and folder rules (:func:`pick_column`, :func:`image_base`) also serve the unlabelled CSVs of
:func:`~medssl3d.data.inference.list_classification_images`.
"""

from __future__ import annotations

import csv as _csv
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from medssl3d.data.classification.layout import find_csv, format_problems, is_image_name
from medssl3d.data.classification.multilabel import (
    DEFAULT_NO_FINDING,
    FINDING_SEPARATOR,
    finding_vocabulary,
    to_multi_hot,
)
from medssl3d.data.errors import DatasetNotFoundError, DataValidationError
from medssl3d.data.images import CLASSIFICATION_IMAGE_SUFFIXES

__all__ = ["IMAGE_COLUMNS", "pick_column", "read_csv_rows", "image_base", "read_csv"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

#: CSV columns tried, in order, for the image file names when ``image_column`` is not given.
IMAGE_COLUMNS = ("image", "file", "filename", "file_name", "path", "image_path", "image_id", "id_code", "id", "name")
# ... and for the labels when label_column is not given
_LABEL_COLUMNS = ("label", "labels", "diagnosis", "level", "grade", "dr_grade", "class", "target")
_LABEL_PREFIXES = ("dr_grade", "label", "grade")
# multi-label CSVs: NIH ChestX-ray14 names its columns "Image Index" and "Finding Labels"
_MULTI_IMAGE_COLUMNS = (*IMAGE_COLUMNS, "image index", "image_index")
_FINDING_COLUMNS = ("finding labels", "finding_labels", "findings", "finding", *_LABEL_COLUMNS)
_BLANK = ("nan", "na", "none", "null")


class _Columns(NamedTuple):
    """The columns a labelled CSV is read from: image file names, and one label column or 0/1 finding columns."""

    image: str
    label: str | None
    findings: list[str]


def pick_column(columns: list[str], given: str | None, candidates: Sequence[str], prefixes: Sequence[str],
                role: str, arg: str, csv_path: Path, exclude: str | None = None) -> str:
    """The column named ``given`` (case-insensitive), else the first candidate/prefix match other than ``exclude``.

    Raises:
        DataValidationError: ``given`` is not a column, or no column matches (the columns are listed).
    """
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


def read_csv_rows(csv_path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows of a CSV (UTF-8, with or without a byte-order mark).

    Raises:
        DataValidationError: no header or no rows.
    """
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = _csv.DictReader(f)
        columns = [c for c in (reader.fieldnames or []) if c is not None]
        rows = list(reader)
    if not columns or not rows:
        raise DataValidationError(f"{csv_path} has no header or no rows; it must list one image per row.")
    return columns, rows


def image_base(csv_path: Path, dataset_dir: Path, image_dir: PathLike | None, rows: Sequence[Mapping[str, str]],
               column: str) -> tuple[Path, str]:
    """The folder the CSV's file names are relative to, and the suffix to append ("" if names carry one).

    Found from the first file named in ``column``: ``image_dir``, else the CSV's folder, its ``images/``,
    ``dataset_dir``, ``dataset_dir/images`` or ``dataset_dir/train_images``, whichever holds it (names without
    a suffix are tried with each of :data:`CLASSIFICATION_IMAGE_SUFFIXES`).

    Raises:
        DatasetNotFoundError: ``image_dir`` does not exist.
        DataValidationError: ``column`` is empty, or the first file is in none of the folders.
    """
    first = next((r[column].strip() for r in rows if (r.get(column) or "").strip()), None)
    if first is None:
        raise DataValidationError(f"column {column!r} of {csv_path} is empty; pass image_column=<file name column>.")
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
    suffixes = [""] if is_image_name(Path(first).name) else ["", *CLASSIFICATION_IMAGE_SUFFIXES]
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
    if not value or value.lower() in _BLANK:
        return None
    number = float(value)  # ValueError for text
    if not math.isfinite(number) or number != int(number):
        raise ValueError(value)
    return int(number)


def _parse_binary(value: str) -> int:
    """0 or 1 from a 0/1 CSV cell (blank and ``nan`` count as 0); ``ValueError`` for anything else."""
    value = value.strip()
    if not value or value.lower() in _BLANK:
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
    if not names or (len(names) == 1 and names[0].lower() in _BLANK):
        return None
    if no_finding and no_finding in names:
        if len(names) > 1:
            raise ValueError(f"{no_finding!r} together with findings")
        return ()
    return names


def _choose_columns(columns: list[str], csv_path: Path, image_column: str | None, label_column: str | None,
                    multi_label: bool, label_columns: Sequence[str] | None) -> _Columns:
    """The image column and the label column(s) of a labelled CSV (given, else guessed and logged)."""
    img_col = pick_column(columns, image_column, _MULTI_IMAGE_COLUMNS if multi_label else IMAGE_COLUMNS, (),
                          "image file", "image_column", csv_path)
    if multi_label and label_columns:
        lab_cols = [pick_column(columns, c, (), (), "label", "label_columns", csv_path) for c in label_columns]
        if img_col in lab_cols:
            raise ValueError(f"label_columns {lab_cols} include the image column {img_col!r} of {csv_path}.")
        logger.info("%s: images from column %r, %d findings from the 0/1 columns %s",
                    csv_path, img_col, len(lab_cols), lab_cols)
        return _Columns(img_col, None, lab_cols)
    lab_col = pick_column(
        columns, label_column, _FINDING_COLUMNS if multi_label else _LABEL_COLUMNS, _LABEL_PREFIXES, "label",
        "label_column", csv_path, exclude=img_col,
    )
    if image_column is None or label_column is None:
        logger.info("%s: images from column %r, labels from column %r", csv_path, img_col, lab_col)
    return _Columns(img_col, lab_col, [])


def _row_label(row: Mapping[str, str], line: int, cols: _Columns, multi_label: bool,
               no_finding: str | None) -> tuple[Any, list[str]]:
    """The label of one row (``None`` for a blank cell: unlabelled) and the problems of its label cells."""
    if cols.findings:
        label, bad = [], []
        for col in cols.findings:
            cell = row.get(col) or ""
            try:
                label.append(_parse_binary(cell))
            except ValueError:
                bad.append(f"line {line}, column {col!r}: {cell!r}")
        return label, bad
    cell = row.get(cols.label or "") or ""
    try:
        return (_findings_in(cell, no_finding) if multi_label else _parse_label(cell)), []
    except ValueError as e:
        return None, [f"line {line}: {cell!r}" + (f" ({e})" if multi_label else "")]


def _raise_bad_labels(bad: Sequence[str], csv_path: Path, cols: _Columns, columns: list[str], multi_label: bool,
                      no_finding: str | None) -> None:
    """One error naming the label cells that could not be read (and what to pass instead)."""
    if cols.findings:
        raise DataValidationError(
            f"label columns of {csv_path} must hold 0 or 1 (blank counts as 0); found {format_problems(bad)}; fix "
            "these values (e.g. map CheXpert's -1 'uncertain' to 0 or 1) or pass other label_columns."
        )
    if multi_label:
        raise DataValidationError(
            f"label column {cols.label!r} of {csv_path} names {no_finding!r} together with findings "
            f"({format_problems(bad)}); fix the rows, or pass no_finding='' to treat {no_finding!r} as a finding."
        )
    hint = ""
    if any(FINDING_SEPARATOR in b for b in bad):
        hint = f" The cells hold '{FINDING_SEPARATOR}'-separated findings: pass multi_label=true."
    raise DataValidationError(
        f"label column {cols.label!r} of {csv_path} holds values that are not integer class indices "
        f"({format_problems(bad)}); pass label_column=<a column of integer labels> (columns: {columns}).{hint}"
    )


def _read_rows(rows: Sequence[Mapping[str, str]], csv_path: Path, columns: list[str], cols: _Columns,
               image_folder: tuple[Path, str], multi_label: bool, no_finding: str | None) -> tuple[list[dict], int]:
    """Items ``{"image", "label", "_line"}`` of the labelled rows, and the number of unlabelled rows skipped.

    Raises:
        DataValidationError: unreadable labels, listed images that do not exist, or no labelled row.
    """
    base, suffix = image_folder
    items: list[dict] = []
    bad_labels: list[str] = []
    missing: list[str] = []
    skipped = 0
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        label, bad = _row_label(row, line, cols, multi_label, no_finding)
        if bad:
            bad_labels += bad
            continue
        if label is None:
            skipped += 1
            continue
        name = (row.get(cols.image) or "").strip()
        if not name:
            missing.append(f"line {line}: empty {cols.image!r}")
            continue
        file = Path(name + suffix) if Path(name).is_absolute() else base / (name + suffix)
        if not file.is_file():
            missing.append(str(file))
            continue
        items.append({"image": str(file.resolve()), "label": label, "_line": line})
    if bad_labels:
        _raise_bad_labels(bad_labels, csv_path, cols, columns, multi_label, no_finding)
    if missing:
        raise DataValidationError(
            f"{len(missing)} image(s) listed in {csv_path} (column {cols.image!r}) do not exist: "
            f"{format_problems(missing, '; ')}; fix the CSV, restore the files, or pass "
            "image_dir=<folder holding them>."
        )
    if skipped:
        logger.warning("%s: skipped %d row(s) with an empty %r (unlabelled images)", csv_path, skipped, cols.label)
    if not items:
        raise DataValidationError(f"{csv_path} has no labelled rows in column {cols.label!r}.")
    return items, skipped


def read_csv(path: Path, csv: PathLike | None, image_column: str | None, label_column: str | None,
             image_dir: PathLike | None, multi_label: bool = False, label_columns: Sequence[str] | None = None,
             no_finding: str | None = DEFAULT_NO_FINDING,
             class_names: Sequence[str] | None = None) -> tuple[list[dict], dict[str, Any]]:
    """Items of a CSV layout and the column bookkeeping.

    Args:
        path: the dataset folder (or the CSV itself).
        csv, image_column, label_column, image_dir, label_columns, no_finding, class_names: see
            :func:`~medssl3d.data.classification.read_classification_dataset`.
        multi_label: read findings instead of integer labels.

    Returns:
        ``(items, info)``. Single-label: ``"label"`` is an int. Multi-label: ``"label"`` is a multi-hot list,
        and ``info`` holds the finding names (``"finding_names"``: ``label_columns``, else ``class_names``, else
        the sorted findings seen) and ``"label_columns"``.

    Raises:
        DatasetNotFoundError, DataValidationError: see
            :func:`~medssl3d.data.classification.read_classification_dataset`.
    """
    csv_path = find_csv(path, csv)
    columns, rows = read_csv_rows(csv_path)
    cols = _choose_columns(columns, csv_path, image_column, label_column, multi_label, label_columns)
    folder = image_base(csv_path, path if path.is_dir() else path.parent, image_dir, rows, cols.image)
    items, skipped = _read_rows(rows, csv_path, columns, cols, folder, multi_label, no_finding)
    info: dict[str, Any] = {"csv": str(csv_path.resolve()), "image_column": cols.image, "label_column": cols.label,
                            "num_skipped": skipped}
    if multi_label:
        info["label_columns"] = cols.findings or None
        names = cols.findings
        if not names:
            names = finding_vocabulary(items, class_names, no_finding, csv_path, cols.label)
            to_multi_hot(items, names)
        info["finding_names"] = names
    for item in items:
        del item["_line"]
    return items, info
