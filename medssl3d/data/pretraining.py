"""Image pools for self-supervised pretraining, split into a training part and a held-out part.

Pretraining uses every image there is, labels unused: a Decathlon folder's training and test images
(3D), or every 2D image file under a folder (class folders, an image folder next to a CSV, an
EyePACS-style dump) and every image of the MedMNIST ``.npz`` archives there (or of one given ``.npz``
file), plus any extra unlabelled folders. A small held-out part (``val_fraction``) is kept aside so the
pretext accuracy or loss can be watched on images the encoder did not train on.

``.npz`` images are pooled as references (``"<file>.npz#train_images[12]"``,
:func:`~medssl3d.data.images.npz_reference`), which the 2D loading transform reads back, so
``pretrain_split.json`` stays small.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medssl3d.data.classification.split import resolve_group_pattern
from medssl3d.data.errors import DatasetNotFoundError, DataValidationError
from medssl3d.data.images import npz_reference, npz_shapes
from medssl3d.data.pool import prepare_unlabelled_pool
from medssl3d.data.split_files import write_split_json
from medssl3d.data.splits import split_dataset
from medssl3d.utils.checks import check_spatial_dims

__all__ = ["IMAGE_2D_SUFFIXES", "list_2d_images", "list_npz_images", "prepare_pretraining_split"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

#: File suffixes (lower case) of 2D images.
IMAGE_2D_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def list_2d_images(folder: PathLike, exclude_pattern: str | None = None) -> list[dict]:
    """Every 2D image file under ``folder`` (recursively, hidden entries skipped) as ``[{"image": path}]``, sorted.

    Raises:
        DatasetNotFoundError: ``folder`` is not a directory.
    """
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


# MedMNIST image arrays first, in split order; any other "*_images" array after them
_ARRAY_ORDER = {"train_images": 0, "val_images": 1, "test_images": 2}


def _npz_files(path: Path) -> tuple[Path, list[Path]]:
    """The folder references are relative to, and the ``.npz`` files: ``path`` itself or those under it."""
    if path.is_file() and path.suffix.lower() == ".npz":
        return path.parent, [path]
    if not path.is_dir():
        raise DatasetNotFoundError(f"{str(path)!r} is neither a folder nor an .npz file.")
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files += [Path(dirpath) / n for n in filenames if n.lower().endswith(".npz") and not n.startswith(".")]
    return path, sorted(files)


def _array_references(npz: Path, rel: str, array: str, shape: tuple[int, ...],
                      pattern: re.Pattern | None) -> list[str]:
    """References to the images of one ``*_images`` array not excluded by ``pattern``; checks they are 2D."""
    refs = [
        npz_reference(npz, array, i)
        for i in range(shape[0] if shape else 0)
        if pattern is None or not pattern.search(f"{rel}#{array}[{i}]")
    ]
    if refs and not (len(shape) == 3 or (len(shape) == 4 and shape[-1] in (1, 3, 4))):
        raise DataValidationError(
            f"{npz}: {array} has shape {shape}, not (N, H, W) or (N, H, W, C) 2D images (3D volumes?); "
            "leave it out with exclude_pattern or pass another dataset_dir."
        )
    return refs


def list_npz_images(source: PathLike, exclude_pattern: str | None = None) -> list[dict]:
    """Every image of every ``*_images`` array of MedMNIST-style ``.npz`` archives, as npz references.

    ``source`` is one ``.npz`` file or a folder searched recursively (hidden entries skipped) for ``.npz``
    files. Each ``<part>_images`` array (MedMNIST: ``train_images``, ``val_images``, ``test_images``) of
    shape (N, H, W) or (N, H, W, C) with C in 1, 3, 4 gives N items ``{"image": "<abs file>.npz#<part>_images[i]"}``
    (:func:`~medssl3d.data.images.npz_reference`), in file, array and index order; labels are not
    read. Only the array headers are read, so listing a large archive is cheap.

    Args:
        source: an ``.npz`` file or a folder.
        exclude_pattern: regular expression searched in ``"<path relative to the folder>#<array>[<index>]"``
            (for a file: ``"<file name>#<array>[<index>]"``); matching images are skipped, e.g.
            ``"test_images"`` keeps the test images out of a pretraining pool. MONAI's bundle config parser
            rewrites ``#`` in every string value to its id separator ``::`` (``--exclude_pattern '#test_images'``
            arrives as ``'::test_images'``), so ``::`` in the pattern is read back as ``#``.

    Returns:
        ``[{"image": reference}, ...]`` (empty for a folder without ``.npz`` image arrays).

    Raises:
        DatasetNotFoundError: ``source`` is neither a folder nor an ``.npz`` file.
        DataValidationError: an unreadable archive; a given ``.npz`` file without ``*_images`` arrays; an
            ``*_images`` array whose shape is not that of 2D images (e.g. MedMNIST 3D volumes).

    Example:
        >>> list_npz_images("pneumoniamnist.npz")[:1]  # doctest: +SKIP
        [{'image': '/data/pneumoniamnist.npz#train_images[0]'}]
    """
    path = Path(source)
    root, files = _npz_files(path)
    # "::" is what MONAI's config parser makes of a "#" typed in a bundle value (see exclude_pattern above)
    pattern = re.compile(exclude_pattern.replace("::", "#")) if exclude_pattern else None
    found: list[dict] = []
    for npz in files:
        shapes = npz_shapes(npz)
        arrays = sorted((a for a in shapes if a.endswith("_images")), key=lambda a: (_ARRAY_ORDER.get(a, 3), a))
        if not arrays:
            if files == [path]:
                raise DataValidationError(
                    f"{npz} has no '*_images' array (arrays: {sorted(shapes)}); expected a MedMNIST archive "
                    "(train_images, val_images, test_images)."
                )
            logger.warning("%s has no '*_images' array (arrays: %s); not pooled", npz, sorted(shapes))
            continue
        rel = npz.relative_to(root).as_posix()
        for array in arrays:
            found += [{"image": r} for r in _array_references(npz, rel, array, shapes[array], pattern)]
    return found


def _pool_folders(dataset_dir: PathLike, extra_folders: list[PathLike], spatial_dims: int) -> list[PathLike]:
    """``dataset_dir`` (when given) and ``extra_folders``, each checked to be a folder (2D: or an ``.npz`` file).

    Raises:
        ValueError: no folder at all.
        DatasetNotFoundError: a folder that does not exist.
    """
    folders = ([dataset_dir] if dataset_dir else []) + extra_folders
    if not folders:
        raise ValueError("no images to pretrain on: pass dataset_dir=<folder> (and/or extra unlabelled folders).")
    for folder in folders:
        if spatial_dims == 2 and Path(folder).is_file() and Path(folder).suffix.lower() == ".npz":
            continue
        if not Path(folder).is_dir():
            raise DatasetNotFoundError(
                f"pretraining folder {str(folder)!r} does not exist or is not a directory"
                + (" (nor an .npz file)." if spatial_dims == 2 else ".")
            )
    return folders


def _pool_2d(folders: Sequence[PathLike], exclude_pattern: str | None) -> list[dict]:
    """Every 2D image file and ``.npz`` image under ``folders``, each once, in folder order.

    Raises:
        ValueError: no image found.
    """
    items: list[dict] = []
    seen: set[str] = set()
    for folder in folders:
        files = [] if Path(folder).is_file() else list_2d_images(folder, exclude_pattern=exclude_pattern)
        for item in files + list_npz_images(folder, exclude_pattern=exclude_pattern):
            if item["image"] not in seen:
                seen.add(item["image"])
                items.append(item)
    if not items:
        raise ValueError(
            f"no 2D images ({', '.join(IMAGE_2D_SUFFIXES)}, or '*_images' arrays of .npz archives) found "
            f"under {[str(f) for f in folders]}."
        )
    return items


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
            plain folder of volumes; 2D: a folder searched recursively for image files and MedMNIST
            ``.npz`` archives (every image of every ``*_images`` array, :func:`list_npz_images`), or one
            ``.npz`` file. ``""`` with ``extra_folders``: only those.
        output_dir: where ``pretrain_split.json`` is written (created).
        spatial_dims: 2 or 3.
        extra_folders: more unlabelled folders (2D: or ``.npz`` files) to pool.
        val_fraction: held-out fraction, for the pretext accuracy/loss; 0 disables it.
        split_seed: seed of the held-out draw.
        exclude_pattern: regular expression of relative paths to skip in plain folders (e.g. label maps);
            for ``.npz`` images it is searched in ``"<relative path>#<array>[<index>]"`` (e.g. ``"test_images"``).
        group_pattern: keep images with the same captured id (e.g. one patient's two eyes) on one side;
            ``"auto"``: ``Patient\\d+`` when every file name carries one, no grouping when none does
            (:func:`~medssl3d.data.classification.resolve_group_pattern`).

    Returns:
        ``{"train": [...], "validation": [...], "num_images": N, ...}``.

    Raises:
        DatasetNotFoundError / ValueError: nothing to pool, or no image found (the message names the folders).
        DataValidationError: an unusable ``.npz`` archive (see :func:`list_npz_images`).

    Example:
        >>> split = prepare_pretraining_split("pneumoniamnist.npz", "runs/pre", spatial_dims=2)  # doctest: +SKIP
        >>> split["num_images"]  # doctest: +SKIP
        5856
    """
    spatial_dims = check_spatial_dims(spatial_dims)
    if isinstance(extra_folders, (str, os.PathLike)):
        extra_folders = [extra_folders]
    folders = _pool_folders(dataset_dir, list(extra_folders), spatial_dims)
    if spatial_dims == 3:
        decathlon = bool(dataset_dir) and (Path(dataset_dir) / "dataset.json").is_file()
        items = prepare_unlabelled_pool(
            dataset_dir if decathlon else None,
            extra_folders=list(extra_folders) + ([] if decathlon or not dataset_dir else [dataset_dir]),
            exclude_pattern=exclude_pattern,
        )
    else:
        items = _pool_2d(folders, exclude_pattern)
    if val_fraction and len(items) < 2:
        raise ValueError(f"found only {len(items)} image(s) in {[str(f) for f in folders]}; need at least 2 "
                         "to hold one out (or pass val_fraction=0).")
    if group_pattern is not None and str(group_pattern).strip().lower() == "auto":
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
