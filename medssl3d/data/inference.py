"""Unlabelled 2D images to classify: list them (folder, CSV or ``.npz``) and check them before predicting.

:func:`list_classification_images` turns a folder of images, a CSV naming image files (the labelled reader's
column and folder rules, labels ignored) or one image array of an ``.npz`` archive into items
``{"image": <absolute path or npz reference>}``. :func:`check_classification_images` opens every image once,
before any prediction, and refuses (or with ``on_error="skip"`` drops and records) the ones the model cannot
take: unreadable files, images that are not 2D, channel counts that do not convert to the network's
``in_channels`` (the rules of :func:`~medssl3d.data.images.read_classification_image`, which the 2D loading
transform applies), non-numeric or non-finite pixels, and, when ``image_dtype`` is given, another bit depth
than the model was trained on.
Together they are the data side of a 2D classification bundle's ``inference.json``.
"""

from __future__ import annotations

import csv as _csv
import io
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medssl3d.data.classification.csv_table import IMAGE_COLUMNS, image_base, pick_column, read_csv_rows
from medssl3d.data.classification.layout import find_csv
from medssl3d.data.errors import DatasetNotFoundError, DataValidationError
from medssl3d.data.images import (
    CLASSIFICATION_IMAGE_SUFFIXES,
    channel_first,
    check_in_channels,
    load_npz_image,
    match_channels,
    npz_reference,
    npz_shapes,
    parse_npz_reference,
    read_image_file,
)

__all__ = ["INFERENCE_IMAGE_SUFFIXES", "ON_ERROR_MODES", "list_classification_images", "check_classification_images"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

#: Suffixes (lower case) of the image files listed from a folder: what the 2D image reader reads.
INFERENCE_IMAGE_SUFFIXES: tuple[str, ...] = (*CLASSIFICATION_IMAGE_SUFFIXES, ".nii", ".nii.gz")
#: What :func:`check_classification_images` does with unusable images.
ON_ERROR_MODES: tuple[str, ...] = ("raise", "skip")
# npz arrays tried, in order, when npz_array is not given (then: the only "*_images" array)
_NPZ_ARRAYS = ("test_images", "images")
_SHOWN = 20  # bad images / missing files named in one message


def _listing(entries: Sequence[str], sep: str = "\n  - ", lead: str = "\n  - ") -> str:
    """The first :data:`_SHOWN` entries joined, then how many more there are."""
    text = lead + sep.join(entries[:_SHOWN])
    if len(entries) > _SHOWN:
        text += f"{sep}... and {len(entries) - _SHOWN} more"
    return text


# ------------------------------------------------------------------------------------------------- listing


def list_classification_images(
    source: PathLike,
    csv: PathLike | None = None,
    image_column: str | None = None,
    image_dir: PathLike | None = None,
    npz_array: str | None = None,
) -> list[dict]:
    """The unlabelled 2D images to classify, as items ``{"image": <absolute path or npz reference>}``.

    - ``source`` a folder: every image file under it (recursively; suffixes :data:`INFERENCE_IMAGE_SUFFIXES`;
      hidden files and folders skipped), sorted by path relative to ``source``. With ``csv`` the CSV lists
      the images instead.
    - ``source`` a ``.csv`` file, or ``csv`` given (absolute, or relative to ``source``): the files of its
      image column (``image_column``, else the first of ``image``, ``file``, ``filename``, ... ``id_code``,
      ``id``, ``name`` as for labelled CSVs), in row order, repeated names once. Names are relative to
      ``image_dir``, else to the CSV's folder, its ``images/``, ``source`` or ``source/images/``; names without
      a suffix get the one the first file has. Label columns are ignored.
    - ``source`` a ``.npz`` file: every image of one array, in index order, as
      :func:`~medssl3d.data.images.npz_reference` strings: ``npz_array``, else ``test_images``,
      else ``images``, else the only array whose name ends with ``_images``.
    - ``source`` one image file: that image.

    Args:
        source: a folder, CSV, ``.npz`` or image file.
        csv: a CSV listing the images (with a folder ``source``).
        image_column: the CSV column of file names.
        image_dir: the folder the CSV's names are relative to.
        npz_array: the ``.npz`` array holding the images, (N, H, W) or (N, H, W, C) / (N, C, H, W) with C <= 4.

    Returns:
        the items, in a stable order (see above).

    Raises:
        DatasetNotFoundError: ``source`` (or ``csv``, ``image_dir``) does not exist.
        DataValidationError: no image found (the message names the folder and the suffixes looked for); files a
            CSV lists that do not exist (all counted, the first 20 named); an ``.npz`` file whose image array
            cannot be told (its arrays listed; pass ``npz_array``) or is not a stack of 2D images.

    Example:
        >>> list_classification_images("new_fundus_photos/")[:1]  # doctest: +SKIP
        [{'image': '/data/new_fundus_photos/Patient042_L.jpg'}]
    """
    if source is None or not os.fspath(source).strip():
        raise DatasetNotFoundError(
            "no images given (source is empty); pass the images to classify (bundle: --input): a folder of images, "
            "a CSV listing them, or an .npz file."
        )
    path = Path(os.fspath(source)).expanduser()
    if not path.exists():
        raise DatasetNotFoundError(
            f"Cannot find {path}; pass the images to classify: a folder of images, a CSV listing them, or an .npz file."
        )
    if csv is not None and os.fspath(csv).strip():
        folder = path if path.is_dir() else path.parent
        return _csv_images(find_csv(folder, csv), folder, image_column, image_dir)
    if path.is_dir():
        return _folder_images(path)
    name = path.name.lower()
    if name.endswith(".csv"):
        return _csv_images(path, path.parent, image_column, image_dir)
    if name.endswith(".npz"):
        return _npz_images(path, npz_array)
    if name.endswith(INFERENCE_IMAGE_SUFFIXES):
        return [{"image": str(path.resolve())}]
    raise DataValidationError(
        f"{path} is neither a folder, a CSV, an .npz file nor an image ({', '.join(INFERENCE_IMAGE_SUFFIXES)})."
    )


def _folder_images(root: Path) -> list[dict]:
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(INFERENCE_IMAGE_SUFFIXES):
                file = Path(dirpath) / name
                found.append((file.relative_to(root).as_posix(), file))
    if not found:
        others = sorted(p.name for p in root.iterdir() if p.suffix.lower() in (".csv", ".npz"))
        hint = f"; it holds {others}: pass one of them as source" if others else ""
        raise DataValidationError(
            f"no images found in {root} (looked for {', '.join(INFERENCE_IMAGE_SUFFIXES)}, hidden files and folders "
            f"skipped){hint}."
        )
    found.sort(key=lambda t: t[0])
    return [{"image": str(file.resolve())} for _, file in found]


def _csv_images(csv_path: Path, folder: Path, image_column: str | None, image_dir: PathLike | None) -> list[dict]:
    columns, rows = read_csv_rows(csv_path)
    col = pick_column(columns, image_column, IMAGE_COLUMNS, (), "image file", "image_column", csv_path)
    base, suffix = image_base(csv_path, folder, image_dir, rows, col)
    found: dict[str, None] = {}
    missing: list[str] = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        name = (row.get(col) or "").strip()
        if not name:
            missing.append(f"line {line}: empty {col!r}")
            continue
        file = Path(name + suffix) if Path(name).is_absolute() else base / (name + suffix)
        if not file.is_file():
            missing.append(f"line {line}: {file}")
            continue
        found.setdefault(str(file.resolve()))
    if missing:
        raise DataValidationError(
            f"{len(missing)} image(s) listed in {csv_path} (column {col!r}) do not exist:{_listing(missing)}\n"
            "Fix the CSV, restore the files, or pass image_dir=<folder holding them>."
        )
    repeated = len(rows) - len(found)
    if repeated:
        logger.warning("%s lists %d image(s) more than once; each is predicted once", csv_path, repeated)
    logger.info("%s: %d images to classify from column %r", csv_path, len(found), col)
    return [{"image": p} for p in found]


def _npz_images(path: Path, npz_array: str | None) -> list[dict]:
    shapes = npz_shapes(path)  # headers only: nothing is decompressed
    if npz_array is not None and str(npz_array).strip():
        array = str(npz_array).strip()
        if array not in shapes:
            raise DataValidationError(
                f"{path} has no array {array!r} (arrays: {sorted(shapes)}); pass npz_array=<name>."
            )
    else:
        named = [a for a in _NPZ_ARRAYS if a in shapes]
        suffixed = [a for a in sorted(shapes) if a.endswith("_images")]
        if not named and len(suffixed) != 1:
            raise DataValidationError(
                f"cannot tell which array of {path} holds the images to classify (arrays: {sorted(shapes)}; looked "
                f"for {' or '.join(_NPZ_ARRAYS)}, else one '*_images' array); pass npz_array=<name>."
            )
        array = named[0] if named else suffixed[0]
    shape = shapes[array]
    if len(shape) not in (3, 4) or (len(shape) == 4 and min(shape[1], shape[3]) > 4):
        raise DataValidationError(
            f"{path}: {array} has shape {shape}, not a stack of 2D images (N, H, W), (N, H, W, C) or (N, C, H, W) "
            "with C <= 4; pass npz_array=<the image array>."
        )
    if shape[0] == 0:
        raise DataValidationError(f"no images found in {path}: array {array!r} is empty.")
    logger.info("%s: %d images to classify from array %r", path, shape[0], array)
    return [{"image": npz_reference(path, array, i)} for i in range(shape[0])]


# ------------------------------------------------------------------------------------------------ checking


def _check_image_dtype(image_dtype: Any) -> np.dtype | None:
    """``image_dtype`` as a numpy dtype; ``None``/``""``/``"null"``/``"none"``/``"any"`` mean any depth."""
    if image_dtype is None:
        return None
    if isinstance(image_dtype, str) and image_dtype.strip().lower() in ("", "null", "none", "any"):
        return None
    try:
        dtype = np.dtype(image_dtype.strip() if isinstance(image_dtype, str) else image_dtype)
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "biuf":
        raise ValueError(
            f"image_dtype must be a numeric numpy dtype name such as 'uint8' or 'uint16', or None for any bit "
            f"depth; got {image_dtype!r}."
        )
    return dtype.newbyteorder("=")


def _read_pixels(src: Any) -> np.ndarray:
    """The image as stored: Pillow (palette, 1-bit and grey+alpha converted, 16-bit grey kept as uint16), an
    npz reference, another file through the training reader, or an array.

    Raises:
        FileNotFoundError: ``"file not found"``.
        Exception: the reader's own error (the item is named in the report).
    """
    if isinstance(src, os.PathLike):
        src = os.fspath(src)
    if isinstance(src, str):
        if parse_npz_reference(src) is not None:
            return np.asarray(load_npz_image(src))
        if not os.path.isfile(src):
            raise FileNotFoundError("file not found")
        try:
            return read_image_file(src, keep_depth=True)
        except ValueError as e:  # read_image_file names the file; the report names it already
            raise (e.__cause__ if isinstance(e.__cause__, Exception) else e) from None
    import torch

    if isinstance(src, torch.Tensor):
        return src.detach().cpu().numpy()
    if isinstance(src, np.ndarray):
        return src
    raise TypeError(f"not a file path, npz reference or array but {type(src).__name__}")


def _problems(array: np.ndarray, in_channels: int | None, dtype: np.dtype | None) -> list[str]:
    """Why ``array`` cannot be fed to the network (empty when it can)."""
    if array.dtype.kind not in "biuf":
        return [f"pixel type {array.dtype} is not numeric (bool, integer or float images only)"]
    try:
        image = channel_first(array, "the image")
    except ValueError as e:
        return [str(e).split(" (volumes", 1)[0]]
    problems = []
    if 0 in image.shape[1:]:
        problems.append(f"the image is empty (shape {tuple(array.shape)})")
    try:  # the channel rule alone: a 1x1 stand-in with the image's channel count
        match_channels(np.zeros((image.shape[0], 1, 1), np.float32), in_channels, "the image")
    except ValueError as e:
        problems.append(str(e))
    stored = array.dtype.newbyteorder("=")
    if dtype is not None and stored != dtype:
        problems.append(
            f"stored as {stored.name} but image_dtype={dtype.name}: the model was trained on {dtype.name} images; "
            f"convert the image to {dtype.name}, or pass image_dtype=null to accept any bit depth (intensities are "
            "then min-max scaled per image)"
        )
    if array.dtype.kind == "f" and array.size and not (np.isfinite(array.min()) and np.isfinite(array.max())):
        problems.append("the image holds NaN or infinite values")
    return problems


def _name(item: Any, index: int) -> str:
    src = item.get("image") if isinstance(item, Mapping) else None
    return os.fspath(src) if isinstance(src, (str, os.PathLike)) else f"item {index}"


def _why_unusable(item: Any, in_channels: int | None, dtype: np.dtype | None) -> str | None:
    """Why the network cannot take ``item``'s image (``None`` when it can)."""
    if not isinstance(item, Mapping) or "image" not in item:
        return "the item has no 'image' key"
    try:
        array = _read_pixels(item["image"])
    except Exception as e:  # any reader failure is reported, not raised
        reason = " ".join(str(e).split())[:200]
        if isinstance(e, FileNotFoundError) and reason == "file not found":
            return reason
        return f"cannot be read ({type(e).__name__}: {reason})"
    problems = _problems(array, in_channels, dtype)
    return "; ".join(problems) if problems else None


def _inspect(items: list, in_channels: int | None, dtype: np.dtype | None,
             progress: bool) -> tuple[list[dict], list[tuple[str, str]]]:
    """The usable items, and ``(name, reason)`` of each unusable one, in order."""
    iterator: Any = items
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(items, desc="checking images")
    good: list[dict] = []
    bad: list[tuple[str, str]] = []
    for index, item in enumerate(iterator):
        reason = _why_unusable(item, in_channels, dtype)
        if reason is None:
            good.append(item)
        else:
            bad.append((_name(item, index), reason))
    return good, bad


def _report(good: list[dict], bad: list[tuple[str, str]], total: int, on_error: str,
            skipped_file: PathLike | None) -> list[dict]:
    """``good`` after logging; raise for unusable images unless ``on_error="skip"`` (then record them)."""
    if not bad:
        if on_error == "skip" and skipped_file is not None:
            _write_skipped(skipped_file, bad)
        logger.info("all %d images can be classified", total)
        return good
    lines = _listing([f"{n}: {r}" for n, r in bad])
    if on_error == "raise" or not good:
        hint = (
            "Fix or remove them, or pass on_error='skip' (bundle: --on_bad_image skip) to classify the others."
            if good else "No image can be classified; check the images and in_channels/image_dtype."
        )
        raise DataValidationError(f"{len(bad)} of {total} image(s) cannot be classified:{lines}\n{hint}")
    if skipped_file is not None:
        _write_skipped(skipped_file, bad)
    logger.warning(
        "skipping %d of %d image(s) that cannot be classified%s:%s",
        len(bad), total, f" (listed in {skipped_file})" if skipped_file is not None else "", lines,
    )
    return good


def check_classification_images(
    items: Sequence[Mapping],
    in_channels: int | None,
    image_dtype: str | None = None,
    on_error: str = "raise",
    skipped_file: PathLike | None = None,
    progress: bool = False,
) -> list[dict]:
    """Open every image once, before any prediction, and keep those the network can take.

    An image is usable when it can be read (Pillow for :data:`~medssl3d.data.images.CLASSIFICATION_IMAGE_SUFFIXES`
    files, the training reader for others such as 2D NIfTI, the archive for npz references), is 2D ((H, W),
    (H, W, C) or (C, H, W) with C <= 4), has a channel count that converts to ``in_channels`` (grey is repeated,
    RGB/RGBA become grey, RGBA becomes RGB; a 2-channel image, or RGB into a 2-channel network, does not), holds
    real numbers (bool, integer or float; no NaN or inf) and, with ``image_dtype``, is stored with that dtype
    (as numpy reads it after Pillow's mode conversion: ``uint8`` for 8-bit PNG/JPEG, ``uint16`` for 16-bit grey
    PNG, ``int32`` for 32-bit integer TIFF, ``float32`` ...).

    Args:
        items: ``[{"image": <path or npz reference>}, ...]``, e.g. from :func:`list_classification_images`.
        in_channels: the network's input channels (``None``: any of 1-4).
        image_dtype: the dtype the model was trained on, e.g. ``"uint8"``; ``None`` accepts any bit depth.
        on_error: ``"raise"``: one error naming every unusable image; ``"skip"``: warn, drop them and go on.
        skipped_file: with ``"skip"``, a CSV (``image,reason``) of the dropped images, written atomically (a
            header alone when none was dropped).
        progress: show a progress bar.

    Returns:
        the usable items (the same dicts), in their order.

    Raises:
        ValueError: an ``on_error`` other than ``"raise"``/``"skip"``, a bad ``in_channels`` or ``image_dtype``.
        DataValidationError: with ``"raise"`` any unusable image, with ``"skip"`` when no image is usable; the
            message lists each (file name or npz reference: reason; the first 20, then a count).

    Example:
        >>> items = check_classification_images(list_classification_images("new_photos/"), in_channels=3,
        ...                                     image_dtype="uint8", on_error="skip",
        ...                                     skipped_file="out/skipped.csv")  # doctest: +SKIP
    """
    if not isinstance(on_error, str) or on_error.strip().lower() not in ON_ERROR_MODES:
        raise ValueError(f"on_error must be one of {list(ON_ERROR_MODES)}, got {on_error!r}.")
    on_error = on_error.strip().lower()
    in_channels = check_in_channels(in_channels)
    dtype = _check_image_dtype(image_dtype)
    items = list(items)
    if not items:
        raise DataValidationError("no images to classify: the list of items is empty.")
    good, bad = _inspect(items, in_channels, dtype, progress)
    return _report(good, bad, len(items), on_error, skipped_file)


def _write_skipped(path: PathLike, bad: Sequence[tuple[str, str]]) -> None:
    from medssl3d.utils.io import atomic_write

    buffer = io.StringIO()
    writer = _csv.writer(buffer)
    writer.writerow(["image", "reason"])
    writer.writerows(bad)
    text = buffer.getvalue()
    atomic_write(path, lambda f: f.write(text), mode="w")
