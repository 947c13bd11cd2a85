"""Datalists, readers, splits and synthetic data.

- :mod:`~medssl3d.data.decathlon`: Medical Segmentation Decathlon folders (``dataset.json``) and the
  datalist validation that runs before training;
- :mod:`~medssl3d.data.readers`: :class:`SimpleITKReader`, a MONAI ``ImageReader`` for NRRD, MetaImage,
  NIfTI and DICOM series;
- :mod:`~medssl3d.data.pool`: unlabelled image pools for pretraining;
- :mod:`~medssl3d.data.splits`: seeded train/validation/test and k-fold splits, patient grouping and
  nested label fractions;
- :mod:`~medssl3d.data.synthetic`: abdominal CT phantoms with pancreas and tumour labels;
- :mod:`~medssl3d.data.inference`: unlabelled 2D images to classify (folder, CSV or ``.npz``) and their
  check before prediction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medssl3d._lazy import lazy_exports

if TYPE_CHECKING:
    from medssl3d.data.decathlon import (
        DatasetNotFoundError,
        DataValidationError,
        class_names,
        load_decathlon,
        modality,
        read_dataset_json,
        validate_datalist,
    )
    from medssl3d.data.pool import list_unlabelled_images
    from medssl3d.data.readers import SimpleITKReader
    from medssl3d.data.splits import (
        label_fraction_subset,
        load_split_json,
        prepare_segmentation_split,
        datalist_split,
        check_training_datalists,
        prepare_unlabelled_pool,
        split_dataset,
        split_part,
        write_split_json,
    )
    from medssl3d.data.pretraining import (
        IMAGE_2D_SUFFIXES,
        list_2d_images,
        list_npz_images,
        prepare_pretraining_split,
    )
    from medssl3d.data.synthetic import generate_phantom_dataset
    from medssl3d.data.inference import check_classification_images, list_classification_images

# Public name -> submodule. Loaded on first access, so that ``medssl3d.data.splits`` and the phantom
# generator stay free of torch/MONAI imports (only the reader and datalist validation need MONAI).
_EXPORTS: dict[str, str] = {
    "DataValidationError": "decathlon",
    "DatasetNotFoundError": "decathlon",
    "read_dataset_json": "decathlon",
    "class_names": "decathlon",
    "modality": "decathlon",
    "load_decathlon": "decathlon",
    "validate_datalist": "decathlon",
    "SimpleITKReader": "readers",
    "list_unlabelled_images": "pool",
    "split_dataset": "splits",
    "label_fraction_subset": "splits",
    "write_split_json": "splits",
    "load_split_json": "splits",
    "split_part": "splits",
    "prepare_segmentation_split": "splits",
    "datalist_split": "splits",
    "check_training_datalists": "splits",
    "prepare_unlabelled_pool": "splits",
    "generate_phantom_dataset": "synthetic",
    "CLASSIFICATION_LAYOUTS": "classification",
    "CLASSIFICATION_IMAGE_SUFFIXES": "classification",
    "DEFAULT_GROUP_PATTERN": "classification",
    "detect_classification_layout": "classification",
    "read_classification_dataset": "classification",
    "load_classification_datalist": "classification",
    "prepare_classification_split": "classification",
    "resolve_group_pattern": "classification",
    "npz_reference": "classification",
    "parse_npz_reference": "classification",
    "load_npz_image": "classification",
    "IMAGE_2D_SUFFIXES": "pretraining",
    "list_2d_images": "pretraining",
    "list_npz_images": "pretraining",
    "prepare_pretraining_split": "pretraining",
    "list_classification_images": "inference",
    "check_classification_images": "inference",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
