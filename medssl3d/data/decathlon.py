"""Medical Segmentation Decathlon folders: ``dataset.json``, datalists and their validation.

A Decathlon folder holds ``dataset.json`` (``labels``, ``modality``, ``training`` and ``test`` lists)
next to ``imagesTr/``, ``labelsTr/`` and ``imagesTs/``. The functions here read it with MONAI's
``load_decathlon_datalist`` and check, before any training starts, that every listed file exists,
loads, matches its label's shape and has label values the ``labels`` table declares.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medssl3d.data.errors import DatasetNotFoundError, DataValidationError
from medssl3d.utils.checks import check_positive_int

__all__ = [
    "read_dataset_json",
    "class_names",
    "modality",
    "load_decathlon",
    "validate_datalist",
    "is_nifti",
]

PathLike = str | os.PathLike

_NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti(path: PathLike) -> bool:
    """Whether ``path`` names a NIfTI file (``.nii`` or ``.nii.gz``, any case)."""
    return os.fspath(path).lower().endswith(_NIFTI_SUFFIXES)


def _json_path(dataset_dir: PathLike) -> Path:
    """``<dataset_dir>/dataset.json`` (or ``dataset_dir`` itself when it names a ``.json`` file), checked to exist."""
    if not os.fspath(dataset_dir).strip():
        raise DatasetNotFoundError(
            "dataset_dir is empty; pass the folder containing dataset.json, e.g. --dataset_dir /data/Task07_Pancreas."
        )
    path = Path(os.fspath(dataset_dir)).expanduser()
    if path.suffix.lower() == ".json" and path.is_file():
        return path
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"Cannot find dataset directory: {path}; pass dataset_dir=<folder containing dataset.json>."
        )
    json_path = path / "dataset.json"
    if not json_path.is_file():
        raise DatasetNotFoundError(
            f"Cannot find dataset.json in {path}; pass dataset_dir=<folder containing dataset.json> "
            "(Medical Segmentation Decathlon layout) or write one listing 'labels' and 'training'."
        )
    return json_path


def _check_labels(labels: Any, where: str) -> list[str]:
    """Validate a Decathlon ``labels`` table and return the class names ordered by integer key."""
    if not isinstance(labels, Mapping) or not labels:
        raise DataValidationError(
            f"'labels' in {where} must be a non-empty object mapping '0', '1', ... to class names, "
            f"got {labels!r}; write e.g. \"labels\": {{\"0\": \"background\", \"1\": \"organ\"}}."
        )
    keys: dict[int, str] = {}
    bad: list[str] = []
    for key, name in labels.items():
        try:
            index = int(str(key).strip())
        except ValueError:
            bad.append(str(key))
            continue
        if str(index) != str(key).strip():
            bad.append(str(key))
            continue
        keys[index] = str(name)
    expected = list(range(len(labels)))
    if bad or sorted(keys) != expected:
        raise DataValidationError(
            f"'labels' keys in {where} must be the integers 0..{len(labels) - 1} (as strings), "
            f"got {sorted(map(str, labels), key=str)}; renumber the classes consecutively from '0' (background)."
        )
    return [keys[i] for i in expected]


def read_dataset_json(dataset_dir: PathLike) -> dict:
    """Read and check ``<dataset_dir>/dataset.json`` of a Medical Segmentation Decathlon folder.

    Args:
        dataset_dir: the folder containing ``dataset.json`` (a path to the ``.json`` file itself also works).

    Returns:
        the parsed JSON dictionary.

    Raises:
        DatasetNotFoundError: the folder or its ``dataset.json`` is missing.
        DataValidationError: the file is not valid JSON, has no ``labels`` or ``training`` key,
            or the ``labels`` keys are not the integers ``0..C-1``.

    Example:
        >>> info = read_dataset_json("Task04_Hippocampus")  # doctest: +SKIP
        >>> info["labels"]  # doctest: +SKIP
        {'0': 'background', '1': 'Anterior', '2': 'Posterior'}
    """
    json_path = _json_path(dataset_dir)
    try:
        with open(json_path, encoding="utf-8") as f:
            info = json.load(f)
    except json.JSONDecodeError as e:
        raise DataValidationError(
            f"{json_path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); fix the file."
        ) from e
    except UnicodeDecodeError as e:
        raise DataValidationError(f"{json_path} is not a UTF-8 text file ({e}); fix or rewrite it.") from e
    if not isinstance(info, dict):
        raise DataValidationError(f"{json_path} must hold a JSON object, got {type(info).__name__}.")
    if "labels" not in info:
        raise DataValidationError(
            f"{json_path} has no 'labels' key; add e.g. \"labels\": {{\"0\": \"background\", \"1\": \"organ\"}}."
        )
    _check_labels(info["labels"], str(json_path))
    if "training" not in info:
        raise DataValidationError(
            f"{json_path} has no 'training' key; add \"training\": [{{\"image\": \"./imagesTr/x.nii.gz\", "
            "\"label\": \"./labelsTr/x.nii.gz\"}, ...]."
        )
    if not isinstance(info["training"], list):
        raise DataValidationError(
            f"'training' in {json_path} must be a list of {{\"image\": ..., \"label\": ...}} objects, "
            f"got {type(info['training']).__name__}."
        )
    return info


def class_names(dataset_dir_or_json: PathLike | Mapping) -> list[str]:
    """Class names of a Decathlon dataset ordered by their integer label (``"0": "background"`` first).

    Args:
        dataset_dir_or_json: the dataset folder, or the dictionary :func:`read_dataset_json` returned.

    Returns:
        e.g. ``["background", "pancreas", "tumour"]``.
    """
    if isinstance(dataset_dir_or_json, Mapping):
        if "labels" not in dataset_dir_or_json:
            raise DataValidationError("the dataset dictionary has no 'labels' key; pass the parsed dataset.json.")
        return _check_labels(dataset_dir_or_json["labels"], "the dataset dictionary")
    info = read_dataset_json(dataset_dir_or_json)
    return _check_labels(info["labels"], str(_json_path(dataset_dir_or_json)))


def modality(dataset_dir: PathLike | Mapping) -> str:
    """Imaging modality of a Decathlon dataset (``modality["0"]``, e.g. ``"CT"`` or ``"MRI"``).

    Args:
        dataset_dir: the dataset folder, or the dictionary :func:`read_dataset_json` returned.

    Returns:
        the modality of channel 0, or ``""`` when ``dataset.json`` has none.
    """
    info = dataset_dir if isinstance(dataset_dir, Mapping) else read_dataset_json(dataset_dir)
    value = info.get("modality")
    if isinstance(value, Mapping):
        value = value.get("0", value.get(0, ""))
    return "" if value is None else str(value)


def load_decathlon(dataset_dir: PathLike, section: str = "training") -> list[dict]:
    """Datalist of one section of a Decathlon folder, with absolute paths.

    Uses ``monai.data.load_decathlon_datalist``; ``training`` items have ``image`` and ``label`` keys,
    ``test`` items only ``image`` (Decathlon stores test entries as plain strings).

    Args:
        dataset_dir: the folder containing ``dataset.json``.
        section: the list to read: ``"training"``, ``"test"`` or any other list key (e.g. ``"validation"``).

    Returns:
        e.g. ``[{"image": "/data/Task04/imagesTr/x.nii.gz", "label": "/data/Task04/labelsTr/x.nii.gz"}, ...]``;
        an empty list when the section is present but empty.

    Raises:
        DataValidationError: the section is missing or malformed (see also :func:`read_dataset_json`).
    """
    from monai.data import load_decathlon_datalist

    info = read_dataset_json(dataset_dir)
    json_path = _json_path(dataset_dir)
    if section not in info:
        present = [k for k, v in info.items() if isinstance(v, list)]
        raise DataValidationError(
            f"{json_path} has no {section!r} section; sections present: {present}; pass section=one of them."
        )
    entries = info[section]
    if not isinstance(entries, list):
        raise DataValidationError(f"{section!r} in {json_path} must be a list, got {type(entries).__name__}.")
    if not entries:
        return []
    for i, entry in enumerate(entries):
        if isinstance(entry, dict):
            if "image" not in entry:
                raise DataValidationError(
                    f"entry {i} of {section!r} in {json_path} has no 'image' key: {entry!r}; add the image path."
                )
        elif not (section == "test" and isinstance(entry, str)):
            raise DataValidationError(
                f"entry {i} of {section!r} in {json_path} must be an object with an 'image' key, got {entry!r}."
            )
    if section == "test" and any(isinstance(e, dict) for e in entries) and any(isinstance(e, str) for e in entries):
        raise DataValidationError(
            f"'test' in {json_path} mixes plain paths and objects; use one form for every entry."
        )
    base_dir = Path(os.path.abspath(json_path.parent))
    return load_decathlon_datalist(json_path, is_segmentation=True, data_list_key=section, base_dir=base_dir)


def _as_paths(value: Any) -> list[str] | None:
    """The file path(s) of a datalist entry (a path or a list of channel paths), or ``None`` if neither."""
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, os.PathLike)) for v in value):
        return [os.fspath(v) for v in value]
    return None


def _format_values(values: np.ndarray, limit: int = 10) -> str:
    """``[3, 7]`` style listing of (at most ``limit``) values."""
    shown = [v.item() if hasattr(v, "item") else v for v in values[:limit]]
    shown = [int(v) if float(v).is_integer() else float(v) for v in shown]
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return f"{shown}{more}"


def _check_label_values(array: np.ndarray, num_classes: int, path: str) -> str | None:
    """A problem message if ``array`` holds non-integer values or values outside ``0..num_classes-1``."""
    if array.size == 0:
        return f"label {path} is empty (size 0); re-export the label map."
    if np.issubdtype(array.dtype, np.bool_):
        array = array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        finite = np.isfinite(array)
        non_integer = ~finite | (np.mod(np.where(finite, array, 0), 1) != 0)
        if non_integer.any():
            examples = np.unique(array[non_integer])
            return (
                f"label {path} has non-integer values {_format_values(examples)} (dtype {array.dtype}); "
                "a label map must hold class indices: round or re-export it (nearest-neighbour resampling)."
            )
    low, high = array.min(), array.max()
    if low >= 0 and high < num_classes:
        return None
    outside = np.unique(array[(array < 0) | (array >= num_classes)])
    return (
        f"label {path} has values {_format_values(outside)} outside 0..{num_classes - 1} declared in "
        "dataset.json labels; fix the label map or add the classes to dataset.json."
    )


def _spatial_shape(image: Any) -> tuple[int, ...]:
    """Spatial shape of a loaded image: the reader's ``spatial_shape``, else the first 3 array dims."""
    meta = getattr(image, "meta", None) or {}
    shape = meta.get("spatial_shape")
    if shape is None:
        shape = image.shape[:3]
    return tuple(int(s) for s in np.asarray(shape).reshape(-1))


def _to_numpy(image: Any) -> np.ndarray:
    """A numpy view of a loaded image (``MetaTensor``, tensor or array)."""
    if hasattr(image, "detach"):
        return image.detach().cpu().numpy()
    return np.asarray(image)


def _make_loaders(reader: Any) -> tuple[Any, Any, Any]:
    """A ``LoadImage`` plus the readers used for NIfTI and for other files."""
    from monai.data import NibabelReader
    from monai.transforms import LoadImage

    from medssl3d.data.readers import SimpleITKReader

    loader = LoadImage(image_only=True, dtype=None)
    if reader is not None:
        return loader, reader, reader
    return loader, NibabelReader(), SimpleITKReader(header_meta=False)


class _DatalistChecker:
    """Checks datalist items one at a time, loading each volume once and collecting one message per problem."""

    def __init__(
        self, num_classes: int, image_key: str, label_key: str | None, check_label_values: bool, reader: Any
    ) -> None:
        self.num_classes = num_classes
        self.image_key = image_key
        self.label_key = label_key
        self.check_label_values = check_label_values
        self.loader, self.nifti_reader, self.other_reader = _make_loaders(reader)
        self.problems: list[str] = []

    def load(self, path_list: list[str], role: str) -> Any | None:
        """The loaded volume, or ``None`` after recording why it is missing or unreadable."""
        missing = [p for p in path_list if not os.path.exists(p)]
        if missing:
            self.problems.extend(
                f"{role} file {p} does not exist; fix the path in the datalist or restore the file." for p in missing
            )
            return None
        use = self.nifti_reader if all(is_nifti(p) for p in path_list) else self.other_reader
        target = path_list[0] if len(path_list) == 1 else path_list
        try:
            return self.loader(target, reader=use)
        except Exception as e:  # any reader failure is reported, not raised
            reason = " ".join(str(e).split())
            if len(reason) > 200:
                reason = reason[:200] + "..."
            self.problems.append(
                f"{role} file {', '.join(path_list)} cannot be read ({type(e).__name__}: {reason}); "
                "the file is corrupt or not an image: re-export or re-download it."
            )
            return None

    def item_paths(self, index: int, item: Any) -> dict[str, list[str]]:
        """The file paths of an item's image and label keys (those present and valid; the others are recorded)."""
        if not isinstance(item, Mapping):
            self.problems.append(
                f"item {index} is {item!r}, not a dictionary; write {{{self.image_key!r}: path, ...}}."
            )
            return {}
        paths: dict[str, list[str]] = {}
        for key in [self.image_key] + ([self.label_key] if self.label_key is not None else []):
            if key not in item:
                self.problems.append(f"item {index} ({dict(item)!r}) has no {key!r} key; add the {key} path.")
                continue
            value = _as_paths(item[key])
            if value is None:
                self.problems.append(
                    f"item {index} has {key}={item[key]!r}, which is not a file path; fix the datalist."
                )
                continue
            paths[key] = value
        return paths

    def check_item(self, index: int, item: Any) -> None:
        """Record every problem of one item: keys, files, image/label shapes and label values."""
        paths = self.item_paths(index, item)
        image = self.load(paths[self.image_key], "image") if self.image_key in paths else None
        if self.label_key is None or self.label_key not in paths:
            return
        label = self.load(paths[self.label_key], "label")
        if label is None:
            return
        label_path = ", ".join(paths[self.label_key])
        if image is not None:
            image_shape, label_shape = _spatial_shape(image), _spatial_shape(label)
            if image_shape != label_shape:
                self.problems.append(
                    f"image {', '.join(paths[self.image_key])} has spatial shape {image_shape} but label {label_path} "
                    f"has {label_shape}; resample the label onto the image grid or pair the right files."
                )
        if self.check_label_values:
            message = _check_label_values(_to_numpy(label), self.num_classes, label_path)
            if message is not None:
                self.problems.append(message)


def validate_datalist(
    items: Sequence[Mapping],
    num_classes: int,
    image_key: str = "image",
    label_key: str | None = "label",
    check_label_values: bool = True,
    reader: Any = None,
    progress: bool = False,
) -> None:
    """Check a segmentation datalist and report every problem at once.

    Checks: the list is not empty; every item has the keys; every listed file exists and loads
    (``monai.transforms.LoadImage``: MONAI's ``NibabelReader`` for NIfTI, :class:`SimpleITKReader` for
    other formats and DICOM directories); the image's spatial shape (first 3 dims; MSD NIfTI images with
    channels are channel-last) equals the label's; label values are integers in ``[0, num_classes)``.
    Each volume is loaded once. Nothing is printed.

    Args:
        items: datalist, e.g. from :func:`load_decathlon`: ``[{"image": path, "label": path}, ...]``.
            A value may also be a list of paths (channels stacked by ``LoadImage``).
        num_classes: number of classes including background (``len(dataset.json["labels"])``).
        image_key: key of the image path.
        label_key: key of the label path; ``None`` checks images only.
        check_label_values: whether to check label values (the slow part on large volumes).
        reader: a MONAI ``ImageReader`` to use for every file instead of the automatic choice.
        progress: show a tqdm progress bar.

    Raises:
        ValueError: ``num_classes`` is not a positive integer.
        DataValidationError: with one line per problem, each naming the file and the fix.

    Example:
        >>> items = load_decathlon("Task04_Hippocampus")  # doctest: +SKIP
        >>> validate_datalist(items, num_classes=len(class_names("Task04_Hippocampus")))  # doctest: +SKIP
    """
    num_classes = check_positive_int("num_classes", num_classes, hint="; count the classes including background")
    if isinstance(items, (str, os.PathLike, Mapping)) or not isinstance(items, Sequence):
        raise DataValidationError(
            f"the datalist must be a list of {{{image_key!r}: path, ...}} dictionaries, got {type(items).__name__}; "
            "load it with load_decathlon(dataset_dir)."
        )
    if len(items) == 0:
        raise DataValidationError(
            "the datalist is empty: no images to train on; check the 'training' list of dataset.json "
            "or the folder you passed."
        )
    checker = _DatalistChecker(num_classes, image_key, label_key, check_label_values, reader)
    iterator: Any = enumerate(items)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(items), desc="validating datalist")
    for index, item in iterator:
        checker.check_item(index, item)
    if checker.problems:
        header = f"{len(checker.problems)} problem(s) in a datalist of {len(items)} item(s):"
        raise DataValidationError("\n".join([header] + [f"  - {p}" for p in checker.problems]))
