"""Image pools for self-supervised pretraining, split into a training part and a held-out part.

Pretraining uses every image there is, labels unused: a Decathlon folder's training and test images
(3D), or every 2D image file under a folder (class folders, an image folder next to a CSV, an
EyePACS-style dump), plus any extra unlabelled folders. A small held-out part (``val_fraction``) is kept
aside so the pretext accuracy or loss can be watched on images the encoder did not train on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medssl3d.data.decathlon import DatasetNotFoundError
from medssl3d.data.splits import prepare_unlabelled_pool, split_dataset, write_split_json

__all__ = ["IMAGE_2D_SUFFIXES", "list_2d_images", "prepare_pretraining_split"]

PathLike = str | os.PathLike

#: File suffixes (lower case) of 2D images.
IMAGE_2D_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def list_2d_images(folder: PathLike, exclude_pattern: str | None = None) -> list[dict]:
    """Every 2D image file under ``folder`` (recursively, hidden entries skipped) as ``[{"image": path}]``, sorted.

    Raises:
        DatasetNotFoundError: ``folder`` is not a directory.
    """
    import re

    root = Path(folder)
    if not root.is_dir():
        raise DatasetNotFoundError(f"image folder {str(root)!r} does not exist or is not a directory.")
    pattern = re.compile(exclude_pattern) if exclude_pattern else None
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(IMAGE_2D_SUFFIXES):
                continue
            path = Path(dirpath) / name
            if pattern is not None and pattern.search(path.relative_to(root).as_posix()):
                continue
            found.append(str(path.resolve()))
    return [{"image": p} for p in sorted(found)]


def prepare_pretraining_split(
    dataset_dir: PathLike,
    output_dir: PathLike,
    spatial_dims: int = 3,
    extra_folders: Sequence[PathLike] | PathLike = (),
    val_fraction: float = 0.1,
    split_seed: int = 0,
    exclude_pattern: str | None = None,
    group_pattern: str | None = None,
) -> dict[str, Any]:
    """Pool every image for pretraining, hold out ``val_fraction`` of it, and write ``pretrain_split.json``.

    Args:
        dataset_dir: 3D: a Decathlon folder (``dataset.json``; training and test images are pooled) or a
            plain folder of volumes; 2D: a folder searched recursively for image files. ``""`` with
            ``extra_folders``: only those.
        output_dir: where ``pretrain_split.json`` is written (created).
        spatial_dims: 2 or 3.
        extra_folders: more unlabelled folders to pool.
        val_fraction: held-out fraction, for the pretext accuracy/loss; 0 disables it.
        split_seed: seed of the held-out draw.
        exclude_pattern: regular expression of relative paths to skip in plain folders (e.g. label maps).
        group_pattern: keep images with the same captured id (e.g. one patient's two eyes) on one side;
            ``"auto"``: ``Patient\\d+`` when every file name carries one, no grouping when none does
            (:func:`~medssl3d.data.classification.resolve_group_pattern`).

    Returns:
        ``{"train": [...], "validation": [...], "num_images": N, ...}``.

    Raises:
        DatasetNotFoundError / ValueError: nothing to pool, or no image found (the message names the folders).
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    if isinstance(extra_folders, (str, os.PathLike)):
        extra_folders = [extra_folders]
    folders = [f for f in ([dataset_dir] if dataset_dir else []) + list(extra_folders)]
    if not folders:
        raise ValueError("no images to pretrain on: pass dataset_dir=<folder> (and/or extra unlabelled folders).")
    for folder in folders:
        if not Path(folder).is_dir():
            raise DatasetNotFoundError(f"pretraining folder {str(folder)!r} does not exist or is not a directory.")
    if spatial_dims == 3:
        decathlon = bool(dataset_dir) and (Path(dataset_dir) / "dataset.json").is_file()
        items = prepare_unlabelled_pool(
            dataset_dir if decathlon else None,
            extra_folders=list(extra_folders) + ([] if decathlon or not dataset_dir else [dataset_dir]),
            exclude_pattern=exclude_pattern,
        )
    else:
        items, seen = [], set()
        for folder in folders:
            for item in list_2d_images(folder, exclude_pattern=exclude_pattern):
                if item["image"] not in seen:
                    seen.add(item["image"])
                    items.append(item)
        if not items:
            raise ValueError(
                f"no 2D images ({', '.join(IMAGE_2D_SUFFIXES)}) found under {[str(f) for f in folders]}."
            )
    if val_fraction and len(items) < 2:
        raise ValueError(f"found only {len(items)} image(s) in {[str(f) for f in folders]}; need at least 2 "
                         "to hold one out (or pass val_fraction=0).")
    if group_pattern is not None and str(group_pattern).strip().lower() == "auto":
        from medssl3d.data.classification import resolve_group_pattern

        group_pattern = resolve_group_pattern(items, group_pattern)
    parts = split_dataset(items, seed=split_seed, val_fraction=val_fraction, test_fraction=0.0,
                          group_pattern=group_pattern)
    split = {
        "train": parts["train"],
        "validation": parts["validation"],
        "num_images": len(items),
        "dataset_dir": str(dataset_dir),
        "extra_folders": [str(f) for f in extra_folders],
        "spatial_dims": spatial_dims,
        "val_fraction": float(val_fraction),
        "split_seed": int(split_seed),
    }
    write_split_json(split, Path(output_dir) / "pretrain_split.json")
    return split
