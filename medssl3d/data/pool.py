"""Unlabelled image pools for self-supervised pretraining.

:func:`list_unlabelled_images` lists every volume found in a folder tree (NIfTI, NRRD, MetaImage files and
DICOM series folders); :func:`prepare_unlabelled_pool` adds a Decathlon folder's images (labels unused).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medssl3d.data.decathlon import load_decathlon, read_dataset_json
from medssl3d.data.errors import DatasetNotFoundError, DataValidationError

__all__ = ["list_unlabelled_images", "prepare_unlabelled_pool", "IMAGE_SUFFIXES", "DICOM_SUFFIXES", "is_dicom_file"]

PathLike = str | os.PathLike

#: File suffixes (lower case) listed as one image each.
IMAGE_SUFFIXES: tuple[str, ...] = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
#: File suffixes (lower case) of DICOM slices; a directory holding them is one image (a series).
DICOM_SUFFIXES: tuple[str, ...] = (".dcm", ".dicom", ".ima")

# Extensions that are certainly not DICOM slices; files with any other (or no) extension are probed.
_NOT_DICOM = (
    ".raw", ".zraw", ".img", ".hdr", ".gz", ".json", ".csv", ".txt", ".md", ".py", ".npz", ".npy", ".png",
    ".jpg", ".jpeg", ".tif", ".tiff", ".h5", ".hdf5", ".xml", ".pdf", ".zip", ".tar", ".log", ".yaml", ".yml",
)  # fmt: skip


def is_dicom_file(path: PathLike) -> bool:
    """Whether ``path`` is a DICOM Part-10 file (``DICM`` magic at byte 128)."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _is_dicom_dir(folder: str, files: list[str]) -> bool:
    """Whether ``folder`` holds a DICOM series: ``.dcm`` files, or files GDCM reads as a series."""
    if any(f.lower().endswith(DICOM_SUFFIXES) for f in files):
        return True
    candidates = [f for f in files if not f.lower().endswith(IMAGE_SUFFIXES + _NOT_DICOM)]
    # Probe a few candidates cheaply before asking GDCM to scan the folder.
    if not any(is_dicom_file(os.path.join(folder, f)) for f in candidates[:5]):
        return False
    import SimpleITK as sitk

    return len(sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder)) > 0


def list_unlabelled_images(
    folder: PathLike,
    recursive: bool = True,
    exclude_pattern: str | None = None,
) -> list[dict]:
    """Every image in ``folder`` as a datalist ``[{"image": path}, ...]``, sorted by path.

    Files ending in ``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha`` or ``.mhd`` are one image each.
    A directory holding DICOM slices (``.dcm``/``.dicom``/``.ima`` files, or extension-less files that GDCM
    reads as a series) is one image, listed by its directory path, which
    :class:`medssl3d.data.SimpleITKReader` (and so ``LoadImage(reader=SimpleITKReader())``) reads as a
    volume. Hidden files and folders (names starting with ``.``) are skipped. Labels and masks in the
    tree are images too; drop them with ``exclude_pattern``.

    Args:
        folder: the folder to search.
        recursive: also search sub-folders.
        exclude_pattern: a regular expression; paths (relative to ``folder``, ``/``-separated) in which it
            is found (``re.search``) are left out, e.g. ``r"(_label|_seg|labelsT[rs]/)"``.

    Returns:
        ``[{"image": absolute_path}, ...]`` sorted by path (deterministic).

    Raises:
        DatasetNotFoundError: ``folder`` does not exist or is not a directory (a ``FileNotFoundError``
            and a ``ValueError``).
        DataValidationError: no image was found (the message lists the accepted suffixes).
        ValueError: ``exclude_pattern`` is not a valid regular expression.

    Example:
        >>> pool = list_unlabelled_images("data/dicom_series")  # doctest: +SKIP
        >>> pool[0]  # doctest: +SKIP
        {'image': '/abs/data/dicom_series/totalseg_example_ct_dicom'}
    """
    root = Path(os.fspath(folder)).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"Cannot find image folder: {root}; pass an existing directory of NIfTI/NRRD/MetaImage files "
            "or DICOM series folders."
        )
    root = Path(os.path.abspath(root))
    exclude = None
    if exclude_pattern is not None:
        try:
            exclude = re.compile(exclude_pattern)
        except re.error as e:
            raise ValueError(f"exclude_pattern={exclude_pattern!r} is not a valid regular expression: {e}.") from e
    found: list[str] = []
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files = sorted(f for f in files if not f.startswith("."))
        found.extend(os.path.join(current, f) for f in files if _is_image_file(f))
        if files and _is_dicom_dir(current, files):
            found.append(current)
        if not recursive:
            break
    if exclude is not None:
        found = [p for p in found if not exclude.search(Path(os.path.relpath(p, root)).as_posix())]
    if not found:
        accepted = ", ".join(IMAGE_SUFFIXES)
        raise DataValidationError(
            f"No images found in {root} (recursive={recursive}); accepted: files ending in {accepted}, "
            f"and DICOM series directories (files ending in {', '.join(DICOM_SUFFIXES)} or DICOM files "
            "without an extension)" + (f", after excluding {exclude_pattern!r}" if exclude_pattern else "") + "."
        )
    return [{"image": p} for p in sorted(found)]


def _json_default(value: Any) -> Any:
    """JSON form of the paths and numpy values an image entry may hold (for :func:`prepare_unlabelled_pool`)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable: {value!r}.")


def prepare_unlabelled_pool(
    dataset_dir: PathLike | None = None,
    extra_folders: Sequence[PathLike] | PathLike = (),
    include_test: bool = True,
    exclude_pattern: str | None = None,
) -> list[dict]:
    """Every image available for pretraining: a Decathlon folder's images plus unlabelled folders.

    Args:
        dataset_dir: a Decathlon folder; its ``training`` images (labels unused) and, with
            ``include_test``, its ``test`` images are taken. ``None``: only ``extra_folders``.
        extra_folders: folders (or one folder) searched with :func:`list_unlabelled_images`.
        include_test: include the Decathlon ``test`` images.
        exclude_pattern: passed to :func:`list_unlabelled_images` for ``extra_folders``.

    Returns:
        ``[{"image": path}, ...]`` without duplicates, Decathlon images first, then each folder's (sorted).

    Raises:
        ValueError: nothing to search, or no image found.
    """
    if isinstance(extra_folders, (str, os.PathLike)):
        extra_folders = [extra_folders]
    if dataset_dir is None and not extra_folders:
        raise ValueError("no images to pool: pass dataset_dir=<Decathlon folder> and/or extra_folders=[...].")
    images: list[Any] = []
    if dataset_dir is not None:
        images.extend(item["image"] for item in load_decathlon(dataset_dir, "training"))
        if include_test and "test" in read_dataset_json(dataset_dir):
            images.extend(item["image"] for item in load_decathlon(dataset_dir, "test"))
    for folder in extra_folders:
        images.extend(item["image"] for item in list_unlabelled_images(folder, exclude_pattern=exclude_pattern))
    unique: dict[str, Any] = {}
    for image in images:  # an image may be a list of channel files
        unique.setdefault(json.dumps(image, default=_json_default), image)
    if not unique:
        raise ValueError(f"no images found in dataset_dir={dataset_dir!r} or extra_folders={list(extra_folders)!r}.")
    return [{"image": image} for image in unique.values()]
