"""Labelled 2D image-classification datasets: class folders, an image folder with a CSV, MedMNIST ``.npz``.

Three layouts are recognised (:func:`detect_classification_layout`, :mod:`.layout`):

- ``"folders"`` (:mod:`.folders`): one sub-folder per class (``0/ 1/ ... 4/`` or ``NORMAL/ PNEUMONIA/``),
  either directly in ``dataset_dir`` or inside given parts ``train/``, ``val/`` (or ``validation/``) and
  ``test/``, as APTOS-style folders (``train/0 .. train/4``, ``test/0 .. test/4``). Integer folder names are
  the labels; other names are sorted and numbered from 0.
- ``"csv"`` (:mod:`.csv_table`): images in a folder and a CSV naming each file and its integer label, e.g.
  EyePACS ``trainLabels.csv`` (``image``, ``level``), APTOS ``train.csv`` (``id_code``, ``diagnosis``; file
  names without an extension are matched to the files present) or the Rahim DR set's ``labels.csv``
  (``file``, ``dr_grade_0_4``). Rows with an empty label (ungraded images) are skipped and counted.
- ``"npz"`` (:mod:`.npz`): a MedMNIST v2 archive with ``train_images``, ``train_labels``, ``val_*`` and
  ``test_*`` arrays. Its items name an image by reference (``"<file>.npz#train_images[12]"``,
  :func:`~medssl3d.data.images.npz_reference`) so ``split.json`` stays small;
  :func:`~medssl3d.data.images.load_npz_image` reads the array back.

Multi-label data (:mod:`.multilabel`: several findings per image, each item's ``"label"`` a multi-hot list of
C ints in {0, 1}) comes from a CSV (``|``-separated finding names, NIH ChestX-ray14 style, or one 0/1 column per
finding, CheXpert-like) or from a MedMNIST archive with (N, C) labels (ChestMNIST).

:func:`read_classification_dataset` (:mod:`.dataset`) reads any layout; :func:`prepare_classification_split`
(:mod:`.split`), the bundle entry point, splits it (patients kept together, classes stratified), keeps a
labelled fraction of the training part and writes ``split.json``.

References: Taleb et al. 2020, "3D Self-Supervised Methods for Medical Imaging" (NeurIPS), fine-tune
their encoders for 5-grade diabetic retinopathy scored with quadratic weighted kappa; Yang et al. 2023,
"MedMNIST v2", Scientific Data 10:41 (the ``.npz`` layout).
"""

from __future__ import annotations

from medssl3d.data.classification.dataset import load_classification_datalist, read_classification_dataset
from medssl3d.data.classification.layout import CLASSIFICATION_LAYOUTS, detect_classification_layout
from medssl3d.data.classification.multilabel import DEFAULT_NO_FINDING, FINDING_SEPARATOR
from medssl3d.data.classification.split import (
    DEFAULT_GROUP_PATTERN,
    prepare_classification_split,
    resolve_group_pattern,
)
from medssl3d.data.images import CLASSIFICATION_IMAGE_SUFFIXES, load_npz_image, npz_reference, parse_npz_reference

__all__ = [
    "CLASSIFICATION_LAYOUTS",
    "CLASSIFICATION_IMAGE_SUFFIXES",
    "DEFAULT_GROUP_PATTERN",
    "DEFAULT_NO_FINDING",
    "FINDING_SEPARATOR",
    "detect_classification_layout",
    "read_classification_dataset",
    "load_classification_datalist",
    "prepare_classification_split",
    "resolve_group_pattern",
    "npz_reference",
    "parse_npz_reference",
    "load_npz_image",
]
