"""Multi-label findings: the finding vocabulary, multi-hot labels and the names of the C findings.

Multi-label data (``multi_label=True``: several findings per image, each item's ``"label"`` a multi-hot list
of C ints in {0, 1}) comes from a CSV, either one column of finding names separated by ``|`` (NIH
ChestX-ray14 ``Finding Labels``: ``"Atelectasis|Effusion"``; the ``no_finding`` name, ``"No Finding"`` by
default, means none) or one 0/1 column per finding (``label_columns``, CheXpert-like; blank = 0), or from a
MedMNIST archive whose ``*_labels`` are (N, C) multi-hot (ChestMNIST: C = 14). Class folders hold one label
per image and are single-label only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medssl3d.data.classification.layout import format_problems
from medssl3d.data.errors import DataValidationError

__all__ = [
    "DEFAULT_NO_FINDING",
    "FINDING_SEPARATOR",
    "parse_label_columns",
    "finding_vocabulary",
    "to_multi_hot",
    "finding_names",
]

#: Separator of the finding names in one CSV cell (NIH ChestX-ray14: ``"Atelectasis|Effusion"``).
FINDING_SEPARATOR = "|"
#: The finding name that means "no finding" (all zeros) in a ``|``-separated column (NIH ChestX-ray14).
DEFAULT_NO_FINDING = "No Finding"


def parse_label_columns(label_columns: Any) -> list[str] | None:
    """``label_columns`` as a list of column names (a comma-separated string is split); ``None`` when not given.

    Raises:
        ValueError: a column listed twice.
    """
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


def finding_vocabulary(items: Sequence[Mapping], class_names: Sequence[str] | None, no_finding: str | None,
                       csv_path: Path, column: str | None) -> list[str]:
    """The finding names of a ``|``-separated column: ``class_names`` (every finding must be one), else sorted.

    Args:
        items: CSV items whose ``"label"`` is the tuple of finding names and ``"_line"`` the CSV line.
        class_names: the finding names, or ``None`` to take the sorted names seen.
        no_finding: the name meaning "no finding" (must not be one of ``class_names``).
        csv_path, column: where the findings come from, for the messages.

    Raises:
        DataValidationError: no finding at all (without ``class_names``), or findings not in ``class_names``.
        ValueError: ``class_names`` lists a name twice or includes ``no_finding``.
    """
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
            f"{format_problems(unknown)}; add them to class_names (or pass class_names=[] to take the names from "
            "the data)."
        )
    return names


def to_multi_hot(items: Sequence[dict], names: Sequence[str]) -> None:
    """Replace each item's finding names (``"label"``) by a multi-hot list over ``names``, in place."""
    index = {n: k for k, n in enumerate(names)}
    for item in items:
        hot = [0] * len(names)
        for finding in item["label"]:
            hot[index[finding]] = 1
        item["label"] = hot


def finding_names(num_findings: int, names: Sequence[str] | None, where: str) -> list[str]:
    """Names of the C findings of multi-label data: ``names`` (one per finding) or ``finding_0 .. finding_{C-1}``.

    Raises:
        ValueError: not one name per finding, or a name listed twice.
    """
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
