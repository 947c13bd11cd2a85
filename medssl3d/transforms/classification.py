"""2D classification preprocessing: load a PNG/JPEG file, an ``.npz`` image or an array; resize; augment.

The same chain serves class folders, CSV-listed files and MedMNIST archives (see
:mod:`medssl3d.data.classification`): :class:`LoadClassificationImage` turns any of them into a
channel-first float32 tensor in [0, 1] with the network's number of channels (grey images are repeated to
RGB, RGB is converted to grey by luminance; the reading and channel rules are those of
:func:`medssl3d.data.images.read_classification_image`, which the data checks share), then
:func:`classification_transforms` resizes (keeping the aspect ratio and padding by default: fundus
photographs sit on a black background) and, for training, adds light flip/rotation and brightness/contrast
augmentation (settings chosen here, not taken from a paper). The chain serves the DR grading fine-tuning of
Taleb et al. 2020 ("3D Self-Supervised Methods for Medical Imaging", NeurIPS). Every random step is a stock
MONAI transform, so ``set_determinism`` and ``set_random_state`` make it reproducible.
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

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

from medssl3d.data.images import check_in_channels, read_classification_image
from medssl3d.utils.checks import check_size

__all__ = [
    "CLASSIFICATION_STAGES",
    "LoadClassificationImage",
    "LoadClassificationImaged",
    "classification_transforms",
]

CLASSIFICATION_STAGES = ("train", "validate", "infer")


class LoadClassificationImage(Transform):
    """Load one 2D image as a (C, H, W) float32 tensor in [0, 1] with ``in_channels`` channels.

    A MONAI transform around :func:`~medssl3d.data.images.read_classification_image`. The source may be a
    PNG/JPEG/BMP/TIFF file (read with Pillow; palette, 16-bit and grey+alpha modes are converted first), any
    other file MONAI's ``LoadImage`` reads (e.g. a 2D NIfTI), an :func:`~medssl3d.data.images.npz_reference`
    string (MedMNIST), or an array/tensor of shape (H, W), (H, W, C) or (C, H, W) with C <= 4. Intensity:
    uint8 is divided by 255, floats in [0, 1] are kept, other values are min-max scaled per image.

    Args:
        in_channels: channels of the output; ``None`` keeps the image's. Grey is repeated, RGB(A) becomes
            grey by ITU-R 601 luminance, RGBA -> RGB drops alpha.

    Raises:
        ValueError: a bad ``in_channels``; when called: unreadable file (named), bad shape, or channels that
            cannot be converted.

    Example::

        LoadClassificationImage(in_channels=3)("Patient001_L.jpg").shape  # (3, H, W)
    """

    def __init__(self, in_channels: int | None = None) -> None:
        self.in_channels = check_in_channels(in_channels)

    def __call__(self, src: Any) -> torch.Tensor:
        """Return the (in_channels, H, W) float32 tensor of ``src`` (path, npz reference or array)."""
        return torch.from_numpy(read_classification_image(src, self.in_channels))


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
    size = check_size("image_size", image_size, spatial_dims=2)
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
