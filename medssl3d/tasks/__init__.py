"""The five self-supervised pretext tasks of Taleb et al. (2020), the joint-embedding methods SimCLR and
SiCoVa, and labelled triplet pretraining (it uses class labels), one implementation for 2D and 3D.

Taleb, A. et al. "3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020,
https://arxiv.org/abs/2006.03829. SimCLR: Chen et al., ICML 2020, https://arxiv.org/abs/2002.05709. SiCoVa:
VICReg (Bardes et al., ICLR 2022, https://arxiv.org/abs/2105.04906) with a cross-correlation term.

Each task (:class:`~medssl3d.tasks.base.PretextTask`) bundles a dictionary transform that builds the
pretext input and its target, a network that puts the task head on a shared encoder, a loss and a
held-out score. :func:`create_task` builds one by name.
"""

from __future__ import annotations

from typing import Any

from medssl3d._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "PretextTask": "base",
    "maximal_hamming_permutations": "permutations",
    "min_hamming_distance": "permutations",
    "check_permutations": "permutations",
    "JigsawTask": "jigsaw",
    "JigsawPuzzled": "jigsaw",
    "JigsawNet": "jigsaw",
    "RelativePatchLocationTask": "rpl",
    "RelativePatchLocationd": "rpl",
    "RelativePatchLocationNet": "rpl",
    "neighbour_offsets": "rpl",
    "RotationTask": "rotation",
    "RandRotate90Pretextd": "rotation",
    "RotationNet": "rotation",
    "ROTATIONS_2D": "rotation",
    "ROTATIONS_3D": "rotation",
    "ExemplarTask": "exemplar",
    "ExemplarViewsd": "exemplar",
    "ExemplarNet": "exemplar",
    "CPCTask": "cpc",
    "CPCGridd": "cpc",
    "CPCNet": "cpc",
    "grid_patches": "cpc",
    "JointEmbeddingTask": "joint_embedding",
    "JointEmbeddingNet": "joint_embedding",
    "SimCLRTask": "joint_embedding",
    "SiCoVaTask": "joint_embedding",
    "TwoViewsd": "joint_embedding",
    "ViewPairLoss": "joint_embedding",
    "view_retrieval_correct": "joint_embedding",
    "LabeledTripletTask": "triplet",
    "LabeledViewd": "triplet",
    "TripletEmbeddingNet": "triplet",
    "TripletLabelLoss": "triplet",
    "as_class_label": "triplet",
    "nearest_neighbour_correct": "triplet",
}

#: task name -> class name
TASKS: dict[str, str] = {
    "jigsaw": "JigsawTask",
    "rotation": "RotationTask",
    "rpl": "RelativePatchLocationTask",
    "exemplar": "ExemplarTask",
    "cpc": "CPCTask",
    "simclr": "SimCLRTask",
    "sicova": "SiCoVaTask",
    "triplet": "LabeledTripletTask",
}

__all__ = [*_EXPORTS, "TASKS", "create_task"]


def create_task(name: str, spatial_dims: int, **kwargs: Any):
    """Build a pretext task by name (``jigsaw``, ``rotation``, ``rpl``, ``exemplar``, ``cpc``, ``simclr``,
    ``sicova``, ``triplet``)."""
    key = str(name).lower()
    if key not in TASKS:
        raise ValueError(f"unknown pretext task {name!r}; choose one of {sorted(TASKS)}.")
    return __getattr__(TASKS[key])(spatial_dims=spatial_dims, **kwargs)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
