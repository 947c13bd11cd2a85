"""Pretraining pipelines: load, normalise, crop every image to the pretext task's input size, then
let the task's own dictionary transform build its input and target.

3D volumes go through :func:`~medssl3d.transforms.preprocessing.volume_loading_transforms` (the same
orientation, spacing, body crop and intensity steps as segmentation fine-tuning, so the encoder sees the
same kind of input in both). 2D images (PNG/JPEG/TIFF/BMP files, MedMNIST ``.npz`` references) are
read and resized exactly as in classification fine-tuning
(:func:`~medssl3d.transforms.classification.classification_transforms`: [0, 1], channels converted to
``in_channels``, aspect ratio kept with zero padding).
Everything up to the first random transform is deterministic, so ``CacheDataset`` caches it.
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.transforms import (
    Compose,
    MapTransform,
    RandSpatialCropd,
    Resized,
    SpatialPadd,
)

from medssl3d.transforms.classification import (
    LoadClassificationImaged,
    classification_transforms,
)
from medssl3d.transforms.preprocessing import volume_loading_transforms

__all__ = ["pretraining_transforms"]


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
        in_channels: channels the encoder takes; 2D images are converted (RGB <-> grey) to match, 3D volumes
            with another channel count are refused with an error naming the file.
        intensity: 3D only: ``"ct"`` or ``"mr"`` (see ``volume_loading_transforms``).
        spacing: 3D only: target spacing in mm, ``None`` keeps it.
        hu_window: 3D CT only: Hounsfield window.
        resize: resize every image to this size before cropping (``True``: to ``input_size``, i.e. the
            whole image is the task's input; ``None``/``False``: no resizing, crops of the native image).
            2D keeps the aspect ratio (longest side, zero padding), 3D resizes each axis.
        image_key: key of the image.

    Returns:
        A MONAI ``Compose``.
    """
    size = [int(s) for s in input_size]
    if len(size) != spatial_dims or any(s < 1 for s in size):
        raise ValueError(f"input_size {list(input_size)} must hold {spatial_dims} positive sizes.")
    if resize is True:
        resize = size
    if resize:
        resize = [int(s) for s in resize]
        if len(resize) != spatial_dims:
            raise ValueError(f"resize {resize} must hold {spatial_dims} sizes.")
    if spatial_dims == 3:
        xforms = volume_loading_transforms(
            [image_key], intensity, spacing, hu_window, image_key=image_key, in_channels=in_channels
        )
        if resize:
            xforms.append(Resized(keys=image_key, spatial_size=resize, mode="area"))
    elif spatial_dims == 2:
        if resize:  # the fine-tuning loader and resizing, so both stages see images alike
            xforms = list(
                classification_transforms(
                    "infer", image_size=resize, in_channels=in_channels, keys=image_key, label_key=None, source_key=None
                ).transforms
            )
        else:
            xforms = [LoadClassificationImaged(image_key, in_channels, source_key=None)]
    else:
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    xforms += [
        SpatialPadd(keys=image_key, spatial_size=size),
        RandSpatialCropd(keys=image_key, roi_size=size, random_size=False),
    ]
    if task_transform is not None:
        xforms.append(task_transform)
    return Compose(xforms)
