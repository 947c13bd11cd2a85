"""Intensity transforms for fundus and other 2D/3D images: CLAHE and background removal.

Each transform is an array class (channel-first image in, same shape out) plus a dictionary wrapper, after
MONAI ``HistogramNormalize`` / ``HistogramNormalized``. Both are deterministic, so they can sit before the
first random transform and be cached by ``CacheDataset``.

The SiCoVa / triplet fundus pretraining code this project replaces lists them as
"``CLAHETransform`` – Adaptive histogram equalization in LAB space" and
"``RemoveBackgroundTransform`` – Zero-out low-intensity pixels" (its README, "Key Components").
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import cv2
import numpy as np
import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_data_type, convert_to_dst_type, convert_to_tensor

from medssl3d.utils.checks import check_int, check_positive, check_size

__all__ = ["CLAHE", "CLAHEd", "RemoveBackground", "RemoveBackgroundd"]


class CLAHE(Transform):
    """Contrast-limited adaptive histogram equalisation (OpenCV ``cv2.createCLAHE``) of a channel-first image.

    * 1 channel (or any count other than 3, or ``lab=False``): every channel is equalised on its own.
    * 3 channels with ``lab=True``: the image is taken as RGB, converted to CIE LAB, only L is equalised and the
      result converted back to RGB, so hues are kept (the fundus code's "Adaptive histogram equalization in LAB
      space").
    * 3D volumes ``(C, X, Y, Z)`` are equalised slice by slice, the slices being taken across ``slice_axis``.

    OpenCV's CLAHE works on 8-bit images, so the image is mapped to uint8 internally: values are clipped to
    ``[0, max_value]``, scaled to ``[0, 255]`` and rounded; the result is scaled back to ``[0, max_value]`` and
    cast to the input's dtype. Float images therefore come back quantised to 256 levels (an error of at most
    ``max_value / 510`` even where CLAHE changes nothing). Shape and dtype are kept; as in MONAI, the result is a
    tensor (a numpy array comes back as a tensor) and a ``MetaTensor`` comes back as a ``MetaTensor`` with its
    metadata.

    The reference fundus pipelines do not state the CLAHE settings; the defaults (clip limit 2, 8 x 8 tiles) are
    the values commonly used for retinal images (OpenCV's own default clip limit, 40, hardly limits anything).

    Args:
        clip_limit: contrast limit per tile (OpenCV ``clipLimit``), > 0.
        tile_grid_size: number of tiles along the first and second spatial axes of each 2D plane (int: same
            for both). OpenCV takes (columns, rows); the order is converted here.
        slice_axis: 3D only: spatial axis (0, 1, 2 or negative) across which the volume is cut into 2D planes;
            the default, the last axis, gives axial slices of a RAS volume.
        max_value: the intensity that maps to 255. ``None``: 255 for integer images, and for float images 1.0
            if their maximum is <= 1 (images in [0, 1]) else 255 (float images in uint8 range).
        lab: equalise 3-channel images on the L channel of LAB (True) or each channel separately (False).

    Raises:
        ValueError: for a non-positive ``clip_limit`` or ``max_value``, a bad ``tile_grid_size`` or
            ``slice_axis``, or an image that is not channel-first 2D or 3D.

    Example:
        >>> CLAHE(clip_limit=2.0, tile_grid_size=8)(torch.rand(3, 64, 48)).shape
        torch.Size([3, 64, 48])
    """

    backend = [TransformBackends.NUMPY]

    def __init__(
        self,
        clip_limit: float = 2.0,
        tile_grid_size: Sequence[int] | int = (8, 8),
        slice_axis: int = -1,
        max_value: float | None = None,
        lab: bool = True,
    ) -> None:
        clip_limit = check_positive("clip_limit", clip_limit)
        slice_axis = check_int("slice_axis", slice_axis, -3, 2, hint=" (a spatial axis of a 3D volume)")
        if max_value is not None:
            max_value = check_positive("max_value", max_value, hint="; pass None to infer it from the image dtype")
        self.clip_limit = clip_limit
        self.tile_grid_size = check_size("tile_grid_size", tile_grid_size, spatial_dims=2)
        self.slice_axis = slice_axis
        self.max_value = max_value
        self.lab = bool(lab)

    def _scale(self, img: np.ndarray) -> float:
        if self.max_value is not None:
            return float(self.max_value)
        if not np.issubdtype(img.dtype, np.floating):
            return 255.0
        return 1.0 if img.size == 0 or float(img.max()) <= 1.0 else 255.0

    def _equalise_plane(self, clahe: cv2.CLAHE, plane: np.ndarray) -> np.ndarray:
        """plane: uint8 ``(C, X, Y)``; returns the equalised plane."""
        if plane.shape[0] == 3 and self.lab:
            lab = cv2.cvtColor(np.ascontiguousarray(plane.transpose(1, 2, 0)), cv2.COLOR_RGB2LAB)
            lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
            return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB).transpose(2, 0, 1)
        return np.stack([clahe.apply(np.ascontiguousarray(channel)) for channel in plane])

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """img: channel-first ``(C, X, Y)`` or ``(C, X, Y, Z)``; returns the equalised image, same shape and dtype."""
        img = convert_to_tensor(img, track_meta=get_track_meta())
        img_np, *_ = convert_data_type(img, np.ndarray)
        if img_np.ndim not in (3, 4):
            raise ValueError(
                f"CLAHE expects a channel-first 2D (C, X, Y) or 3D (C, X, Y, Z) image, got shape {tuple(img_np.shape)}."
            )
        scale = self._scale(img_np)
        u8 = np.rint(np.clip(img_np.astype(np.float32) * (255.0 / scale), 0.0, 255.0)).astype(np.uint8)
        # OpenCV's tileGridSize is (columns, rows): columns run along the plane's second axis
        clahe = cv2.createCLAHE(clipLimit=self.clip_limit, tileGridSize=self.tile_grid_size[::-1])
        if u8.ndim == 3:
            out = self._equalise_plane(clahe, u8)
        else:
            axis = 1 + self.slice_axis % 3
            planes = np.moveaxis(u8, axis, 0)  # (S, C, ...)
            out = np.moveaxis(np.stack([self._equalise_plane(clahe, p) for p in planes]), 0, axis)
        if not (scale == 255.0 and img_np.dtype == np.uint8):
            out = out.astype(np.float32) * (scale / 255.0)
            if not np.issubdtype(img_np.dtype, np.floating):
                out = np.rint(out)
        out, *_ = convert_to_dst_type(out, dst=img, dtype=img.dtype)
        return out


class CLAHEd(MapTransform):
    """Dictionary wrapper of :class:`CLAHE`: the same settings for every key.

    Args:
        keys: keys of the images to equalise.
        clip_limit, tile_grid_size, slice_axis, max_value, lab: see :class:`CLAHE`.
        allow_missing_keys: don't raise for missing keys.
    """

    backend = CLAHE.backend

    def __init__(
        self,
        keys: KeysCollection,
        clip_limit: float = 2.0,
        tile_grid_size: Sequence[int] | int = (8, 8),
        slice_axis: int = -1,
        max_value: float | None = None,
        lab: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = CLAHE(clip_limit, tile_grid_size, slice_axis, max_value, lab)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key])
        return d


class RemoveBackground(Transform):
    """Set to ``fill_value`` every pixel/voxel whose intensity, averaged over channels, is below ``threshold``.

    Meant for the black border around a fundus photograph (the fundus code's "Zero-out low-intensity pixels"),
    whose dark but not exactly zero JPEG noise otherwise survives into the crops. All channels of a background
    pixel are set, so a colour image gets clean black borders. Works for 2D and 3D; shape and dtype are kept
    (a tensor out, a ``MetaTensor`` with its metadata for a ``MetaTensor`` in).

    Args:
        threshold: intensity (in the image's own units: e.g. ``0.04`` for images in [0, 1], ``10`` for uint8
            images) below which a pixel counts as background. The reference code states no value.
        fill_value: value written to background pixels.

    Raises:
        TypeError: if ``threshold`` or ``fill_value`` is not a number.

    Example:
        >>> RemoveBackground(threshold=0.04)(torch.rand(3, 32, 32)).shape
        torch.Size([3, 32, 32])
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, threshold: float, fill_value: float = 0.0) -> None:
        for name, value in (("threshold", threshold), ("fill_value", fill_value)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):  # a TypeError, as documented
                raise TypeError(f"{name} must be a number, got {value!r}.")
        self.threshold = float(threshold)
        self.fill_value = float(fill_value)

    def background(self, img: NdarrayOrTensor) -> torch.Tensor:
        """Boolean background mask ``(1, *S)`` of a channel-first image."""
        t = convert_to_tensor(img, track_meta=False)
        return t.float().mean(0, keepdim=True) < self.threshold

    def __call__(self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None = None) -> NdarrayOrTensor:
        """img: channel-first ``(C, *S)``; mask: optional background mask ``(1, *S)`` to use instead of thresholding."""
        img = convert_to_tensor(img, track_meta=get_track_meta())
        if img.ndim < 2:
            raise ValueError(f"RemoveBackground expects a channel-first image (C, *S), got shape {tuple(img.shape)}.")
        bg = self.background(img) if mask is None else convert_to_tensor(mask, track_meta=False).bool()
        if tuple(bg.shape[1:]) != tuple(img.shape[1:]):
            raise ValueError(f"mask shape {tuple(bg.shape)} does not match image shape {tuple(img.shape)}.")
        plain = img.as_tensor() if hasattr(img, "as_tensor") else img
        out = plain.masked_fill(bg, self.fill_value)
        out, *_ = convert_to_dst_type(out, dst=img, dtype=img.dtype)
        return out


class RemoveBackgroundd(MapTransform):
    """Dictionary wrapper of :class:`RemoveBackground`.

    Args:
        keys: keys of the images to clean.
        threshold, fill_value: see :class:`RemoveBackground`.
        source_key: if given, the background is found on this image once and removed from every key (e.g. the
            image's background also blanked in a label map); otherwise each key is thresholded on its own.
        allow_missing_keys: don't raise for missing keys.
    """

    backend = RemoveBackground.backend

    def __init__(
        self,
        keys: KeysCollection,
        threshold: float,
        fill_value: float = 0.0,
        source_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = RemoveBackground(threshold, fill_value)
        self.source_key = source_key

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        mask = None
        if self.source_key is not None:
            if self.source_key not in d:
                raise KeyError(f"source_key {self.source_key!r} is not in the data (keys: {list(d)}).")
            mask = self.transform.background(d[self.source_key])
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key], mask)
        return d
