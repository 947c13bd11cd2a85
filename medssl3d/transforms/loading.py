"""Loading a volume for a segmentation bundle, with errors that name the file and what the bundle expects.

The same preprocessing runs under ``monai.bundle run`` and inside MONAI Label's ``BundleInferTask`` /
``BundleTrainTask``. MONAI Label puts extra entries into the data dictionary (``image_path``, ``device``,
``model_filename``, ...) and wraps every ``LoadImaged`` of the chain, so the three transforms here keep the
chain working there and turn what would be a trace from inside a reader or a convolution into one message:

- :class:`LoadVolumed`: MONAI's ``LoadImaged``; an unreadable file raises :class:`ImageInputError` naming
  the file and the formats the bundle reads.
- :class:`CheckVolumed`: after ``EnsureChannelFirstd``, the channel count and the number of spatial
  dimensions are what the network takes (a 4-channel MR or a 2D photograph sent to a 1-channel 3D CT
  bundle is refused before any resampling).
- :class:`Spacingd`: MONAI's ``Spacingd`` without its habit of calling ``.update`` on every entry whose
  name starts with ``<key>_`` (MONAI 1.6 treats all of them as meta dictionaries, so MONAI Label's
  ``image_path`` string crashed the chain with ``AttributeError: 'str' object has no attribute 'update'``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from monai.config import KeysCollection
from monai.transforms import LoadImaged, MapTransform
from monai.transforms import Spacingd as _MonaiSpacingd

from medssl3d.data.errors import DataValidationError

__all__ = ["ImageInputError", "LoadVolumed", "CheckVolumed", "Spacingd", "VOLUME_FORMATS"]

#: What the 3D pipelines read (nibabel for NIfTI, SimpleITK for the rest), for error messages.
VOLUME_FORMATS = "NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd) or a folder holding one DICOM series"


class ImageInputError(DataValidationError):
    """An input image cannot be used by a bundle: unreadable, or the wrong number of channels or dimensions."""


def _source_name(data: Mapping, key: Hashable) -> str:
    """The file an entry came from: ``filename_or_obj`` of its meta data, else the value if it is a path."""
    value = data.get(key)
    meta = getattr(value, "meta", None)
    if isinstance(meta, Mapping) and meta.get("filename_or_obj"):
        return str(meta["filename_or_obj"])
    meta_dict = data.get(f"{key}_meta_dict")
    if isinstance(meta_dict, Mapping) and meta_dict.get("filename_or_obj"):
        return str(meta_dict["filename_or_obj"])
    if isinstance(value, (str, bytes)) or hasattr(value, "__fspath__"):
        return str(value)
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return f"the {key!r} entry"


class LoadVolumed(LoadImaged):
    """``monai.transforms.LoadImaged`` whose failures name the file and what the bundle reads.

    Any exception of the readers (missing file, corrupt file, unknown format) becomes an
    :class:`ImageInputError` with the path and ``expects`` (the original exception is chained). It stays a
    ``LoadImaged``, so MONAI Label's ``BundleInferTask`` finds and wraps it like the stock transform.

    Args:
        keys: keys of the paths to load.
        expects: what the bundle reads, for the message (default: the 3D formats of this package).
        args, kwargs: passed to ``LoadImaged``.
    """

    def __init__(self, keys: KeysCollection, *args: Any, expects: str = "", **kwargs: Any) -> None:
        super().__init__(keys, *args, **kwargs)
        self.expects = expects or f"a 3D image as {VOLUME_FORMATS}"

    def __call__(self, data, reader=None):
        try:
            return super().__call__(data, reader)
        except Exception as e:
            missing = [k for k in self.keys if k not in data]
            if missing and not self.allow_missing_keys:
                raise ImageInputError(
                    f"the input has no {missing[0]!r} entry (keys: {sorted(map(str, data))}); pass the path of "
                    f"{self.expects} under {missing[0]!r}."
                ) from e
            names = "; ".join(_source_name(data, k) for k in self.keys if k in data)
            reason = " ".join(str(e).split())
            if len(reason) > 300:
                reason = reason[:300] + "..."
            raise ImageInputError(
                f"cannot read {names} ({type(e).__name__}: {reason}); this bundle reads {self.expects}: "
                "check the path, re-export the file in one of these formats, or fix the corrupt file."
            ) from e


class CheckVolumed(MapTransform):
    """Refuse an image whose channel count or number of spatial dimensions the network does not take.

    Runs on channel-first data (after ``EnsureChannelFirstd``); passes the data through unchanged.

    Args:
        keys: keys to check.
        num_channels: channels each key must have (one value, or one per key); ``None`` skips the check.
        spatial_dims: spatial dimensions each key must have; ``None`` skips the check.
        what: how the message names the bundle's input, e.g. ``"a 1-channel 3D CT volume"``.
        allow_missing_keys: don't raise when a key is absent.

    Raises:
        ImageInputError: naming the file, its shape and what was expected.
    """

    def __init__(
        self,
        keys: KeysCollection,
        num_channels: int | Sequence[int | None] | None = 1,
        spatial_dims: int | None = 3,
        what: str = "",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        channels = list(num_channels) if isinstance(num_channels, Sequence) else [num_channels] * len(self.keys)
        if len(channels) != len(self.keys):
            raise ValueError(f"num_channels needs one value per key ({len(self.keys)}), got {list(channels)}.")
        for c in channels:
            if c is not None and (isinstance(c, bool) or int(c) != c or int(c) < 1):
                raise ValueError(f"num_channels must be positive integers or None, got {list(channels)}.")
        if spatial_dims is not None and int(spatial_dims) not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}.")
        self.num_channels = [None if c is None else int(c) for c in channels]
        self.spatial_dims = None if spatial_dims is None else int(spatial_dims)
        self.what = what

    def __call__(self, data):
        d = dict(data)
        for key, channels in self.key_iterator(d, self.num_channels):
            shape = tuple(int(s) for s in d[key].shape)
            dims = len(shape) - 1
            wrong_dims = self.spatial_dims is not None and dims != self.spatial_dims
            wrong_channels = channels is not None and (not shape or shape[0] != channels)
            if not (wrong_dims or wrong_channels):
                continue
            wanted = self.what or (
                f"{'' if channels is None else f'{channels}-channel '}"
                f"{'' if self.spatial_dims is None else f'{self.spatial_dims}D '}image"
            )
            found = f"{shape[0] if shape else 0} channel(s) and {dims} spatial dimension(s)"
            raise ImageInputError(
                f"{_source_name(d, key)} has {found} (channel-first shape {list(shape)}), but {key!r} must be "
                f"{wanted}; pass such an image, or a bundle configured for this one (e.g. in_channels)."
            )
        return d


class Spacingd(_MonaiSpacingd):
    """``monai.transforms.Spacingd`` that leaves non-dictionary ``<key>_*`` entries alone.

    MONAI 1.6's ``Spacingd`` copies the resampled meta data into every entry whose name starts with
    ``<key>_``, assuming all of them are meta dictionaries. MONAI Label adds ``image_path`` (a string),
    which made it raise ``AttributeError``. This subclass sets such entries aside during the call and puts
    them back unchanged; everything else, ``inverse`` included, is MONAI's.
    """

    def __call__(self, data, lazy: bool | None = None):
        d = dict(data)
        prefixes = tuple(f"{k}_" for k in self.keys)
        aside = {
            k: d.pop(k)
            for k in list(d)
            if isinstance(k, str) and k.startswith(prefixes) and not isinstance(d[k], Mapping)
        }
        out = super().__call__(d, lazy=lazy)
        out.update(aside)
        return out
