"""Pretext-task data transforms: each makes a pretext task's network input (and its class target, if any).

The per-image transforms come as MONAI pairs: an array form on one (C, *spatial) image and a dictionary form
built on it (it holds one array instance as ``array_transform``; a random one hands it its random stream):

* :class:`JigsawPuzzle` -> ``(patches, label)``; :class:`JigsawPuzzled` (jigsaw puzzle);
* :class:`RelativePatchLocation` -> ``(pair, label)``; :class:`RelativePatchLocationd` (relative patch location);
* :class:`RandRotate90Pretext` -> ``(rotated, label)``; :class:`RandRotate90Pretextd` (rotation prediction);
* :class:`CPCGrid` -> ``patches``; :class:`CPCGridd` (contrastive predictive coding; deterministic);
* :class:`ExemplarViews` -> ``views``; :class:`ExemplarViewsd` (exemplar triplets).

A label is an int64 0-d tensor; CPC and exemplar have none, so their array forms return one tensor.
:class:`TwoViewsd` (SimCLR, SiCoVa) and :class:`LabeledViewd` (labelled triplets) wrap a one-view dictionary
transform and have no array form.
"""

from __future__ import annotations

from medssl3d.transforms.pretext.base import RandPretextd, array_property
from medssl3d.transforms.pretext.cpc import CPCGrid, CPCGridd, grid_patches
from medssl3d.transforms.pretext.exemplar import ExemplarViews, ExemplarViewsd
from medssl3d.transforms.pretext.jigsaw import JigsawPuzzle, JigsawPuzzled
from medssl3d.transforms.pretext.patches import (
    PatchPretext,
    PatchPretextd,
    as_image_tensor,
    cut_patches,
    grid_cell_starts,
)
from medssl3d.transforms.pretext.permutations import (
    check_permutations,
    maximal_hamming_permutations,
    min_hamming_distance,
)
from medssl3d.transforms.pretext.rotation import (
    ROTATIONS_2D,
    ROTATIONS_3D,
    RandRotate90Pretext,
    RandRotate90Pretextd,
    check_equal_sides,
    rotate,
    rotation_table,
    unrotate,
)
from medssl3d.transforms.pretext.rpl import RelativePatchLocation, RelativePatchLocationd, neighbour_offsets
from medssl3d.transforms.pretext.views import LabeledViewd, TwoViewsd, as_class_label

__all__ = [
    "RandPretextd",
    "array_property",
    "PatchPretext",
    "PatchPretextd",
    "as_image_tensor",
    "cut_patches",
    "grid_cell_starts",
    "check_permutations",
    "maximal_hamming_permutations",
    "min_hamming_distance",
    "JigsawPuzzle",
    "JigsawPuzzled",
    "RelativePatchLocation",
    "RelativePatchLocationd",
    "neighbour_offsets",
    "CPCGrid",
    "CPCGridd",
    "grid_patches",
    "ROTATIONS_2D",
    "ROTATIONS_3D",
    "RandRotate90Pretext",
    "RandRotate90Pretextd",
    "check_equal_sides",
    "rotate",
    "rotation_table",
    "unrotate",
    "ExemplarViews",
    "ExemplarViewsd",
    "LabeledViewd",
    "TwoViewsd",
    "as_class_label",
]
