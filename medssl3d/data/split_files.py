"""``split.json``: the file a training run writes to record its split, read back by evaluation and users.

A split file holds the ``train``, ``validation`` and ``test`` datalists and the settings that made them
(seeds, fold, label fraction, class names). :func:`write_split_json` writes it atomically,
:func:`load_split_json` reads and checks it, and :func:`split_part` picks one part (bundle configs call it
as ``medssl3d.data.split_part``). The splits themselves come from :mod:`medssl3d.data.splits`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from medssl3d.utils.io import atomic_write_json

__all__ = ["SPLIT_PARTS", "write_split_json", "load_split_json", "split_part"]

PathLike = str | os.PathLike

#: The datalists every split file holds.
SPLIT_PARTS: tuple[str, ...] = ("train", "validation", "test")
_PART_ALIASES = {"training": "train", "val": "validation", "valid": "validation", "testing": "test"}


def write_split_json(split: Mapping, path: PathLike) -> Path:
    """Write a split dictionary as JSON, atomically (a temporary file in the same folder, then ``os.replace``).

    Args:
        split: JSON-able dictionary (paths and numpy scalars are converted).
        path: the output file; missing parent folders are created.

    Returns:
        the path written.
    """
    return atomic_write_json(split, Path(os.fspath(path)).expanduser())


def load_split_json(path: PathLike) -> dict:
    """Read a ``split.json`` written by :func:`write_split_json` (e.g. through ``prepare_segmentation_split``).

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
        split: the dictionary from :func:`~medssl3d.data.segmentation.prepare_segmentation_split` or
            :func:`load_split_json`.
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
