"""2D images: file suffixes, MedMNIST ``.npz`` references, and reading one image as the network takes it.

A classification or pretraining item names its image by a file path (PNG/JPEG/BMP/TIFF read with Pillow,
anything else, e.g. a 2D NIfTI, with MONAI's ``LoadImage``) or, for a MedMNIST v2 archive, by a reference
``"<file>.npz#train_images[12]"`` (:func:`npz_reference`), so that ``split.json`` stays small;
:func:`load_npz_image` reads the array back (Yang et al. 2023, "MedMNIST v2", Scientific Data 10:41).

:func:`read_classification_image` turns any of them, or an array, into a channel-first float32 array in
[0, 1] with the network's number of channels (:func:`channel_first`, :func:`to_unit_range`,
:func:`match_channels`: grey is repeated to RGB, RGB becomes grey by luminance, RGBA loses alpha). The 2D
loading transform (``LoadClassificationImage``) wraps it, and the checks of
:mod:`~medssl3d.data.inference` and of the classification split use the same rules, so an image that passes
them loads in training and prediction.

Kept free of torch and MONAI imports at module level (both are imported only when needed).
"""

from __future__ import annotations

import functools
import math
import os
import re
import zipfile
from typing import Any

import numpy as np

from medssl3d.data.errors import DatasetNotFoundError, DataValidationError
from medssl3d.utils.checks import check_positive_int

__all__ = [
    "CLASSIFICATION_IMAGE_SUFFIXES",
    "npz_reference",
    "parse_npz_reference",
    "load_npz_image",
    "npz_shapes",
    "PILConvert",
    "channel_first",
    "to_unit_range",
    "match_channels",
    "check_in_channels",
    "read_image_file",
    "read_classification_image",
]

PathLike = str | os.PathLike

#: Suffixes (lower case) of 2D image files listed in class folders and matched for extension-less CSV names.
CLASSIFICATION_IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# ITU-R BT.601 luma weights, the ones PIL's convert("L") uses
_LUMA = (0.299, 0.587, 0.114)
_NPZ_REF_RE = re.compile(r"^(?P<path>.+\.npz)#(?P<array>[A-Za-z0-9_]+)\[(?P<index>\d+)\]$", re.IGNORECASE)


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
        DatasetNotFoundError: the file is missing.
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


def npz_shapes(path: PathLike) -> dict[str, tuple[int, ...]]:
    """Shape of every array of an ``.npz`` archive, read from the ``.npy`` headers (nothing is decompressed).

    Raises:
        DataValidationError: the file is not a readable ``.npz`` archive.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as fp:
                    version = np.lib.format.read_magic(fp)
                    if version == (1, 0):
                        shape, _, _ = np.lib.format.read_array_header_1_0(fp)
                    elif version == (2, 0):
                        shape, _, _ = np.lib.format.read_array_header_2_0(fp)
                    else:  # rare (.npy 3.0): let numpy read the whole array
                        with np.load(path, allow_pickle=False) as f:
                            shape = f[info.filename[:-4]].shape
                shapes[info.filename[:-4]] = tuple(int(n) for n in shape)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise DataValidationError(f"{path} cannot be read as an .npz archive ({e}); re-download it.") from e
    return shapes


# ---------------------------------------------------------------------------------------- pixels, channels


class PILConvert:
    """Pillow mode conversion: palette, 1-bit, grey+alpha, CMYK and 16-bit modes to L/RGB/RGBA/I."""

    def __call__(self, image: Any) -> Any:
        """Return ``image`` (a ``PIL.Image``) in mode L, RGB, RGBA, I or F."""
        mode = image.mode
        if mode in ("L", "RGB", "RGBA", "I", "F"):
            return image
        if mode in ("1", "LA"):
            return image.convert("L")
        if mode.startswith("I;"):
            return image.convert("I")
        if mode == "P" and "transparency" in image.info:
            return image.convert("RGBA")
        return image.convert("RGB")  # P, PA, CMYK, YCbCr, LAB, HSV


def channel_first(array: np.ndarray, where: str) -> np.ndarray:
    """(H, W) -> (1, H, W); (H, W, C) -> (C, H, W) for C <= 4; (C, H, W) with C <= 4 kept.

    Raises:
        ValueError: any other shape (the message names ``where``).
    """
    if array.ndim == 2:
        return array[None]
    if array.ndim == 3:
        if array.shape[-1] <= 4 and array.shape[0] > 4:
            return np.moveaxis(array, -1, 0)
        if array.shape[0] <= 4:
            return array
    raise ValueError(
        f"{where} has shape {tuple(array.shape)}; a 2D image must be (H, W), (H, W, C) or (C, H, W) with C <= 4 "
        "channels (volumes need a 3D pipeline)."
    )


def to_unit_range(array: np.ndarray) -> np.ndarray:
    """float32 in [0, 1]: uint8 / 255; bool as 0/1; floats already in [0, 1] kept; anything else min-max scaled.

    Raises:
        ValueError: the image holds NaN or infinite values.
    """
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    out = array.astype(np.float32)
    if array.dtype == np.bool_:
        return out
    lo, hi = float(out.min()), float(out.max())
    if np.issubdtype(array.dtype, np.floating) and lo >= 0.0 and hi <= 1.0:
        return out
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("image holds NaN or infinite values; clean the data.")
    return (out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)


def match_channels(image: np.ndarray, in_channels: int | None, where: str) -> np.ndarray:
    """(C, H, W) -> (in_channels, H, W): repeat grey, luminance of RGB(A), drop alpha.

    Raises:
        ValueError: channels that do not convert (2 channels, RGB into 2 channels ...).
    """
    c = image.shape[0]
    if in_channels is None or c == in_channels:
        return image
    if c == 1:
        return np.repeat(image, in_channels, axis=0)
    if in_channels == 1 and c in (3, 4):
        weights = np.asarray(_LUMA, dtype=np.float32).reshape(3, 1, 1)
        return (image[:3] * weights).sum(axis=0, keepdims=True)
    if in_channels == 3 and c == 4:
        return image[:3]
    raise ValueError(
        f"{where} has {c} channels but in_channels={in_channels}; only grey (1), RGB (3) and RGBA (4) images "
        "convert automatically: set in_channels to the image's channel count."
    )


def check_in_channels(in_channels: Any) -> int | None:
    """``in_channels`` as an ``int`` >= 1, or ``None`` (keep each image's channels); ``ValueError`` otherwise."""
    if in_channels is None:
        return None
    return check_positive_int("in_channels", in_channels, hint=" (or None to keep each image's channels)")


# ----------------------------------------------------------------------------------------------- reading


@functools.lru_cache(maxsize=1)
def _monai_loader() -> Any:
    """MONAI's ``LoadImage`` for the files Pillow does not read, created once."""
    from monai.transforms import LoadImage

    return LoadImage(image_only=True, dtype=None)


def read_image_file(path: str, keep_depth: bool = False) -> np.ndarray:
    """The pixels of one 2D image file, (H, W) or (H, W, C), rows first.

    Files with :data:`CLASSIFICATION_IMAGE_SUFFIXES` are read with Pillow (palette, 1-bit, grey+alpha and
    16-bit modes converted by :class:`PILConvert`), any other (e.g. a 2D NIfTI) with MONAI's ``LoadImage``.

    Args:
        path: the file.
        keep_depth: keep 16-bit grey Pillow images as ``uint16`` (as stored) instead of converting them to
            32-bit integers.

    Raises:
        ValueError: the file is missing, or cannot be read (file named; the reader's error is the cause).
    """
    if not os.path.isfile(path):
        raise ValueError(f"Cannot find image file {path}; check the datalist or split.json paths.")
    try:
        if path.lower().endswith(CLASSIFICATION_IMAGE_SUFFIXES):
            from PIL import Image

            with Image.open(path) as image:
                if keep_depth and image.mode.startswith("I;16"):  # numpy reads 16-bit grey as (u)int16
                    return np.array(image)
                return np.array(PILConvert()(image))
        array = np.asarray(_monai_loader()(path))
    except Exception as e:  # reader errors are many and varied; name the file
        reason = " ".join(str(e).split())[:200]
        raise ValueError(f"image file {path} cannot be read ({type(e).__name__}: {reason}); re-export it.") from e
    return array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array  # a 2D NIfTI read as (H, W, 1)


def read_classification_image(src: Any, in_channels: int | None = None) -> np.ndarray:
    """One 2D image as a (C, H, W) float32 array in [0, 1] with ``in_channels`` channels.

    Args:
        src: an image file (:func:`read_image_file`), an :func:`npz_reference` string, or an array/tensor of
            shape (H, W), (H, W, C) or (C, H, W) with C <= 4. Intensity: uint8 is divided by 255, floats in
            [0, 1] are kept, other values are min-max scaled per image.
        in_channels: channels of the output; ``None`` keeps the image's. Grey is repeated, RGB(A) becomes
            grey by ITU-R 601 luminance, RGBA -> RGB drops alpha.

    Returns:
        a C-contiguous float32 array.

    Raises:
        ValueError: unreadable file (named), bad shape, or channels that cannot be converted.
    """
    if isinstance(src, (str, os.PathLike)):
        where = os.fspath(src)
        array = load_npz_image(where) if parse_npz_reference(where) is not None else read_image_file(where)
    else:
        where = f"an array of type {type(src).__name__}"
        if not isinstance(src, np.ndarray):
            import torch

            if isinstance(src, torch.Tensor):
                src = src.detach().cpu().numpy()
        array = np.asarray(src)
    image = match_channels(to_unit_range(channel_first(np.asarray(array), where)), in_channels, where)
    return np.ascontiguousarray(image, dtype=np.float32)

