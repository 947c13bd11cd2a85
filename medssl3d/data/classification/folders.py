"""The ``"folders"`` layout: one sub-folder of images per class, optionally inside ``train/``, ``val/``, ``test/``.

APTOS-style folders (``train/0 .. train/4``, ``test/0 .. test/4``) or plain class folders (``0/ 1/ ... 4/``
or ``NORMAL/ PNEUMONIA/``) directly in the dataset folder. Integer folder names are the labels; other names
are sorted and numbered from 0. Class folders hold one label per image, so they are single-label only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

from medssl3d.data.classification.layout import images_in, part_folders, visible_dirs
from medssl3d.data.errors import DataValidationError
from medssl3d.data.images import CLASSIFICATION_IMAGE_SUFFIXES

__all__ = ["read_folders"]

logger = logging.getLogger(__name__)


def _label_index(folder_names: Sequence[str]) -> tuple[dict[str, int], list[str] | None]:
    """Label of each class folder name, and the class names (``None`` when the names are the integer labels)."""
    names = sorted(set(folder_names))
    if all(re.fullmatch(r"\d+", n) for n in names):
        return {n: int(n) for n in names}, None
    return {n: i for i, n in enumerate(names)}, names


def read_folders(path: Path, num_classes: int | None) -> tuple[list[dict], list[str] | None]:
    """Items of a class-folder layout and its class names.

    Args:
        path: the dataset folder (class folders, or part folders holding them).
        num_classes: the number of classes, if known; checked against the folder names.

    Returns:
        ``([{"image": abs path, "label": int[, "section": part]}, ...], names)``; ``names`` is ``None`` for
        integer folder names (the labels themselves).

    Raises:
        DataValidationError: no image in any class folder, or ``num_classes`` differs from the number of
            (non-integer) class folders.
    """
    parts = part_folders(path)
    roots = parts if parts else {None: path}
    class_dirs: dict[str | None, list[Path]] = {part: visible_dirs(root) for part, root in roots.items()}
    index, names = _label_index([d.name for dirs in class_dirs.values() for d in dirs])
    items: list[dict] = []
    empty = []
    for part, dirs in class_dirs.items():
        for d in dirs:
            files = images_in(d)
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
