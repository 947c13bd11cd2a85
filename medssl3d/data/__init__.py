"""Datalists, readers, splits and synthetic data.

- :mod:`~medssl3d.data.decathlon`: Medical Segmentation Decathlon folders (``dataset.json``) and the
  datalist validation that runs before training;
- :mod:`~medssl3d.data.readers`: :class:`SimpleITKReader`, a MONAI ``ImageReader`` for NRRD, MetaImage,
  NIfTI and DICOM series;
- :mod:`~medssl3d.data.pool`: unlabelled image pools for pretraining (folders and Decathlon images);
- :mod:`~medssl3d.data.splits`: seeded train/validation/test and k-fold splits, patient grouping and
  nested label fractions;
- :mod:`~medssl3d.data.split_files`: ``split.json``, the record of a training run's split, and its parts;
- :mod:`~medssl3d.data.segmentation`: a segmentation bundle's training data: a split Decathlon folder, or
  lists given directly (MONAI Label);
- :mod:`~medssl3d.data.phantom` and :mod:`~medssl3d.data.synthetic`: abdominal CT phantoms with pancreas
  and tumour labels, and Decathlon folders of them;
- :mod:`~medssl3d.data.images`: 2D image files and MedMNIST ``.npz`` references, read as the network takes
  them;
- :mod:`~medssl3d.data.classification`: labelled 2D datasets (class folders, CSV, MedMNIST ``.npz``) and
  their split;
- :mod:`~medssl3d.data.pretraining`: 2D and 3D image pools for pretraining, with a held-out part;
- :mod:`~medssl3d.data.inference`: unlabelled 2D images to classify (folder, CSV or ``.npz``) and their
  check before prediction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medssl3d._lazy import lazy_exports

if TYPE_CHECKING:
    from medssl3d.data.errors import DatasetNotFoundError, DataValidationError
    from medssl3d.data.decathlon import (
        class_names,
        load_decathlon,
        modality,
        read_dataset_json,
        validate_datalist,
    )
    from medssl3d.data.pool import list_unlabelled_images, prepare_unlabelled_pool
    from medssl3d.data.readers import SimpleITKReader
    from medssl3d.data.segmentation import check_training_datalists, datalist_split, prepare_segmentation_split
    from medssl3d.data.training_split import segmentation_training_split
    from medssl3d.data.split_files import load_split_json, split_part, write_split_json
    from medssl3d.data.splits import label_fraction_subset, split_dataset
    from medssl3d.data.pretraining import (
        IMAGE_2D_SUFFIXES,
        list_2d_images,
        list_npz_images,
        prepare_pretraining_split,
    )
    from medssl3d.data.synthetic import generate_phantom_dataset
    from medssl3d.data.inference import check_classification_images, list_classification_images
    from medssl3d.data.images import CLASSIFICATION_IMAGE_SUFFIXES, load_npz_image, npz_reference, parse_npz_reference
    from medssl3d.data.classification import (
        CLASSIFICATION_LAYOUTS,
        DEFAULT_GROUP_PATTERN,
        detect_classification_layout,
        load_classification_datalist,
        prepare_classification_split,
        read_classification_dataset,
        resolve_group_pattern,
    )

# Public name -> submodule. Loaded on first access, so that ``medssl3d.data.splits`` and the phantom
# generator stay free of torch/MONAI imports (only the reader and datalist validation need MONAI).
_EXPORTS: dict[str, str] = {
    "DataValidationError": "errors",
    "DatasetNotFoundError": "errors",
    "read_dataset_json": "decathlon",
    "class_names": "decathlon",
    "modality": "decathlon",
    "load_decathlon": "decathlon",
    "validate_datalist": "decathlon",
    "SimpleITKReader": "readers",
    "list_unlabelled_images": "pool",
    "prepare_unlabelled_pool": "pool",
    "split_dataset": "splits",
    "label_fraction_subset": "splits",
    "write_split_json": "split_files",
    "load_split_json": "split_files",
    "split_part": "split_files",
    "prepare_segmentation_split": "segmentation",
    "datalist_split": "segmentation",
    "check_training_datalists": "segmentation",
    "segmentation_training_split": "training_split",
    "generate_phantom_dataset": "synthetic",
    "CLASSIFICATION_LAYOUTS": "classification",
    "CLASSIFICATION_IMAGE_SUFFIXES": "images",
    "DEFAULT_GROUP_PATTERN": "classification",
    "detect_classification_layout": "classification",
    "read_classification_dataset": "classification",
    "load_classification_datalist": "classification",
    "prepare_classification_split": "classification",
    "resolve_group_pattern": "classification",
    "npz_reference": "images",
    "parse_npz_reference": "images",
    "load_npz_image": "images",
    "IMAGE_2D_SUFFIXES": "pretraining",
    "list_2d_images": "pretraining",
    "list_npz_images": "pretraining",
    "prepare_pretraining_split": "pretraining",
    "list_classification_images": "inference",
    "check_classification_images": "inference",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
