"""Split a labelled 2D dataset for fine-tuning: train/validation/test, a labelled fraction, ``split.json``.

:func:`prepare_classification_split` is the bundle entry point. It reads any layout
(:func:`~medssl3d.data.classification.read_classification_dataset`) and keeps the parts the layout defines
(MedMNIST ``val_*``/``test_*``; ``val/``, ``test/`` folders); the missing ones are drawn from the training
items by :func:`~medssl3d.data.splits.split_dataset` with ``split_seed``, whole patients at a time with a
group pattern. ``label_fraction`` then keeps a nested, ``seed``-dependent subset of the training part
(:func:`~medssl3d.data.splits.label_fraction_subset`; validation and test stay whole). So repeats with
different ``seed`` share one test set, and for one ``seed`` the 10 % subset lies inside the 25 % one.

Fundus file names carry patient ids (``Patient001_L``): ``group_pattern="auto"``
(:func:`resolve_group_pattern`) keeps both eyes of a patient on one side whenever every file name has one.

With ``stratify`` both steps run once per class stratum (a patient's stratum is the worse grade of their
images) and the parts are merged, so a rare grade (16 of 593 Rahim DR images are grade 4) reaches the test
part and a small label fraction keeps every grade: each requested fraction gives at least one patient of each
stratum that has enough of them.

Multi-label data: class strata do not apply (an image has several findings, and one stratum per finding
combination would leave most strata with one patient), so ``stratify`` splits and subsamples two strata,
patients with at least one finding and patients with none; the positives of each finding are then spread at
random, not balanced. Patient grouping, ``split_seed``, ``seed`` and the nested label fractions work as above.

References: Taleb et al. 2020, "3D Self-Supervised Methods for Medical Imaging" (NeurIPS), fine-tune
their encoders for 5-grade diabetic retinopathy scored with quadratic weighted kappa.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medssl3d.data.classification.dataset import read_classification_dataset
from medssl3d.data.classification.multilabel import DEFAULT_NO_FINDING
from medssl3d.data.errors import DataValidationError
from medssl3d.data.images import (
    CLASSIFICATION_IMAGE_SUFFIXES,
    load_npz_image,
    parse_npz_reference,
    read_classification_image,
)
from medssl3d.data.split_files import write_split_json
from medssl3d.data.splits import group_ids, label_fraction_subset, split_dataset
from medssl3d.utils.flags import as_flag

__all__ = ["DEFAULT_GROUP_PATTERN", "resolve_group_pattern", "prepare_classification_split"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

#: Patient id in fundus file names (``Patient001_L.jpg`` -> ``Patient001``), used by ``group_pattern="auto"``.
DEFAULT_GROUP_PATTERN = r"(Patient\d+)"


def resolve_group_pattern(items: Sequence[Mapping], group_pattern: str | None, key: str = "image") -> str | None:
    """The patient-grouping pattern to use for ``items``.

    ``"auto"`` means :data:`DEFAULT_GROUP_PATTERN` (``Patient\\d+``) when it matches every file name, and no
    grouping (logged) when it matches none. ``None``/``""`` mean no grouping; any other pattern is returned
    as is (and must match every file name, see :func:`~medssl3d.data.splits.group_ids`).

    Raises:
        ValueError: ``"auto"`` and only some file names carry a patient id (a typo would otherwise silently
            let one patient's eyes reach both sides).
    """
    if group_pattern is None or str(group_pattern).strip() == "":
        return None
    if str(group_pattern).strip().lower() != "auto":
        return str(group_pattern)
    regex = re.compile(DEFAULT_GROUP_PATTERN)
    names = [os.path.basename(str(it[key])) for it in items]
    matched = [regex.search(n) is not None for n in names]
    if names and all(matched):
        logger.info("group_pattern='auto': grouping images by patient id %s", DEFAULT_GROUP_PATTERN)
        return DEFAULT_GROUP_PATTERN
    if any(matched):
        missing = [n for n, m in zip(names, matched) if not m]
        raise ValueError(
            f"group_pattern='auto': {len(names) - len(missing)} file names carry a patient id "
            f"({DEFAULT_GROUP_PATTERN}) but {len(missing)} do not (e.g. {missing[:3]}); rename them, or pass "
            "group_pattern=<a pattern matching every name> or group_pattern='' to split by image."
        )
    logger.info("group_pattern='auto': file names carry no patient id (%s); splitting by image", DEFAULT_GROUP_PATTERN)
    return None


def _validate_images(items: Sequence[Mapping], progress: bool) -> None:
    """Decode every image file once (Pillow, or the training reader for other formats); npz references by index."""
    from PIL import Image

    problems: list[str] = []
    iterator: Any = items
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(items, desc="validating images")
    for item in iterator:
        image = item["image"]
        if parse_npz_reference(image) is not None:
            try:
                load_npz_image(image)
            except (ValueError, OSError) as e:
                problems.append(str(e))
            continue
        try:
            if str(image).lower().endswith(CLASSIFICATION_IMAGE_SUFFIXES):
                with Image.open(image) as im:
                    im.load()
            else:  # other formats (e.g. a 2D NIfTI listed in a CSV) go through the training reader
                read_classification_image(image)
        except Exception as e:  # any decoder failure is reported, not raised
            reason = " ".join(str(e).split())[:200]
            problems.append(
                f"image file {image} cannot be read ({type(e).__name__}: {reason}); re-export or remove it."
            )
    if problems:
        header = f"{len(problems)} unreadable image(s) among {len(items)}:"
        raise DataValidationError("\n".join([header] + [f"  - {p}" for p in problems[:20]]))


def _stratum(label: Any) -> int:
    """An item's stratum value: its class, or for a multi-hot list whether it has any finding (0/1)."""
    return int(any(label)) if isinstance(label, (list, tuple)) else int(label)


def _strata(items: Sequence[Mapping], pattern: str | None) -> list[int]:
    """Stratum of every item: the largest label in its group (a patient's worse eye), or its own label.

    Multi-label items are stratified on "has any finding": 1 when the group has an image with a finding.
    """
    ids = group_ids(items, pattern)
    worst: dict[str, int] = {}
    for item, gid in zip(items, ids):
        worst[gid] = max(worst.get(gid, -1), _stratum(item["label"]))
    return [worst[gid] for gid in ids]


def _by_stratum(items: Sequence[Mapping], strata: Sequence[int] | None, run: Callable[[list], Any]) -> Any:
    """Apply ``run(sub_items)`` to each stratum (or to all items when ``strata`` is None) and merge the results.

    ``run`` returns a dict of lists (a split) or a list; merged lists keep the order of ``items``.
    """
    if strata is None:
        return run(list(items))
    order = {id(it): i for i, it in enumerate(items)}
    merged: Any = None
    for s in sorted(set(strata)):
        out = run([it for it, st in zip(items, strata) if st == s])
        if isinstance(out, dict):
            merged = {k: [] for k in out} if merged is None else merged
            for k, v in out.items():
                merged[k].extend(v)
        else:
            merged = (merged or []) + list(out)
    if isinstance(merged, dict):
        return {k: sorted(v, key=lambda it: order[id(it)]) for k, v in merged.items()}
    return sorted(merged, key=lambda it: order[id(it)])


def _split_parts(items: Sequence[dict], dataset_dir: PathLike, pattern: str | None, stratify: bool,
                 split_seed: int, val_fraction: float, test_fraction: float) -> tuple[dict[str, list], set[str]]:
    """Train/validation/test parts: those the layout gives (``"section"``), the others split off the training part.

    Returns:
        the parts and the names of the parts the layout gives.
    """
    given = {it["section"] for it in items if "section" in it}
    if given and "train" not in given:
        raise DataValidationError(f"{dataset_dir} defines parts {sorted(given)} but no training part (train/).")
    pool = [it for it in items if it.get("section", "train") == "train"]
    fractions = {
        "val_fraction": 0.0 if "validation" in given else val_fraction,
        "test_fraction": 0.0 if "test" in given else test_fraction,
    }
    parts = _by_stratum(
        pool,
        _strata(pool, pattern) if stratify else None,
        lambda sub: split_dataset(sub, seed=split_seed, group_pattern=pattern, **fractions),
    )
    for part in ("validation", "test"):
        if part in given:
            parts[part] = [it for it in items if it.get("section") == part]
    if given:
        logger.info("%s gives the parts %s; the others are split off the training part", dataset_dir, sorted(given))
    return parts, given


def _class_counts(items: Sequence[Mapping], n: int, multi_label: bool) -> list[int]:
    """Images per class, or for multi-label items positive images per finding."""
    if multi_label:
        return np.asarray([it["label"] for it in items], dtype=np.int64).reshape(-1, n).sum(axis=0).tolist()
    return np.bincount([it["label"] for it in items], minlength=n).tolist()


def _strip(items: Sequence[Mapping]) -> list[dict]:
    return [{k: v for k, v in it.items() if k != "section"} for it in items]


def _split_record(data: Mapping[str, Any], parts: Mapping[str, list], settings: Mapping[str, Any],
                  given: set[str], dataset_dir: PathLike) -> dict:
    """The content of ``split.json`` (see :func:`prepare_classification_split`), with the class counts logged."""
    multi, n = data["multi_label"], data["num_classes"]
    record = {name: _strip(part) for name, part in parts.items()}
    record.update(settings)
    record.update({
        "multi_label": multi,
        "class_names": data["class_names"],
        "num_classes": n,
        "class_counts": {name: _class_counts(part, n, multi) for name, part in parts.items()},
        "layout": data["layout"],
        "given_parts": sorted(given),
        **{key: data.get(key) for key in ("csv", "image_column", "label_column", "label_columns", "num_skipped")},
        "dataset_dir": os.path.abspath(os.fspath(dataset_dir)),
    })
    if multi:
        record["num_with_findings"] = {name: sum(any(it["label"]) for it in part) for name, part in parts.items()}
        logger.info("multi-label split: %s positive images per finding %s, images with a finding %s",
                    data["class_names"], record["class_counts"], record["num_with_findings"])
    else:
        logger.info("classification split: %s images per class %s", data["class_names"], record["class_counts"])
    return record


def prepare_classification_split(
    dataset_dir: PathLike,
    output_dir: PathLike | None = None,
    split_seed: int = 0,
    seed: int = 0,
    label_fraction: float = 1.0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    group_pattern: str | None = "auto",
    csv: PathLike | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    image_dir: PathLike | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    stratify: bool = True,
    validate: bool = True,
    progress: bool = False,
    multi_label: bool = False,
    label_columns: Sequence[str] | str | None = None,
    no_finding: str | None = DEFAULT_NO_FINDING,
) -> dict:
    """Read a labelled 2D dataset, split it, keep a labelled fraction for training, write ``split.json``.

    Seeds, patient grouping and stratification: see :mod:`medssl3d.data.classification.split`. Meant for
    bundle configs (plain JSON values).

    Args:
        dataset_dir, csv, image_column, label_column, image_dir, num_classes, class_names, label_columns,
            no_finding: see :func:`~medssl3d.data.classification.read_classification_dataset`.
        output_dir: when given, ``<output_dir>/split.json`` is written atomically (npz items as references).
        split_seed, seed: seeds of the train/validation/test split and of the labelled-fraction subset.
        label_fraction: fraction of the training part that keeps its labels, in (0, 1].
        val_fraction, test_fraction: used when the layout gives no validation / test part.
        group_pattern: ``"auto"``, ``None``/``""`` (no grouping) or a regular expression
            (:func:`resolve_group_pattern`).
        stratify: split and subsample per class stratum (multi-label: "any finding" or not); ``False`` splits
            all groups at once.
        validate: open and decode every image first, so a corrupt file fails before training.
        progress: show a progress bar while validating.
        multi_label: several findings per image (also the strings ``"true"``/``"false"``).

    Returns:
        ``{"train", "validation", "test"`` (items ``{"image", "label"}``), ``"train_full_size",
        "label_fraction", "seed", "split_seed", "group_pattern", "stratified", "multi_label", "class_names",
        "num_classes"`` (multi-label: C findings), ``"class_counts"`` (per part: images per class; multi-label:
        positive images per finding), ``"layout", "given_parts", "csv", "image_column", "label_column",
        "label_columns", "num_skipped", "dataset_dir"}``; multi-label adds ``"num_with_findings"`` (per part:
        images with at least one finding).

    Raises:
        DatasetNotFoundError, DataValidationError: unusable data (see
            :func:`~medssl3d.data.classification.read_classification_dataset`), unreadable images (all listed).
        ValueError: bad split arguments, or a ``group_pattern`` that misses some file names.

    Example:
        >>> split = prepare_classification_split("fundus_dr_srahim", "runs/dr", label_column="dr_grade_0_4",
        ...                                      num_classes=5, label_fraction=0.1)  # doctest: +SKIP
    """
    data = read_classification_dataset(
        dataset_dir, csv, image_column, label_column, image_dir, num_classes, class_names,
        multi_label=as_flag(multi_label, "multi_label"), label_columns=label_columns, no_finding=no_finding,
    )
    pattern = resolve_group_pattern(data["items"], group_pattern)
    parts, given = _split_parts(data["items"], dataset_dir, pattern, stratify, split_seed, val_fraction, test_fraction)
    train = _by_stratum(
        parts["train"],
        _strata(parts["train"], pattern) if stratify else None,
        lambda sub: label_fraction_subset(sub, label_fraction, seed=seed, group_pattern=pattern),
    )
    if validate:
        _validate_images(train + parts["validation"] + parts["test"], progress)
    settings = {"train_full_size": len(parts["train"]), "label_fraction": float(label_fraction), "seed": int(seed),
                "split_seed": int(split_seed), "group_pattern": pattern, "stratified": bool(stratify)}
    named_parts = {"train": train, "validation": parts["validation"], "test": parts["test"]}
    result = _split_record(data, named_parts, settings, given, dataset_dir)
    if output_dir is not None:
        write_split_json(result, Path(os.fspath(output_dir)) / "split.json")
    return result
