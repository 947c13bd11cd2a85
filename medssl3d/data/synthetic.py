"""Synthetic datasets: a Medical Segmentation Decathlon folder of abdominal CT phantoms.

:func:`generate_phantom_dataset` writes ``dataset.json``, ``imagesTr/``, ``labelsTr/`` and ``imagesTs/``
with phantoms from :func:`medssl3d.data.phantom.make_phantom_case` (pancreas and tumour labels), seeded per
case, as a stand-in for Task07 (Pancreas) in tests, demos and CI. Only numpy (and nibabel to write) is needed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medssl3d.data.phantom import PHANTOM_LABELS, make_phantom_case
from medssl3d.utils.checks import check_int, check_non_negative_int, check_positive, check_size

__all__ = ["generate_phantom_dataset"]

PathLike = str | os.PathLike


def _checked_arguments(
    num_cases: int, num_test: int, shape: Sequence[int], spacing: Sequence[float], seed: int
) -> tuple[int, int, tuple[int, ...], tuple[float, ...], int]:
    """The arguments of :func:`generate_phantom_dataset` as plain types (``ValueError`` naming a bad one)."""
    if check_int("num_cases", num_cases) < 1:
        raise ValueError(f"num_cases must be an integer >= 1, got {num_cases!r}.")
    if check_int("num_test", num_test) < 0:
        raise ValueError(f"num_test must be an integer >= 0, got {num_test!r}.")
    seed = check_non_negative_int("seed", seed)
    try:
        shape3 = check_size("shape", shape, spatial_dims=3, minimum=16)
    except ValueError:
        raise ValueError(f"shape must be 3 integers >= 16 (x, y, z), got {shape!r}.") from None
    spacing_message = f"spacing must be 3 positive numbers in mm (x, y, z), got {spacing!r}."
    if isinstance(spacing, (str, bytes)) or not isinstance(spacing, Sequence) or len(spacing) != 3:
        raise ValueError(spacing_message)
    try:
        spacing3 = tuple(check_positive("spacing", s) for s in spacing)
    except ValueError:
        raise ValueError(spacing_message) from None
    return int(num_cases), int(num_test), shape3, spacing3, seed


def _empty_output_dir(output_dir: PathLike, overwrite: bool) -> Path:
    """``output_dir`` with empty ``imagesTr``, ``labelsTr`` and ``imagesTs`` folders and no ``dataset.json``.

    Raises:
        FileExistsError: ``output_dir`` is a file, or a non-empty folder and ``overwrite`` is False.
    """
    out = Path(os.fspath(output_dir)).expanduser()
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output_dir {out} is a file; pass a folder path.")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"output_dir {out} is not empty; pass overwrite=True to replace its phantom dataset, "
                "or choose an empty folder."
            )
        for sub in ("imagesTr", "labelsTr", "imagesTs"):
            if (out / sub).is_dir():
                shutil.rmtree(out / sub)
        if (out / "dataset.json").exists():
            (out / "dataset.json").unlink()
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    return out


def _save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Write ``array`` as NIfTI, ``affine`` as both qform and sform, in mm."""
    import nibabel as nib

    image = nib.Nifti1Image(array, affine)
    image.header.set_data_dtype(array.dtype)
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, str(path))


def _write_cases(
    out: Path, num_cases: int, num_test: int, shape: tuple[int, ...], spacing: tuple[float, ...], seed: int
) -> tuple[list[dict], list[str]]:
    """Write the training images and labels and the test images; returns the ``training`` and ``test`` lists."""
    spacing_arr = np.asarray(spacing)
    affine = np.diag([*spacing_arr, 1.0])
    affine[:3, 3] = -(np.asarray(shape) - 1) / 2.0 * spacing_arr
    children = np.random.SeedSequence(seed).spawn(num_cases + num_test)
    training, test = [], []
    for i in range(num_cases):
        image, label = make_phantom_case(shape, np.random.default_rng(children[i]))
        name = f"phantom_{i:03d}.nii.gz"
        _save_nifti(image, affine, out / "imagesTr" / name)
        _save_nifti(label, affine, out / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    for j in range(num_test):
        image, _ = make_phantom_case(shape, np.random.default_rng(children[num_cases + j]))
        name = f"phantom_{num_cases + j:03d}.nii.gz"
        _save_nifti(image, affine, out / "imagesTs" / name)
        test.append(f"./imagesTs/{name}")
    return training, test


def generate_phantom_dataset(
    output_dir: PathLike,
    num_cases: int = 10,
    num_test: int = 2,
    shape: Sequence[int] = (64, 64, 48),
    spacing: Sequence[float] = (1.5, 1.5, 2.0),
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a Medical Segmentation Decathlon style folder of synthetic pancreas CT phantoms.

    Layout: ``dataset.json`` (modality ``{"0": "CT"}``, labels background / pancreas / tumour, ``training``
    and ``test`` lists), ``imagesTr/phantom_000.nii.gz`` ..., ``labelsTr/`` and ``imagesTs/``. Images are
    int16 Hounsfield units, labels uint8, with ``spacing`` on the affine's diagonal (RAS, centred at 0).
    Case ``i`` depends only on ``seed`` and ``i`` (one ``numpy.random.SeedSequence`` child per case), so
    a larger ``num_cases`` adds cases without changing the first ones. The anatomy is described in
    :mod:`medssl3d.data.phantom`.

    Args:
        output_dir: the folder to write (created if missing).
        num_cases: number of labelled training cases (>= 1).
        num_test: number of unlabelled test images (>= 0).
        shape: array shape (x, y, z), each >= 16 (one integer: a cube).
        spacing: voxel size in mm (x, y, z), positive.
        seed: random seed.
        overwrite: replace ``dataset.json``, ``imagesTr``, ``labelsTr`` and ``imagesTs`` in a non-empty
            folder (other files are left alone).

    Returns:
        the dataset folder.

    Raises:
        ValueError: a bad argument.
        FileExistsError: ``output_dir`` is not empty and ``overwrite`` is False.

    Example:
        >>> path = generate_phantom_dataset("/tmp/phantoms", num_cases=4, overwrite=True)  # doctest: +SKIP
        >>> sorted(p.name for p in path.iterdir())  # doctest: +SKIP
        ['dataset.json', 'imagesTr', 'imagesTs', 'labelsTr']
    """
    num_cases, num_test, shape3, spacing3, seed = _checked_arguments(num_cases, num_test, shape, spacing, seed)
    out = _empty_output_dir(output_dir, overwrite)
    training, test = _write_cases(out, num_cases, num_test, shape3, spacing3, seed)
    info = {
        "name": "SyntheticPancreasPhantom",
        "description": "Synthetic abdominal CT phantoms with pancreas and tumour labels (medssl3d)",
        "reference": "generated by medssl3d.data.generate_phantom_dataset",
        "licence": "CC0-1.0",
        "release": "1.0",
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": dict(PHANTOM_LABELS),
        "numTraining": num_cases,
        "numTest": num_test,
        "training": training,
        "test": test,
        "generator": {"seed": seed, "shape": list(shape3), "spacing": list(spacing3)},
    }
    with open(out / "dataset.json", "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    return out
