"""Read a labelled 2D dataset of any layout: items, class (or finding) names and the column bookkeeping.

:func:`read_classification_dataset` detects the layout (:func:`~.layout.detect_classification_layout`),
reads it with that layout's reader (class folders, CSV, MedMNIST ``.npz``) and names the classes:
single-label labels must lie in ``[0, num_classes)``; multi-label data names its C findings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medssl3d.data.classification.csv_table import read_csv
from medssl3d.data.classification.folders import read_folders
from medssl3d.data.classification.layout import check_dataset_dir, detect_classification_layout
from medssl3d.data.classification.multilabel import (
    DEFAULT_NO_FINDING,
    FINDING_SEPARATOR,
    finding_names,
    parse_label_columns,
)
from medssl3d.data.classification.npz import read_npz
from medssl3d.data.errors import DataValidationError
from medssl3d.utils.checks import check_int

__all__ = ["read_classification_dataset", "load_classification_datalist"]

PathLike = str | os.PathLike

_INFER_HINT = " (or None to infer it)"


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


def _check_arguments(num_classes: Any, class_names: Any, label_column: str | None, label_columns: Any,
                     no_finding: str | None, multi_label: bool) -> tuple[int | None, Any, list[str] | None, str | None]:
    """``num_classes``, ``class_names`` (``None`` for ``""``/``[]``), ``label_columns`` and ``no_finding``, checked."""
    if num_classes is not None:
        if multi_label:
            num_classes = check_int("num_classes (findings)", num_classes, minimum=1, hint=_INFER_HINT)
        else:
            num_classes = check_int("num_classes", num_classes, minimum=2, hint=_INFER_HINT)
    if isinstance(class_names, str) and not class_names.strip():
        class_names = None  # "" from a command line (MONAI drops None overrides): names from the data
    if isinstance(class_names, str):
        raise ValueError(f"class_names must be a list of names, got the string {class_names!r}.")
    if class_names is not None and len(class_names) == 0:
        class_names = None
    columns = parse_label_columns(label_columns)
    if columns and not multi_label:
        raise ValueError(f"label_columns={columns} (one 0/1 column per finding) needs multi_label=True.")
    if columns and label_column is not None and str(label_column).strip():
        raise ValueError(
            f"pass either label_column={label_column!r} ('|'-separated findings) or label_columns={columns} "
            "(0/1 columns), not both."
        )
    no_finding = str(no_finding).strip() if no_finding is not None and str(no_finding).strip() else None
    return num_classes, class_names, columns, no_finding


def _multi_label_names(items: Sequence[dict], layout: str, class_names: Sequence[str] | None, info: dict[str, Any],
                       num_findings: int | None, path: Path) -> list[str]:
    """The names of the C findings of multi-label items (and ``info`` without its ``"finding_names"``)."""
    width = len(items[0]["label"])
    if layout == "npz":
        names = finding_names(width, class_names, str(path))
    elif info.get("label_columns"):
        names = finding_names(width, class_names if class_names is not None else info["finding_names"],
                              f"label_columns {info['label_columns']} of {info['csv']}")
    else:
        names = info["finding_names"]  # class_names (checked) or the findings seen
    info.pop("finding_names", None)
    if num_findings is not None and num_findings != len(names):
        raise ValueError(
            f"num_classes={num_findings} but {path} has {len(names)} findings ({names}); pass num_classes=None (or "
            f"{len(names)}) for multi-label data."
        )
    info.setdefault("label_columns", None)
    return names


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
    """Read a labelled 2D dataset of any layout (see :mod:`medssl3d.data.classification`).

    Args:
        dataset_dir: a folder of class folders, a folder with images and a labels CSV, or a MedMNIST ``.npz``.
        csv: the labels CSV (absolute, or relative to ``dataset_dir``); default: the only ``*.csv`` there.
        image_column: CSV column of file names (default: the first of ``image``, ``file``, ``filename``,
            ``path``, ``id_code``, ``id`` ... present; multi-label also ``Image Index``); names without a
            suffix get the image suffix found.
        label_column: CSV column of integer labels (default: the first of ``label``, ``diagnosis``, ``level``,
            ``grade``, ``class``, ``target``, then a column starting with ``dr_grade``/``label``). Multi-label:
            the column of ``|``-separated finding names (default: ``Finding Labels``, ``findings``, then the
            single-label candidates). A blank cell skips the row (unlabelled).
        image_dir: folder the CSV's file names are relative to (default: the CSV's folder, its ``images/``,
            ``dataset_dir/images`` or ``dataset_dir/train_images``, whichever holds the first file).
        num_classes: labels must lie in ``[0, num_classes)``; default: largest label + 1. Multi-label: the
            number of findings C; if given it must match the data.
        class_names: one name per class; ``None``, ``[]`` or ``""``: the folder names, or ``"0", "1", ...``.
            Multi-label: one name per finding (for a ``|``-separated column every name in the CSV must be one);
            default: ``label_columns``, the sorted findings seen, or ``finding_0 ..`` for an ``.npz``.
        multi_label: several findings per image; each ``"label"`` is a multi-hot list of C ints in {0, 1}.
            Needs a CSV or ``.npz`` layout.
        label_columns: multi-label CSV with one 0/1 column per finding (blank = 0): a list of column names
            (or one comma-separated string). Replaces ``label_column``.
        no_finding: in a ``|``-separated column, the name meaning "no finding" (all zeros); ``None``/``""``: none.

    Returns:
        ``{"items": [{"image": path or npz reference, "label": int (multi-label: list of C ints)[, "section":
        "train"|"validation"|"test"]}], "class_names", "num_classes"`` (multi-label: C findings),
        ``"multi_label", "layout", "csv", "image_column", "label_column", "label_columns", "num_skipped"}``.
        ``section`` marks parts the layout defines (``train/``, ``test/`` folders; MedMNIST arrays).

    Raises:
        DatasetNotFoundError: the folder or CSV is missing.
        DataValidationError: layout not recognised, column missing (columns listed), non-integer or
            out-of-range labels, listed images missing; multi-label: values other than 0/1 (file, line and
            column named), findings not in ``class_names``, class folders; single-label: an ``.npz`` with
            (N, C) multi-hot labels.
        ValueError: bad ``num_classes``/``class_names``, ``label_columns`` without ``multi_label`` or with
            ``label_column``.
    """
    n, class_names, columns, no_finding = _check_arguments(
        num_classes, class_names, label_column, label_columns, no_finding, multi_label
    )
    path = check_dataset_dir(dataset_dir)
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
        items, folder_names = read_folders(path, n)
    elif layout == "csv":
        items, info = read_csv(path, csv, image_column, label_column, image_dir, multi_label, columns,
                               no_finding, class_names)
    else:
        items = read_npz(path, multi_label)
    if multi_label:
        names = _multi_label_names(items, layout, class_names, info, n, path)
    else:
        given = class_names if class_names is not None else folder_names
        names = _class_names([it["label"] for it in items], n, given, str(path))
    return {"items": items, "class_names": names, "num_classes": len(names), "multi_label": bool(multi_label),
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

