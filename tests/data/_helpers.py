"""Small file writers shared by the data tests (NIfTI, NRRD, DICOM series, Decathlon folders)."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

REAL_DATA_ENV = "MEDSSL3D_REAL_DATA"


def real_data_dir(subfolder: str = "") -> Path | None:
    """The shared real-data folder (or one of its subfolders) from ``MEDSSL3D_REAL_DATA``, else None."""
    root = os.environ.get(REAL_DATA_ENV, "")
    if not root:
        return None
    path = Path(root) / subfolder
    return path if path.exists() else None


def rotated_affine(spacing=(1.5, 0.8, 3.0), origin=(10.0, -20.0, 5.0), angle=0.3) -> np.ndarray:
    """An orthonormal-direction affine with a rotation about z, a flipped x axis, spacing and origin."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([-1.0, 1.0, 1.0]) @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), str(path))
    return path


def write_sitk(path: Path, array_zyx: np.ndarray, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), vector=False) -> Path:
    """Write ``array_zyx`` (SimpleITK's (z, y, x[, C]) order) with SimpleITK; the suffix picks the format."""
    import SimpleITK as sitk

    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array_zyx, isVector=vector)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))
    return path


def write_dicom_series(
    folder: Path, array_zyx: np.ndarray, spacing=(0.8, 0.9, 2.5), origin=(10.0, -20.0, 30.0), suffix=".dcm"
) -> Path:
    """Write an int16 volume as one DICOM file per slice with SimpleITK (GDCM), readable as a series."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array_zyx.astype(np.int16))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    uid = "1.2.826.0.1.3680043.2.1125.77." + str(zlib.crc32(str(folder).encode()))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    if not suffix:
        writer.SetImageIO("GDCMImageIO")
    for k in range(image.GetDepth()):
        slice_k = image[:, :, k]
        position = "\\".join(str(v) for v in image.TransformIndexToPhysicalPoint((0, 0, k)))
        tags = {
            "0008|0060": "CT",
            "0020|000d": uid + ".1",
            "0020|000e": uid + ".2",
            "0020|0032": position,
            "0020|0013": str(k + 1),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0028|0030": f"{spacing[1]}\\{spacing[0]}",
            "0018|0050": str(spacing[2]),
        }
        for tag, value in tags.items():
            slice_k.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}{suffix}"))
        writer.Execute(slice_k)
    return folder


def make_decathlon(
    root: Path,
    num_cases: int = 3,
    shape=(6, 5, 4),
    labels=None,
    num_classes: int = 3,
    test=None,
    modality="MRI",
    image_dtype=np.float32,
) -> Path:
    """A tiny Decathlon folder: ``case_XXX`` images of random values and labels cycling 0..num_classes-1."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    training = []
    for i in range(num_cases):
        name = f"case_{i:03d}.nii.gz"
        image = rng.normal(size=shape).astype(image_dtype)
        label = (np.arange(np.prod(shape)).reshape(shape) % num_classes).astype(np.uint8)
        write_nifti(root / "imagesTr" / name, image)
        write_nifti(root / "labelsTr" / name, label)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    info = {
        "name": "tiny",
        "modality": {"0": modality} if modality is not None else None,
        "labels": labels if labels is not None else {str(i): f"class{i}" for i in range(num_classes)},
        "numTraining": num_cases,
        "training": training,
    }
    if info["modality"] is None:
        del info["modality"]
    if test is not None:
        for entry in test:
            path = entry if isinstance(entry, str) else entry["image"]
            write_nifti(root / path, rng.normal(size=shape).astype(np.float32))
        info["test"] = list(test)
    (root / "dataset.json").write_text(json.dumps(info, indent=1))
    return root


def dilate(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """6-neighbour binary dilation in numpy."""
    out = mask.copy()
    for _ in range(iterations):
        padded = np.pad(out, 1)
        grown = padded[1:-1, 1:-1, 1:-1].copy()
        for axis in range(3):
            for shift in (-1, 1):
                grown |= np.roll(padded, shift, axis=axis)[1:-1, 1:-1, 1:-1]
        out = grown
    return out


def erode(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    return ~dilate(~mask, iterations)
