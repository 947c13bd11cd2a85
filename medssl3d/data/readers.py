"""A MONAI ``ImageReader`` built on SimpleITK.

MONAI ships readers for nibabel (NIfTI), pydicom, pynrrd, PIL, numpy and ITK, but none for SimpleITK:
its ``ITKReader`` needs the ``itk`` Python package, which is large and not a dependency of this project.
SimpleITK is (it reads NRRD, MetaImage, NIfTI and DICOM series), so :class:`SimpleITKReader` plugs it
into ``monai.transforms.LoadImage`` / ``LoadImaged`` with the same array layout and metadata as
``ITKReader`` and ``NibabelReader``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.config import PathLike
from monai.data import ImageReader
from monai.data.utils import is_no_channel, is_supported_format, orientation_ras_lps
from monai.utils import MetaKeys, SpaceKeys, ensure_tuple

__all__ = ["SimpleITKReader", "SIMPLEITK_SUFFIXES", "read_dicom_series_file_names"]

#: File suffixes (lower case, without the leading dot) that :class:`SimpleITKReader` claims.
SIMPLEITK_SUFFIXES: tuple[str, ...] = ("nii", "nii.gz", "nrrd", "nhdr", "mha", "mhd", "dcm", "dicom", "ima")

# Attribute set on the SimpleITK image objects returned by ``read`` so that ``get_data`` can report the
# file they came from without keeping per-call state on the reader (safe with thread-based loaders).
_FILENAME_ATTR = "_medssl3d_filename"


def _sitk() -> Any:
    """Import SimpleITK lazily (it is a dependency, but importing it costs time)."""
    import SimpleITK as sitk

    return sitk


def read_dicom_series_file_names(folder: PathLike, series_uid: str = "") -> list[str]:
    """Ordered slice files of the DICOM series in ``folder`` (as found by GDCM).

    Args:
        folder: a directory holding the files of one DICOM series.
        series_uid: the SeriesInstanceUID to read when the folder holds several series; ``""`` picks
            the first series GDCM reports (with a warning when there are several).

    Returns:
        the slice file names in the order GDCM sorts them (by image position along the slice normal).

    Raises:
        FileNotFoundError: when ``folder`` holds no DICOM series, or not the requested ``series_uid``.
    """
    sitk = _sitk()
    folder = os.fspath(folder)
    series_ids = list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder))
    if not series_ids:
        raise FileNotFoundError(
            f"No DICOM series found in directory: {folder}; pass a folder that holds the .dcm files of one series."
        )
    if series_uid:
        if series_uid not in series_ids:
            raise FileNotFoundError(
                f"DICOM series {series_uid!r} not found in {folder}; series present: {series_ids}."
            )
        chosen = series_uid
    else:
        if len(series_ids) > 1:
            warnings.warn(
                f"Directory {folder} holds {len(series_ids)} DICOM series; reading the first ({series_ids[0]}). "
                "Pass series_uid=... to SimpleITKReader to choose another.",
                stacklevel=2,
            )
        chosen = series_ids[0]
    return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, chosen))


def _merge_meta(header: dict, merged: dict) -> None:
    """Keep the first image's metadata; check later images (channels) have the same affine and shape."""
    if not merged:
        merged.update(header)
        return
    for key in (MetaKeys.AFFINE, MetaKeys.SPATIAL_SHAPE):
        if np.shape(header[key]) != np.shape(merged[key]) or not np.allclose(header[key], merged[key]):
            raise ValueError(
                f"Images stacked as channels must share {key}: got {header[key]} for "
                f"{header.get('filename_or_obj')} and {merged[key]} for {merged.get('filename_or_obj')}; "
                "resample them onto one grid first."
            )


def _stack_arrays(arrays: list[np.ndarray], meta: dict) -> np.ndarray:
    """Stack per-file arrays as channels, the way MONAI's readers do."""
    if len(arrays) == 1:
        return arrays[0]
    if not is_no_channel(meta.get(MetaKeys.ORIGINAL_CHANNEL_DIM)):
        return np.concatenate(arrays, axis=int(meta[MetaKeys.ORIGINAL_CHANNEL_DIM]))
    meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = 0
    return np.stack(arrays, axis=0)


class SimpleITKReader(ImageReader):
    """Load medical images with SimpleITK: NRRD, MetaImage, NIfTI, single DICOM files and DICOM series.

    MONAI has no SimpleITK reader (its ``ITKReader`` needs the ``itk`` package, which this project does
    not install), which is why this class exists. It follows ``monai.data.ITKReader``:

    - the array is indexed (x, y, z) like ``NibabelReader``'s, i.e. SimpleITK's (z, y, x) array transposed;
      vector (multi-component) images come back channel-last, (x, y, z, C);
    - ``affine`` / ``original_affine`` are in RAS (ITK's LPS direction, spacing and origin with the first
      two rows flipped), so they equal nibabel's affine for a NIfTI file;
    - ``spatial_shape``, ``original_channel_dim`` (``float("nan")``, MONAI's "no channel" marker, for
      scalar images; ``-1`` for vector images), ``spacing``, ``space`` and, from ``LoadImage``,
      ``filename_or_obj``.

    A directory is read as a DICOM series (the files GDCM's ``GetGDCMSeriesFileNames`` finds).
    A list of files is stacked as channels, as MONAI's readers do.

    ITK refuses NIfTI files whose affine is not a rotation times spacing (sheared sform and no usable
    qform); nibabel reads those. ``LoadImage(reader=[SimpleITKReader(), "NibabelReader"])`` tries
    nibabel first (the last reader listed is tried first) and falls back to SimpleITK for NRRD,
    MetaImage and DICOM; note that a reader given to ``LoadImage``'s constructor falls back silently
    to MONAI's default readers when it fails, whereas ``LoadImage()(path, reader=...)`` does not.

    Args:
        channel_dim: the channel dimension of the input image; ``None`` (default) sets
            ``original_channel_dim`` to "no channel" for scalar images and ``-1`` for vector images.
            ``"no_channel"`` is accepted as in MONAI.
        series_uid: SeriesInstanceUID to read when a DICOM directory holds several series; ``""`` reads
            the first one (with a warning).
        series_meta: for DICOM series, copy the first slice's DICOM tags into the metadata.
        affine_lps_to_ras: convert the affine from ITK's LPS to RAS (default, like ``NibabelReader``).
        header_meta: copy the file header fields SimpleITK exposes (NIfTI/NRRD keys) into the metadata.
            Set ``False`` when images of different formats go into one batch, so that every metadata
            dictionary has the same keys for collation.
        output_pixel_type: a SimpleITK pixel type (e.g. ``SimpleITK.sitkFloat32``) to read as; the
            default ``None`` keeps the stored type.

    Example:
        >>> from monai.transforms import LoadImage
        >>> loader = LoadImage(reader=SimpleITKReader(), image_only=True)
        >>> img = loader("brain1_image.nrrd")  # doctest: +SKIP
        >>> img.shape, img.affine  # doctest: +SKIP
    """

    def __init__(
        self,
        channel_dim: str | int | None = None,
        series_uid: str = "",
        series_meta: bool = False,
        affine_lps_to_ras: bool = True,
        header_meta: bool = True,
        output_pixel_type: int | None = None,
    ) -> None:
        super().__init__()
        if channel_dim is not None and channel_dim != "no_channel" and not isinstance(channel_dim, int):
            raise ValueError(f"channel_dim must be None, 'no_channel' or an int, got {channel_dim!r}.")
        self.channel_dim: float | int | None = float("nan") if channel_dim == "no_channel" else channel_dim
        self.series_uid = series_uid
        self.series_meta = series_meta
        self.affine_lps_to_ras = affine_lps_to_ras
        self.header_meta = header_meta
        self.output_pixel_type = output_pixel_type

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """Whether SimpleITK should read ``filename``: known suffixes, or directories (DICOM series).

        Args:
            filename: file name or a list of file names; all must be supported.
        """
        names = ensure_tuple(filename)
        return all(Path(n).is_dir() or is_supported_format(n, SIMPLEITK_SUFFIXES) for n in names)

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs: Any) -> Any:
        """Read one image (or one per file of a list) as SimpleITK image object(s).

        Args:
            data: a file name, a DICOM series directory, or a list of them (stacked as channels later).
            kwargs: ``series_uid`` overrides the constructor's value for this call.

        Returns:
            a ``SimpleITK.Image`` or a list of them when ``data`` is a list.
        """
        sitk = _sitk()
        series_uid = kwargs.get("series_uid", self.series_uid)
        filenames = ensure_tuple(data)
        images = []
        for name in filenames:
            name = os.fspath(name)
            if Path(name).is_dir():
                files = read_dicom_series_file_names(name, series_uid)
                reader = sitk.ImageSeriesReader()
                reader.SetFileNames(files)
                if self.series_meta:
                    reader.MetaDataDictionaryArrayUpdateOn()
                    reader.LoadPrivateTagsOn()
                if self.output_pixel_type is not None:
                    reader.SetOutputPixelType(self.output_pixel_type)
                img = reader.Execute()
                if self.series_meta:
                    for key in reader.GetMetaDataKeys(0):
                        img.SetMetaData(key, reader.GetMetaData(0, key))
            else:
                if not Path(name).exists():
                    raise FileNotFoundError(f"Cannot find image file: {name}.")
                if self.output_pixel_type is None:
                    img = sitk.ReadImage(name)
                else:
                    img = sitk.ReadImage(name, self.output_pixel_type)
            setattr(img, _FILENAME_ATTR, name)
            images.append(img)
        return images if len(filenames) > 1 else images[0]

    def get_data(self, img: Any) -> tuple[np.ndarray, dict]:
        """Array and metadata of SimpleITK image(s); several images are stacked as channels.

        Args:
            img: a ``SimpleITK.Image`` or a list of them (from :meth:`read`).

        Returns:
            the array indexed (x, y, z[, C]) and the metadata dictionary (``affine``, ``original_affine``,
            ``spatial_shape``, ``original_channel_dim``, ``spacing``, ``space``, ``filename_or_obj``).
        """
        arrays: list[np.ndarray] = []
        compatible_meta: dict = {}
        for image in img if isinstance(img, (list, tuple)) else [img]:
            data = self._get_array_data(image)
            arrays.append(data)
            header = self._get_meta_dict(image)
            header[MetaKeys.ORIGINAL_AFFINE] = self._get_affine(image)
            header[MetaKeys.AFFINE] = header[MetaKeys.ORIGINAL_AFFINE].copy()
            header[MetaKeys.SPACE] = SpaceKeys.RAS if self.affine_lps_to_ras else SpaceKeys.LPS
            header[MetaKeys.SPATIAL_SHAPE] = self._get_spatial_shape(image)
            if self.channel_dim is None:
                header[MetaKeys.ORIGINAL_CHANNEL_DIM] = (
                    float("nan") if data.ndim == len(header[MetaKeys.SPATIAL_SHAPE]) else -1
                )
            else:
                header[MetaKeys.ORIGINAL_CHANNEL_DIM] = self.channel_dim
            filename = getattr(image, _FILENAME_ATTR, None)
            if filename is not None:
                header["filename_or_obj"] = filename
            _merge_meta(header, compatible_meta)
        return _stack_arrays(arrays, compatible_meta), compatible_meta

    def _get_meta_dict(self, img: Any) -> dict:
        """Header fields (unless ``header_meta=False``) and spacing of ``img``."""
        meta: dict = {}
        if self.header_meta:
            for key in img.GetMetaDataKeys():
                if key.startswith("ITK_"):
                    continue
                meta[key] = img.GetMetaData(key)
        meta["spacing"] = np.asarray(img.GetSpacing())
        return meta

    def _get_affine(self, img: Any) -> np.ndarray:
        """Voxel-to-world affine of ``img``: direction @ diag(spacing), origin; RAS unless configured."""
        dim = img.GetDimension()
        direction = np.asarray(img.GetDirection(), dtype=np.float64).reshape(dim, dim)
        spacing = np.asarray(img.GetSpacing(), dtype=np.float64)
        origin = np.asarray(img.GetOrigin(), dtype=np.float64)
        sr = min(max(dim, 1), 3)
        affine = np.eye(sr + 1)
        affine[:sr, :sr] = direction[:sr, :sr] @ np.diag(spacing[:sr])
        affine[:sr, -1] = origin[:sr]
        if self.affine_lps_to_ras:
            affine = orientation_ras_lps(affine)
        return affine

    def _get_spatial_shape(self, img: Any) -> np.ndarray:
        """Spatial size (x, y, z) of ``img`` without the channel."""
        size = list(img.GetSize())
        if isinstance(self.channel_dim, int) and not isinstance(self.channel_dim, bool):
            size.pop(self.channel_dim)
        sr = min(max(img.GetDimension(), 1), 3)
        return np.asarray(size[:sr])

    def _get_array_data(self, img: Any) -> np.ndarray:
        """Array of ``img`` indexed (x, y, z) (channel-last for vector images)."""
        sitk = _sitk()
        array = sitk.GetArrayFromImage(img)  # (z, y, x) or (z, y, x, C); a copy we own
        if img.GetNumberOfComponentsPerPixel() == 1:
            return array.T
        return np.moveaxis(array.T, 0, -1)
