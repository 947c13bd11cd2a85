"""Labelled triplet pretraining: a metric embedding trained with every valid triplet of a labelled batch.

Unlike the other pretext tasks this one USES THE CLASS LABELS of the data: anchor and positive are images of
the same class, the negative an image of another class, and the loss is the triplet margin loss averaged over
all valid triplets of the batch ("batch-all" mining; Schroff, Kalenichenko & Philbin, "FaceNet: A Unified
Embedding for Face Recognition and Clustering", CVPR 2015, https://arxiv.org/abs/1503.03832). Settings of the
fundus triplet recipe: "ResNet50 encoder + linear projection head (->128-d embeddings)", "L2-normalized
embeddings for triplet mining", "All-triplet mining with margin=1.0", "Supports power-scaled distance (d^gamma)
for tunable hardness".

The pieces are thin glue: one view of each image from the medical SimCLR augmentations
(:func:`~medssl3d.transforms.simclr_medical_augmentations`, optionally with background removal, CLAHE and the
multi-scale jigsaw), the head :func:`~medssl3d.nets.triplet_projection` and the loss
:class:`~medssl3d.losses.LabeledTripletLoss`. The labels come from the data (``data["label"]``, e.g. the
training part of :func:`~medssl3d.data.prepare_classification_split`); the task only converts them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.config import KeysCollection

from medssl3d.losses import LabeledTripletLoss, TripletLabelLoss
from medssl3d.nets.heads import triplet_projection
from medssl3d.nets.pretext import TripletEmbeddingNet
from medssl3d.tasks.view_task import ViewTask
from medssl3d.transforms.pretext import LabeledViewd, as_class_label
from medssl3d.utils.checks import check_positive_int

__all__ = [
    "LabeledTripletTask",
    "LabeledViewd",
    "TripletEmbeddingNet",
    "TripletLabelLoss",
    "as_class_label",
    "nearest_neighbour_correct",
]


def nearest_neighbour_correct(embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """Leave-one-out nearest-neighbour label agreement within a batch.

    Each sample that has at least one other sample of its label in the batch is judged; it is right when its
    nearest other sample (Euclidean distance between the embeddings) has its label, i.e. when its nearest
    same-label partner is strictly nearer than every sample of another label (ties count as wrong; with no
    other label in the batch it is right). Samples whose label is alone in the batch are not judged.

    Args:
        embeddings: (B, D).
        labels: (B,) integer labels (a (B, 1) column is accepted).

    Returns:
        (number right, number judged).

    Raises:
        ValueError: shapes that do not give one label per row.
    """
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"embeddings must be (B, D) and labels (B,), got {tuple(embeddings.shape)} and {tuple(labels.shape)}."
        )
    n = embeddings.shape[0]
    if n < 2:
        return 0, 0
    with torch.no_grad():
        z = embeddings.detach().float()
        labels = labels.to(z.device)
        distances = torch.cdist(z, z)
        same = labels[:, None] == labels[None, :]
        self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
        partner = same & ~self_mask
        inf = torch.tensor(float("inf"), device=z.device)
        nearest_same = torch.where(partner, distances, inf).min(dim=1).values
        nearest_other = torch.where(~same, distances, inf).min(dim=1).values
        judged = partner.any(dim=1)
        right = judged & (nearest_same < nearest_other)
        counts = torch.stack([right.sum(), judged.sum()]).tolist()
    return int(counts[0]), int(counts[1])


class LabeledTripletTask(ViewTask):
    """Labelled triplet pretraining (batch-all triplet margin loss on L2-normalised 128-d embeddings).

    The transform makes one augmented view per image (optional background removal and CLAHE, the medical
    SimCLR augmentations, the optional multi-scale jigsaw; the pipeline of
    :class:`~medssl3d.tasks.view_task.ViewTask`, shared with SimCLR and SiCoVa) and passes the image's
    class label through as an int64 0-d tensor: the data must be labelled. The network
    (:class:`~medssl3d.nets.TripletEmbeddingNet`) is encoder -> global average pooling ->
    :func:`~medssl3d.nets.triplet_projection` (a Linear to ``embedding_dim`` and L2 normalisation); the loss is
    :class:`~medssl3d.losses.LabeledTripletLoss` (``loss(embeddings, labels)``, every valid triplet of the batch,
    ``max(d(a,p)^gamma - d(a,n)^gamma + margin, 0)``); the held-out score is the leave-one-out nearest-neighbour
    label agreement within a batch (:func:`nearest_neighbour_correct`).

    With ``num_views=2`` (the default, as the recipe's "paired samples, 128 anchor-positive pairs") each image
    gives two independently augmented views with its label, so a batch of 128 images holds 256 embeddings
    and every image has at least one positive. Triplets are mined within each batch, so the batch size
    matters. Gradient accumulation keeps the step size of a larger batch but does not give
    cross-micro-batch triplets. The held-out score uses the first view only (the other view of the same
    image would be a trivially near neighbour).

    Args:
        spatial_dims: 2 or 3.
        input_size: spatial size of the input image (int or sequence); default 64 in 3D, 128 in 2D.
        embedding_dim: size of the embedding (128).
        margin: triplet margin (1.0, "All-triplet mining with margin=1.0").
        gamma: power on the distances, ``d ** gamma`` (1.0: plain distances).
        clahe, remove_background, jigsaw_grid_sizes, augmentation: see
            :class:`~medssl3d.tasks.view_task.ViewTask`.
        num_views: augmented views per image (2; 1 gives one view and only same-class positives).

    Raises:
        ValueError: for a bad argument (the message names it).

    Example::

        task = LabeledTripletTask(spatial_dims=2, input_size=128)
        net, loss = task.network(create_encoder("resnet50", 2, 3)), task.loss()
        item = task.transform()({"image": torch.rand(3, 128, 128), "label": 2})  # image (2, 3, 128, 128)
        z = net(images)  # images (B, 2, 3, 128, 128) -> (B, 2, 128), unit rows
        value = loss(z, labels)  # labels (B,)
    """

    name = "triplet"
    has_label = True

    def __init__(
        self,
        spatial_dims: int = 3,
        input_size: int | Sequence[int] | None = None,
        embedding_dim: int = 128,
        margin: float = 1.0,
        gamma: float = 1.0,
        clahe: bool = False,
        remove_background: float | None = None,
        jigsaw_grid_sizes: Sequence[int] | None = None,
        augmentation: Mapping[str, Any] | None = None,
        num_views: int = 2,
    ) -> None:
        self.num_views = check_positive_int("num_views", num_views)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        checked = LabeledTripletLoss(margin=margin, gamma=gamma)
        self.margin, self.gamma = checked.margin, checked.gamma
        super().__init__(spatial_dims, input_size, clahe, remove_background, jigsaw_grid_sizes, augmentation)

    def transform(self, keys: KeysCollection = "image", label_key: str = "label") -> LabeledViewd:
        return LabeledViewd(keys, self.view_transform(keys), label_key=label_key, num_views=self.num_views)

    def head(self, in_features: int) -> nn.Module:
        return triplet_projection(in_features, self.embedding_dim)

    def network(self, encoder: nn.Module) -> TripletEmbeddingNet:
        return TripletEmbeddingNet(encoder, self.spatial_dims, self.head_for(encoder))

    def loss(self) -> TripletLabelLoss:
        return TripletLabelLoss(LabeledTripletLoss(margin=self.margin, gamma=self.gamma, normalize=True))

    def correct(self, output: torch.Tensor, target: torch.Tensor | None) -> tuple[int, int]:
        """Samples whose nearest other sample in the batch has their label (see :func:`nearest_neighbour_correct`)."""
        if target is None:
            raise ValueError("LabeledTripletTask.correct needs the class labels as target, got None.")
        if output.ndim == 3:  # (B, V, D): judge the first view of each image
            output = output[:, 0]
        return nearest_neighbour_correct(output, torch.as_tensor(target))

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "embedding_dim": self.embedding_dim,
            "margin": self.margin,
            "gamma": self.gamma,
            "num_views": self.num_views,
        }
