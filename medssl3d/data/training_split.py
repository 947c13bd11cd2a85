"""The split a segmentation training bundle starts from: a Decathlon folder's, or lists given directly."""

from __future__ import annotations

import os
from collections.abc import Sequence

from medssl3d.data.segmentation import datalist_split, prepare_segmentation_split

__all__ = ["segmentation_training_split"]

PathLike = str | os.PathLike


def segmentation_training_split(
    dataset_dir: PathLike | None,
    default_class_names: Sequence[str],
    output_dir: PathLike | None = None,
    seed: int = 0,
    split_seed: int | None = None,
    fold: int = 0,
    n_folds: int | None = None,
    label_fraction: float = 1.0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    group_pattern: str | None = None,
    validate: bool = True,
    progress: bool = False,
) -> dict:
    """:func:`~medssl3d.data.segmentation.prepare_segmentation_split` of ``dataset_dir`` when one is given,
    else :func:`~medssl3d.data.segmentation.datalist_split` with ``default_class_names``.

    Without ``dataset_dir`` (``""`` or ``None``) the training lists are passed in directly
    (``train#dataset#data`` and ``validate#dataset#data``, as MONAI Label's ``BundleTrainTask`` does), and the
    class names come from the bundle (``default_class_names``); the other arguments are then unused.

    Args:
        dataset_dir: a Decathlon folder (``dataset.json``), or ``""``/``None``.
        default_class_names: class names, background first, when there is no ``dataset_dir``.
        output_dir, seed, split_seed, fold, n_folds, label_fraction, val_fraction, test_fraction,
            group_pattern, validate, progress: as for ``prepare_segmentation_split``.

    Example (bundle JSON)::

        "split": {"_target_": "medssl3d.data.segmentation_training_split", "dataset_dir": "@dataset_dir",
                  "default_class_names": "@default_class_names", "output_dir": "@output_dir", ...}
    """
    if not dataset_dir:
        return datalist_split(default_class_names)
    return prepare_segmentation_split(
        dataset_dir=dataset_dir, output_dir=output_dir, seed=seed, split_seed=split_seed, fold=fold,
        n_folds=n_folds, label_fraction=label_fraction, val_fraction=val_fraction, test_fraction=test_fraction,
        group_pattern=group_pattern, validate=validate, progress=progress,
    )
