"""The training data of a segmentation bundle: a split Decathlon folder, or lists given directly.

Bundle configs call these through ``medssl3d.data``:

- :func:`prepare_segmentation_split` wires a Decathlon folder through validation, the split and the
  label fraction and writes ``split.json``. Its ``split_seed`` fixes the train/validation/test split and
  its ``seed`` the labelled subset, so repeats of a data-efficiency study (one ``seed`` each) draw
  different subsets but are all scored on the same test set;
- :func:`datalist_split` and :func:`check_training_datalists` serve trainings whose lists are passed in
  directly (MONAI Label's ``BundleTrainTask``): they check those files and record them in ``split.json``.

The seeded splitting itself is in :mod:`medssl3d.data.splits`, the split file in
:mod:`medssl3d.data.split_files`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from medssl3d.data.decathlon import class_names as dataset_class_names
from medssl3d.data.decathlon import load_decathlon, read_dataset_json, validate_datalist
from medssl3d.data.errors import DataValidationError
from medssl3d.data.split_files import write_split_json
from medssl3d.data.splits import check_folds, check_label_fraction, label_fraction_subset, split_dataset
from medssl3d.utils.checks import check_non_negative_int

__all__ = ["prepare_segmentation_split", "datalist_split", "check_training_datalists"]

PathLike = str | os.PathLike


def _labelled_cases(dataset_dir: PathLike, validate: bool, progress: bool) -> tuple[list[dict], list[str]]:
    """The ``training`` datalist of a Decathlon folder (every file checked when ``validate``) and its class names."""
    names = dataset_class_names(read_dataset_json(dataset_dir))
    items = load_decathlon(dataset_dir, "training")
    if validate:
        validate_datalist(items, num_classes=len(names), progress=progress)
    return items, names


def prepare_segmentation_split(
    dataset_dir: PathLike,
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
    """Validate a Decathlon folder, split its ``training`` list and keep a labelled fraction for training.

    The ``test`` part is held out from the labelled ``training`` list (the Decathlon ``test`` images have
    no labels). ``label_fraction`` applies to the training part only; validation and test stay whole, so
    results at different label fractions are comparable. ``split_seed`` fixes the split and ``seed`` the
    labelled subset: repeats with different ``seed`` and one ``split_seed`` train on different subsets of
    the same training part and are scored on the same test set. Takes plain JSON values, for bundle configs
    (``n_folds`` null or 0 for no k-fold, ``split_seed`` null to reuse ``seed``).

    Args:
        dataset_dir: folder containing ``dataset.json``.
        output_dir: when given, ``<output_dir>/split.json`` is written (atomically).
        seed: seed of the label-fraction permutation (and of the split when ``split_seed`` is ``None``).
        split_seed: seed of the train/validation/test split (and of the k-fold partition); ``None``: ``seed``.
        fold: validation fold with ``n_folds``.
        n_folds: ``None``/0 for a plain split, or the number of cross-validation folds.
        label_fraction: fraction of the training part that keeps its labels, in (0, 1].
        val_fraction: validation fraction (without ``n_folds``).
        test_fraction: held-out test fraction.
        group_pattern: regular expression on file names naming the patient (:func:`~medssl3d.data.splits.group_ids`).
        validate: check every file first (:func:`~medssl3d.data.decathlon.validate_datalist`; loads each volume once).
        progress: show a progress bar while validating.

    Returns:
        ``{"train", "validation", "test", "train_full_size", "label_fraction", "seed", "split_seed", "fold",
        "n_folds", "class_names", "num_classes", "dataset_dir"}`` (``split_seed``: the seed the split used).

    Raises:
        DataValidationError: the folder, ``dataset.json`` or the files are unusable (every problem listed).
        ValueError: bad split arguments.

    Example:
        >>> split = prepare_segmentation_split("Task07_Pancreas", "runs/split", label_fraction=0.1)  # doctest: +SKIP
        >>> len(split["train"]), split["train_full_size"]  # doctest: +SKIP
    """
    fraction = check_label_fraction(label_fraction)
    seed = check_non_negative_int("seed", seed)
    split_seed = seed if split_seed is None else check_non_negative_int("split_seed", split_seed)
    k = check_folds(n_folds, fold)
    items, names = _labelled_cases(dataset_dir, validate, progress)
    parts = split_dataset(
        items, split_seed, val_fraction, test_fraction, n_folds=k, fold=fold, group_pattern=group_pattern
    )
    result = {
        "train": label_fraction_subset(parts["train"], fraction, seed=seed, group_pattern=group_pattern),
        "validation": parts["validation"],
        "test": parts["test"],
        "train_full_size": len(parts["train"]),
        "label_fraction": fraction,
        "seed": seed,
        "split_seed": split_seed,
        "fold": int(fold),
        "n_folds": k,
        "class_names": names,
        "num_classes": len(names),
        "dataset_dir": os.path.abspath(os.fspath(dataset_dir)),
    }
    if output_dir is not None:
        write_split_json(result, Path(os.fspath(output_dir)) / "split.json")
    return result


def datalist_split(class_names: Sequence[str]) -> dict:
    """The split of a segmentation training whose lists are passed in directly, without a Decathlon folder.

    MONAI Label's ``BundleTrainTask`` overrides ``train#dataset#data`` and ``validate#dataset#data`` with
    the labelled images of its datastore and passes no ``dataset_dir``. The bundle then takes its class
    names from the config (the same as ``inference.json`` and ``metadata.json``), and
    :func:`check_training_datalists` checks and records the lists it was given.

    Args:
        class_names: class names, background first.

    Returns:
        the keys of :func:`prepare_segmentation_split` with empty ``train``/``validation``/``test`` lists,
        ``dataset_dir`` ``""`` and ``source`` ``"datalists"``.

    Raises:
        ValueError: fewer than two class names.
    """
    names = [str(n) for n in class_names] if not isinstance(class_names, str) else []
    if len(names) < 2:
        raise ValueError(f"class_names must list background and at least one class, got {class_names!r}.")
    return {
        "train": [],
        "validation": [],
        "test": [],
        "class_names": names,
        "num_classes": len(names),
        "dataset_dir": "",
        "source": "datalists",
    }


def check_training_datalists(
    train: Sequence[Mapping],
    validation: Sequence[Mapping] | None,
    class_names: Sequence[str],
    dataset_dir: PathLike | None = "",
    output_dir: PathLike | None = None,
    validate: bool = True,
    progress: bool = False,
) -> dict:
    """Refuse a segmentation training with nothing to train on; check and record lists given directly.

    A bundle's training and validation lists come either from a Decathlon ``dataset_dir`` (through
    :func:`prepare_segmentation_split`, which has already checked every file and written ``split.json``)
    or directly as ``train#dataset#data`` and ``validate#dataset#data``, as MONAI Label's
    ``BundleTrainTask`` passes its datastore's labelled images. In the second case every file is checked
    here like :func:`~medssl3d.data.decathlon.validate_datalist` does (exists, loads, image and label
    shapes match, label values below the number of classes), before the first step, and
    ``output_dir/split.json`` records both lists.

    Args:
        train: the training datalist the trainer will use.
        validation: the validation datalist (may be empty: training then runs without validation).
        class_names: class names, background first (label values must be below their number).
        dataset_dir: the Decathlon folder the lists came from, or empty when they were given directly.
        output_dir: where ``split.json`` is written for lists given directly; ``None`` writes nothing.
        validate: check every file of lists given directly.
        progress: show a progress bar while checking.

    Returns:
        ``{"train": number of training cases, "validation": number of validation cases}``.

    Raises:
        DataValidationError: no training cases, or (lists given directly) every problem with their files.
    """
    train = list(train or [])
    validation = list(validation or [])
    if not train:
        raise DataValidationError(
            "no training cases: pass dataset_dir (a Medical Segmentation Decathlon folder with dataset.json), "
            "or give train#dataset#data and validate#dataset#data as lists of {'image': path, 'label': path} "
            "(MONAI Label's BundleTrainTask passes the labelled images of its datastore this way: label some first)."
        )
    counts = {"train": len(train), "validation": len(validation)}
    if dataset_dir:
        return counts
    if validate:
        validate_datalist(train + validation, num_classes=len(class_names), progress=progress)
    if output_dir is not None:
        record = datalist_split(class_names)
        record.update(train=train, validation=validation)
        write_split_json(record, Path(os.fspath(output_dir)) / "split.json")
    return counts
