"""Segmentation preprocessing presets shared by the train, evaluate and inference bundle configs.

One function builds the chain for every stage so the three configs cannot drift apart:
orientation (RAS), resampling to a target spacing, intensity (a Hounsfield window to [0, 1] for CT,
per-volume z-score over non-zero voxels for MR), foreground crop, then for training padding and
label-balanced random crops of the network's patch size plus light augmentation. Every step is a
stock MONAI transform.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from monai.transforms import (
    Activationsd,
    AsDiscreted,
    Compose,
    CropForegroundd,
    EnsureChannelFirstd,
    EnsureTyped,
    Invertd,
    NormalizeIntensityd,
    Orientationd,
    RandCropByLabelClassesd,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandScaleIntensityd,
    RandShiftIntensityd,
    Resized,
    SaveImaged,
    ScaleIntensityRanged,
    SpatialPadd,
)
from monai.utils import look_up_option

from medssl3d.data.readers import SimpleITKReader
from medssl3d.transforms.loading import CheckVolumed, LoadVolumed, Spacingd

__all__ = [
    "INTENSITY_MODES",
    "BodyMask",
    "resolve_intensity_mode",
    "segmentation_transforms",
    "segmentation_postprocessing",
    "volume_loading_transforms",
]

INTENSITY_MODES = ("ct", "mr")
STAGES = ("train", "validate", "infer")


# Hounsfield units: air is about -1000, lung -900..-500, fat about -100; -500 separates body from air
CT_BODY_THRESHOLD_HU = -500.0


class BodyMask:
    """Picklable ``select_fn`` for ``CropForegroundd``: the body on the raw (un-normalised) image.

    CT: voxels above -500 HU (air is about -1000 HU, so fat and lung edges stay in). MR: non-zero voxels
    (scanner background and skull-stripping leave exact zeros).
    """

    def __init__(self, intensity: str) -> None:
        self.intensity = look_up_option(intensity, INTENSITY_MODES)

    def __call__(self, x):
        return x > CT_BODY_THRESHOLD_HU if self.intensity == "ct" else x != 0


def resolve_intensity_mode(
    modality: str = "auto", dataset_dir: str | Path | None = None, default: str | None = None
) -> str:
    """Map a modality name to an intensity mode: ``"ct"`` (HU window) or ``"mr"`` (z-score).

    Args:
        modality: ``"ct"``, ``"mr"``, ``"mri"``, or ``"auto"`` to read ``modality["0"]`` from the
            Decathlon ``dataset.json`` in ``dataset_dir``.
        dataset_dir: needed for ``"auto"`` unless ``default`` is given.
        default: the modality ``"auto"`` means without a ``dataset_dir`` (a bundle's own modality, for
            training from lists given directly, e.g. by MONAI Label).

    Raises:
        ValueError: unknown modality, or ``"auto"`` without a dataset that names one and without ``default``.
    """
    key = str(modality).strip().lower()
    if key == "auto" and not dataset_dir and default:
        key = str(default).strip().lower()
    if key == "auto":
        if not dataset_dir:
            raise ValueError("modality='auto' needs dataset_dir to read dataset.json; set modality='CT' or 'MR'.")
        from medssl3d.data import modality as dataset_modality

        key = dataset_modality(dataset_dir).strip().lower()
        if not key:
            raise ValueError(f"dataset.json in {dataset_dir} names no modality; set modality='CT' or 'MR' explicitly.")
    key = {"mri": "mr", "t1": "mr", "t2": "mr", "flair": "mr", "computed tomography": "ct"}.get(key, key)
    return look_up_option(key, INTENSITY_MODES)


def volume_loading_transforms(
    keys: Sequence[str],
    intensity: str = "ct",
    spacing: Sequence[float] | None = (1.5, 1.5, 2.0),
    hu_window: Sequence[float] = (-87.0, 199.0),
    image_key: str = "image",
    in_channels: int | None = None,
) -> list:
    """Load, check, orient (RAS), resample, crop to the body and normalise; the start of every 3D pipeline.

    An unreadable file, or an image that is not 3D or (with ``in_channels``) has another channel count,
    raises :class:`~medssl3d.transforms.loading.ImageInputError` naming the file and what is expected,
    before any resampling. Label maps must be single-channel 3D.

    Args:
        keys: keys to load; ``image_key`` first, any further key is a label map (nearest interpolation).
        intensity: ``"ct"`` (``hu_window`` to [0, 1]) or ``"mr"`` (z-score of non-zero voxels).
        spacing: target voxel spacing in mm; ``None`` keeps the native spacing.
        hu_window: ``(min, max)`` Hounsfield window for CT.
        image_key: key of the image.
        in_channels: channels the network takes; ``None`` accepts any number.

    Returns:
        A list of MONAI dictionary transforms.
    """
    intensity = look_up_option(intensity, INTENSITY_MODES)
    if len(hu_window) != 2 or float(hu_window[0]) >= float(hu_window[1]):
        raise ValueError(f"hu_window must be (min, max) with min < max, got {list(hu_window)}.")
    keys = list(keys)
    interp = ["bilinear"] + ["nearest"] * (len(keys) - 1)
    modality = "CT" if intensity == "ct" else "MR"
    channels = "" if in_channels is None else f"{int(in_channels)}-channel "
    xforms: list = [
        # nibabel for NIfTI, SimpleITK for NRRD, MetaImage and DICOM series folders
        LoadVolumed(keys=keys, image_only=True, reader=[SimpleITKReader(), "NibabelReader"]),
        EnsureChannelFirstd(keys=keys),
        CheckVolumed(
            keys=image_key, num_channels=in_channels, spatial_dims=3, what=f"a {channels}3D {modality} volume"
        ),
    ]
    if len(keys) > 1:
        xforms.append(CheckVolumed(keys=keys[1:], num_channels=1, spatial_dims=3, what="a 1-channel 3D label map"))
    xforms += [
        EnsureTyped(keys=image_key, dtype="float32"),  # MSD mixes float32 and uint8 images
        Orientationd(keys=keys, axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))),
    ]
    if spacing is not None:
        xforms.append(Spacingd(keys=keys, pixdim=list(spacing), mode=interp))
    # the body decides the bounding box, judged on raw values before any intensity change
    xforms.append(
        CropForegroundd(keys=keys, source_key=image_key, select_fn=BodyMask(intensity), allow_smaller=True)
    )
    if intensity == "ct":
        a_min, a_max = float(hu_window[0]), float(hu_window[1])
        xforms.append(ScaleIntensityRanged(keys=image_key, a_min=a_min, a_max=a_max, b_min=0.0, b_max=1.0, clip=True))
    else:
        xforms.append(NormalizeIntensityd(keys=image_key, nonzero=True, channel_wise=True))
    return xforms


def segmentation_transforms(
    stage: str,
    intensity: str = "ct",
    spacing: Sequence[float] | None = (1.5, 1.5, 2.0),
    hu_window: Sequence[float] = (-87.0, 199.0),
    patch_size: Sequence[int] = (96, 96, 96),
    num_samples: int = 2,
    resize: bool = False,
    image_key: str = "image",
    label_key: str = "label",
    augment: bool = True,
    crop_ratios: Sequence[float] | None = None,
    in_channels: int | None = None,
) -> Compose:
    """Build the preprocessing chain for one stage.

    Args:
        stage: ``"train"`` (random label-balanced crops of ``patch_size``), ``"validate"`` (whole
            volumes with labels, for sliding-window inference) or ``"infer"`` (image only).
        intensity: ``"ct"`` clips to ``hu_window`` and scales to [0, 1]; ``"mr"`` z-scores non-zero
            voxels of each volume and channel (see :func:`resolve_intensity_mode`).
        spacing: target voxel spacing in mm; ``None`` keeps the native spacing.
        hu_window: ``(min, max)`` Hounsfield window for CT, e.g. ``(-87, 199)`` for pancreas
            (soft-tissue) or ``(-1000, 1000)`` for the whole body.
        patch_size: network input size for training crops (and for ``resize``).
        num_samples: crops drawn per volume per epoch in training.
        resize: resize every volume to ``patch_size`` instead of cropping (whole-volume models).
        image_key: key of the image.
        label_key: key of the label map.
        augment: add random flips and intensity scale/shift in training.
        crop_ratios: ``None`` centres half the training crops on foreground (any class > 0) and half
            anywhere in the body box; a list with one weight per class (background first), e.g.
            ``[1, 1, 1]``, centres crops on each class in that proportion, so a small class such as a
            tumour is seen as often as the organ around it (cases without the class are skipped for it).
        in_channels: channels the network takes; an image with another count (or not 3D) is refused with
            an error naming the file. ``None`` accepts any number.

    Returns:
        A MONAI ``Compose``.
    """
    stage = look_up_option(stage, STAGES)
    intensity = look_up_option(intensity, INTENSITY_MODES)
    if len(hu_window) != 2 or float(hu_window[0]) >= float(hu_window[1]):
        raise ValueError(f"hu_window must be (min, max) with min < max, got {list(hu_window)}.")
    if any(int(s) < 1 for s in patch_size):
        raise ValueError(f"patch_size must be positive integers, got {list(patch_size)}.")
    keys = [image_key] if stage == "infer" else [image_key, label_key]
    xforms: list = volume_loading_transforms(
        keys, intensity, spacing, hu_window, image_key=image_key, in_channels=in_channels
    )
    if resize:
        xforms.append(Resized(keys=keys, spatial_size=list(patch_size), mode=["trilinear", "nearest"][: len(keys)]))
    if stage == "train":
        xforms.append(SpatialPadd(keys=keys, spatial_size=list(patch_size)))
        xforms.append(_training_crop(keys, label_key, patch_size, num_samples, crop_ratios))
        if augment:
            xforms += [
                RandFlipd(keys=keys, prob=0.5, spatial_axis=0),
                RandScaleIntensityd(keys=image_key, factors=0.1, prob=0.5),
                RandShiftIntensityd(keys=image_key, offsets=0.1, prob=0.5),
            ]
    if stage != "infer":
        xforms.append(EnsureTyped(keys=label_key, dtype="float32"))
    return Compose(xforms)


def _training_crop(
    keys: list[str],
    label_key: str,
    patch_size: Sequence[int],
    num_samples: int,
    crop_ratios: Sequence[float] | None,
) -> RandCropByPosNegLabeld | RandCropByLabelClassesd:
    """The label-balanced random crops of :func:`segmentation_transforms` in training (see its ``crop_ratios``)."""
    if crop_ratios is None:
        return RandCropByPosNegLabeld(
            keys=keys,
            label_key=label_key,
            spatial_size=list(patch_size),
            pos=1,
            neg=1,
            num_samples=int(num_samples),
            image_key=None,  # negatives anywhere inside the body box (z-scored MR has negative tissue)
            allow_smaller=False,
        )
    ratios = [float(r) for r in crop_ratios]
    if len(ratios) < 2 or any(r < 0 for r in ratios) or not any(ratios):
        raise ValueError(
            f"crop_ratios must hold one non-negative weight per class (background first), not all zero; "
            f"got {list(crop_ratios)}."
        )
    return RandCropByLabelClassesd(
        keys=keys,
        label_key=label_key,
        spatial_size=list(patch_size),
        ratios=ratios,
        num_classes=len(ratios),
        num_samples=int(num_samples),
        allow_smaller=False,
        warn=False,  # a class absent from a case is simply not drawn for that case
    )


def segmentation_postprocessing(
    num_classes: int,
    stage: str = "validate",
    preprocessing: Compose | None = None,
    output_dir: str | Path | None = None,
    image_key: str = "image",
    label_key: str = "label",
    pred_key: str = "pred",
) -> Compose:
    """Post-processing: softmax/argmax for metrics, or inversion to the input grid and NIfTI writing.

    Args:
        num_classes: number of output channels (including background).
        stage: ``"validate"`` (one-hot prediction and label for Dice) or ``"infer"``.
        preprocessing: the inference preprocessing, required for ``"infer"`` (to invert it).
        output_dir: where ``"infer"`` writes ``<name>_seg.nii.gz`` with the input's affine.
    """
    stage = look_up_option(stage, ("validate", "infer"))
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be >= 2 (background + at least one class), got {num_classes}.")
    if stage == "validate":
        return Compose(
            [
                Activationsd(keys=pred_key, softmax=True),
                AsDiscreted(keys=[pred_key, label_key], argmax=[True, False], to_onehot=int(num_classes)),
            ]
        )
    if preprocessing is None or output_dir is None:
        raise ValueError("stage='infer' needs the inference preprocessing (to invert it) and an output_dir.")
    return Compose(
        [
            Activationsd(keys=pred_key, softmax=True),
            Invertd(
                keys=pred_key,
                transform=preprocessing,
                orig_keys=image_key,
                nearest_interp=False,
                to_tensor=True,
            ),
            AsDiscreted(keys=pred_key, argmax=True),
            SaveImaged(
                keys=pred_key,
                output_dir=str(output_dir),
                output_postfix="seg",
                output_dtype="uint8",
                resample=False,
                separate_folder=False,
                print_log=False,
            ),
        ]
    )
