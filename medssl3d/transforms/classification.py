"""2D classification preprocessing: load a PNG/JPEG file, an ``.npz`` image or an array; resize; augment.

The same chain serves class folders, CSV-listed files and MedMNIST archives (see
:mod:`medssl3d.data.classification`): :class:`LoadClassificationImage` turns any of them into a
channel-first float32 tensor in [0, 1] with the network's number of channels (grey images are repeated to
RGB, RGB is converted to grey by luminance), then :func:`classification_transforms` resizes (keeping the
aspect ratio and padding by default: fundus photographs sit on a black background) and, for training,
adds light flip/rotation and brightness/contrast augmentation (settings chosen here, not taken from a
paper). The chain serves the DR grading fine-tuning of Taleb et al. 2020 ("3D Self-Supervised Methods for
Medical Imaging", NeurIPS). Every random step is a stock MONAI transform, so ``set_determinism`` and
``set_random_state`` make it reproducible.
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import (
    Compose,
    EnsureTyped,
    MapTransform,
    RandAdjustContrastd,
    RandFlipd,
    RandRotated,
    RandScaleIntensityd,
    Resized,
    ResizeWithPadOrCropd,
    Transform,
)
from monai.utils import look_up_option

from medssl3d.data.classification import CLASSIFICATION_IMAGE_SUFFIXES, load_npz_image, parse_npz_reference

__all__ = [
    "CLASSIFICATION_STAGES",
    "LoadClassificationImage",
    "LoadClassificationImaged",
    "classification_transforms",
]

CLASSIFICATION_STAGES = ("train", "validate", "infer")
# ITU-R BT.601 luma weights, the ones PIL's convert("L") uses
_LUMA = (0.299, 0.587, 0.114)


class _PILConvert:
    """Pillow mode conversion: palette, 1-bit, grey+alpha, CMYK and 16-bit modes to L/RGB/RGBA/I."""

    def __call__(self, image: Any) -> Any:
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


def _channel_first(array: np.ndarray, where: str) -> np.ndarray:
    """(H, W) -> (1, H, W); (H, W, C) -> (C, H, W) for C <= 4; (C, H, W) with C <= 4 kept."""
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


def _to_unit_range(array: np.ndarray) -> np.ndarray:
    """float32 in [0, 1]: uint8 / 255; bool as 0/1; floats already in [0, 1] kept; anything else min-max scaled."""
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


def _match_channels(image: np.ndarray, in_channels: int | None, where: str) -> np.ndarray:
    """(C, H, W) -> (in_channels, H, W): repeat grey, luminance of RGB(A), drop alpha."""
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


class LoadClassificationImage(Transform):
    """Load one 2D image as a (C, H, W) float32 tensor in [0, 1] with ``in_channels`` channels.

    The source may be a PNG/JPEG/BMP/TIFF file (read with Pillow; palette, 16-bit and grey+alpha modes are
    converted first), any other file MONAI's ``LoadImage`` reads (e.g. a 2D NIfTI), an
    :func:`~medssl3d.data.classification.npz_reference` string (MedMNIST), or an array/tensor of shape
    (H, W), (H, W, C) or (C, H, W) with C <= 4. Intensity: uint8 is divided by 255, floats in [0, 1] are
    kept, other values are min-max scaled per image.

    Args:
        in_channels: channels of the output; ``None`` keeps the image's. Grey is repeated, RGB(A) becomes
            grey by ITU-R 601 luminance, RGBA -> RGB drops alpha.

    Raises:
        ValueError: unreadable file (named), bad shape, or channels that cannot be converted.

    Example::

        LoadClassificationImage(in_channels=3)("Patient001_L.jpg").shape  # (3, H, W)
    """

    def __init__(self, in_channels: int | None = None) -> None:
        bad = isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1
        if in_channels is not None and bad:
            raise ValueError(f"in_channels must be a positive integer or None, got {in_channels!r}.")
        self.in_channels = in_channels
        self._loader: Any = None

    def _read_file(self, path: str) -> np.ndarray:
        if not os.path.isfile(path):
            raise ValueError(f"Cannot find image file {path}; check the datalist or split.json paths.")
        try:
            if path.lower().endswith(CLASSIFICATION_IMAGE_SUFFIXES):
                from PIL import Image

                with Image.open(path) as image:
                    return np.array(_PILConvert()(image))  # (H, W) or (H, W, C), rows first
            if self._loader is None:
                from monai.transforms import LoadImage

                self._loader = LoadImage(image_only=True, dtype=None)
            array = np.asarray(self._loader(path))
        except Exception as e:  # reader errors are many and varied; name the file
            reason = " ".join(str(e).split())[:200]
            raise ValueError(f"image file {path} cannot be read ({type(e).__name__}: {reason}); re-export it.") from e
        return array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array  # a 2D NIfTI read as (H, W, 1)

    def __call__(self, src: Any) -> torch.Tensor:
        """Return the (in_channels, H, W) float32 tensor of ``src`` (path, npz reference or array)."""
        if isinstance(src, (str, os.PathLike)):
            where = os.fspath(src)
            array = load_npz_image(where) if parse_npz_reference(where) is not None else self._read_file(where)
        else:
            where = f"an array of type {type(src).__name__}"
            array = src.detach().cpu().numpy() if isinstance(src, torch.Tensor) else np.asarray(src)
        array = _channel_first(np.asarray(array), where)
        image = _match_channels(_to_unit_range(array), self.in_channels, where)
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))


class LoadClassificationImaged(MapTransform):
    """Dictionary version of :class:`LoadClassificationImage`.

    Args:
        keys: keys holding the image source (path, npz reference or array).
        in_channels: see :class:`LoadClassificationImage`.
        source_key: when set, the source name (a path or npz reference; ``""`` for arrays) of the first key
            is kept under this key, so reports can name each image (the loaded tensor carries no metadata).
        allow_missing_keys: don't raise for missing keys.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        in_channels: int | None = None,
        source_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadClassificationImage(in_channels)
        self.source_key = source_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for i, key in enumerate(self.key_iterator(d)):
            if i == 0 and self.source_key is not None:
                d[self.source_key] = os.fspath(d[key]) if isinstance(d[key], (str, os.PathLike)) else ""
            d[key] = self.loader(d[key])
        return d


def _image_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, bool):
        raise ValueError(f"image_size must be a positive int or two positive ints, got {image_size!r}.")
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in size):
        raise ValueError(f"image_size must be a positive int or two positive ints (H, W), got {image_size!r}.")
    return int(size[0]), int(size[1])


def classification_transforms(
    stage: str,
    image_size: int | Sequence[int] = 224,
    in_channels: int | None = 3,
    augment: bool = True,
    keys: KeysCollection = "image",
    label_key: str | None = "label",
    keep_aspect: bool = True,
    source_key: str | None = "source",
    multi_label: bool = False,
) -> Compose:
    """The preprocessing chain of a 2D classification stage.

    Load (:class:`LoadClassificationImaged`, (C, H, W) in [0, 1]) -> resize to ``image_size`` (with
    ``keep_aspect`` the longer side is scaled to ``max(image_size)`` and the rest zero-padded, centred;
    ``"area"`` interpolation, i.e. pixel averaging when shrinking, which avoids aliasing at a fraction of the
    cost of Gaussian anti-aliasing) -> for ``"train"`` with ``augment``: horizontal flip (p 0.5), rotation
    within +-15 degrees (p 0.5), brightness scale +-10 % (p 0.5), gamma 0.8-1.25 (p 0.3) ->
    ``image`` as a float32 tensor, ``label`` (when present) as an int64 scalar tensor, or with ``multi_label`` a
    float32 (C,) multi-hot tensor, the target ``torch.nn.BCEWithLogitsLoss`` needs (batched to (N, C)).

    Args:
        stage: ``"train"``, ``"validate"`` or ``"infer"``.
        image_size: output (H, W), or one int for a square.
        in_channels: channels of the network input (3 for fundus RGB, 1 for MedMNIST grey); ``None`` keeps
            each image's own.
        augment: random augmentation at the ``"train"`` stage.
        keys: image key(s).
        label_key: key of the integer label (converted when present); ``None`` leaves labels alone.
        keep_aspect: keep the aspect ratio and pad; ``False`` stretches to ``image_size``.
        source_key: key that keeps each image's path (for ``predictions.csv``); ``None`` drops it.
        multi_label: labels are multi-hot lists of C findings (converted to float32 (C,)); also takes the
            strings ``"true"``/``"false"``.

    Returns:
        a MONAI ``Compose``.

    Raises:
        ValueError: unknown stage, bad ``image_size`` or ``in_channels``.

    Example::

        t = classification_transforms("validate", image_size=224, in_channels=3)
        t({"image": "Patient001_L.jpg", "label": 2})["image"].shape  # (3, 224, 224)
    """
    stage = look_up_option(stage, CLASSIFICATION_STAGES)
    size = _image_size(image_size)
    chain: list[Any] = [LoadClassificationImaged(keys, in_channels, source_key=source_key)]
    if keep_aspect:
        chain += [
            Resized(keys, spatial_size=max(size), size_mode="longest", mode="area"),
            ResizeWithPadOrCropd(keys, spatial_size=size),
        ]
    else:
        chain.append(Resized(keys, spatial_size=size, mode="area"))
    if stage == "train" and augment:
        chain += [
            RandFlipd(keys, prob=0.5, spatial_axis=1),
            RandRotated(keys, range_x=math.radians(15), prob=0.5, keep_size=True, padding_mode="zeros"),
            RandScaleIntensityd(keys, factors=0.1, prob=0.5),
            RandAdjustContrastd(keys, prob=0.3, gamma=(0.8, 1.25)),
        ]
    chain.append(EnsureTyped(keys, data_type="tensor", dtype=torch.float32, track_meta=False))
    if label_key is not None:
        from medssl3d.utils.flags import as_flag

        dtype = torch.float32 if as_flag(multi_label, "multi_label") else torch.int64
        chain.append(
            EnsureTyped(label_key, data_type="tensor", dtype=dtype, track_meta=False, allow_missing_keys=True)
        )
    return Compose(chain)
