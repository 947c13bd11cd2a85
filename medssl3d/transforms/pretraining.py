"""Pretraining pipelines: load, normalise, crop every image to the pretext task's input size, then
let the task's own dictionary transform build its input and target.

3D volumes go through :func:`~medssl3d.transforms.preprocessing.volume_loading_transforms` (the same
orientation, spacing, body crop and intensity steps as segmentation fine-tuning, so the encoder sees the
same kind of input in both). 2D images (PNG/JPEG/TIFF) are read with PIL and scaled to [0, 1].
Everything up to the first random transform is deterministic, so ``CacheDataset`` caches it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    MapTransform,
    RandSpatialCropd,
    Resized,
    ScaleIntensityRanged,
    SpatialPadd,
)

from medssl3d.transforms.preprocessing import volume_loading_transforms

__all__ = ["MatchChannelsd", "pretraining_transforms"]


class MatchChannelsd(MapTransform):
    """Make an image have ``channels`` channels: RGB(A) to grey by averaging RGB, grey to RGB by repeating.

    Any other mismatch raises a ``ValueError`` naming the image file, so a folder of mixed images fails
    on the first bad one instead of deep inside the network.
    """

    def __init__(self, keys: str | Sequence[str], channels: int, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if isinstance(channels, bool) or int(channels) < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}.")
        self.channels = int(channels)

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            c = img.shape[0]
            if c == self.channels:
                continue
            if self.channels == 1 and c in (3, 4):
                img = img[:3].mean(0, keepdim=True) if isinstance(img, torch.Tensor) else img[:3].mean(0, keepdims=True)
            elif self.channels == 3 and c == 1:
                img = img.repeat(3, *([1] * (img.ndim - 1))) if isinstance(img, torch.Tensor) else np.repeat(img, 3, 0)
            elif self.channels == 3 and c == 4:
                img = img[:3]
            else:
                source = getattr(img, "meta", {}).get("filename_or_obj", "<array>")
                raise ValueError(
                    f"image {source} has {c} channels but the model expects {self.channels} (in_channels); "
                    "set in_channels to match the data."
                )
            d[key] = img
        return d


def pretraining_transforms(
    input_size: Sequence[int],
    task_transform: MapTransform | None = None,
    spatial_dims: int = 3,
    in_channels: int = 1,
    intensity: str = "ct",
    spacing: Sequence[float] | None = (1.5, 1.5, 2.0),
    hu_window: Sequence[float] = (-87.0, 199.0),
    resize: Sequence[int] | bool | None = None,
    image_key: str = "image",
) -> Compose:
    """The pretraining chain: load, normalise, (resize), pad and randomly crop to ``input_size``, task transform.

    Args:
        input_size: spatial size the task expects (``task.input_size``).
        task_transform: the task's dictionary transform (``task.transform()``); ``None`` stops after the crop.
        spatial_dims: 3 (volumes: NIfTI, NRRD, MetaImage, DICOM series) or 2 (PNG, JPEG, TIFF, BMP).
        in_channels: channels the encoder takes; 2D images are converted (RGB <-> grey) to match.
        intensity: 3D only: ``"ct"`` or ``"mr"`` (see ``volume_loading_transforms``).
        spacing: 3D only: target spacing in mm, ``None`` keeps it.
        hu_window: 3D CT only: Hounsfield window.
        resize: resize every image to this size before cropping (``True``: to ``input_size``, i.e. the
            whole image is the task's input; ``None``/``False``: no resizing, crops of the native image).
        image_key: key of the image.

    Returns:
        A MONAI ``Compose``.
    """
    size = [int(s) for s in input_size]
    if len(size) != spatial_dims or any(s < 1 for s in size):
        raise ValueError(f"input_size {list(input_size)} must hold {spatial_dims} positive sizes.")
    if spatial_dims == 3:
        xforms = volume_loading_transforms([image_key], intensity, spacing, hu_window, image_key=image_key)
        if in_channels != 1:
            xforms.append(MatchChannelsd(image_key, in_channels))
    elif spatial_dims == 2:
        xforms = [
            LoadImaged(keys=image_key, image_only=True, reader="PILReader"),
            EnsureChannelFirstd(keys=image_key),
            MatchChannelsd(image_key, in_channels),
            EnsureTyped(keys=image_key, dtype="float32"),
            ScaleIntensityRanged(keys=image_key, a_min=0.0, a_max=255.0, b_min=0.0, b_max=1.0, clip=True),
        ]
    else:
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    if resize is True:
        resize = size
    if resize:
        resize = [int(s) for s in resize]
        if len(resize) != spatial_dims:
            raise ValueError(f"resize {resize} must hold {spatial_dims} sizes.")
        xforms.append(Resized(keys=image_key, spatial_size=resize, mode="area"))
    xforms += [
        SpatialPadd(keys=image_key, spatial_size=size),
        RandSpatialCropd(keys=image_key, roi_size=size, random_size=False),
    ]
    if task_transform is not None:
        xforms.append(task_transform)
    return Compose(xforms)
