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

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from monai.config import KeysCollection
from monai.transforms import Compose, MapTransform, Randomizable
from monai.utils import MAX_SEED, convert_to_tensor

from medssl3d.losses import LabeledTripletLoss
from medssl3d.nets.heads import triplet_projection
from medssl3d.nets.encoders import check_encoder, global_pool
from medssl3d.tasks.base import PretextTask
from medssl3d.tasks.joint_embedding import ViewOptions
from medssl3d.utils.checks import check_non_negative_int, check_positive_int, check_size

__all__ = [
    "LabeledTripletTask",
    "LabeledViewd",
    "TripletEmbeddingNet",
    "TripletLabelLoss",
    "as_class_label",
    "nearest_neighbour_correct",
]


def as_class_label(value: Any, key: Hashable = "label") -> torch.Tensor:
    """A class index (int, NumPy integer, or a one-element integer tensor/array) as an int64 0-d tensor.

    Raises:
        ValueError: ``value`` is not a single non-negative integer (bools, floats and strings are refused).
    """
    if isinstance(value, torch.Tensor):
        integer = not (value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool)
        if value.numel() == 1 and integer:
            value = value.reshape(-1)[0].item()
    elif isinstance(value, np.ndarray):
        if value.size == 1 and np.issubdtype(value.dtype, np.integer):
            value = value.reshape(-1)[0].item()
    index = check_non_negative_int(
        f"data[{key!r}] (a class index)",
        value,
        hint="; the triplet task needs labelled items {'image': ..., 'label': int} (e.g. the 'train' part of "
        "medssl3d.data.prepare_classification_split)",
    )
    return torch.tensor(index, dtype=torch.int64)


class LabeledViewd(Randomizable, MapTransform):
    """Augmented view(s) of each key as a plain float32 tensor, and the class label as an int64 0-d tensor.

    With ``num_views=1`` the key becomes one view ``(C, *spatial)``; with ``num_views=V > 1``, ``V``
    independently drawn views stacked as ``(V, C, *spatial)``. Per view a seed is drawn from ``self.R`` and
    the view transform is re-seeded with it (as :class:`~medssl3d.transforms.MultiViewd` does), so the call is
    reproducible under ``set_random_state`` / ``set_determinism``. The label is read from ``data[label_key]``
    and written back converted (:func:`as_class_label`); it is never made up.

    Args:
        keys: image key(s).
        transform: the ``Randomizable`` dictionary transform that makes the view (e.g. a ``Compose``).
        label_key: key of the class label.
        allow_missing_keys: don't raise for missing image keys (the label is always required).
        num_views: views per image (1, or e.g. 2 as the fundus triplet recipe's paired samples).

    Raises:
        TypeError: ``transform`` is not ``Randomizable``.
        KeyError: (on call) the data has no ``label_key``.
        ValueError: (on call) the label is not a single non-negative integer.
    """

    def __init__(
        self,
        keys: KeysCollection,
        transform: Any,
        label_key: str = "label",
        allow_missing_keys: bool = False,
        num_views: int = 1,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        if not isinstance(transform, Randomizable):
            raise TypeError(
                f"transform must be a MONAI Randomizable (e.g. a Compose), got {type(transform).__name__}."
            )
        self.transform = transform
        self.label_key = label_key
        self.num_views = check_positive_int("num_views", num_views)
        self._seeds = [0] * self.num_views

    def randomize(self, data: Any = None) -> None:
        self._seeds = [int(seed) for seed in self.R.randint(MAX_SEED, size=self.num_views, dtype="uint32")]

    def _view(self, data: dict[Hashable, Any], seed: int) -> dict[Hashable, Any]:
        self.transform.set_random_state(seed=seed)
        out = self.transform(dict(data))
        if not isinstance(out, Mapping):
            raise TypeError(f"transform must return one data dictionary per call, got {type(out).__name__}.")
        return dict(out)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        if self.label_key not in data:
            raise KeyError(
                f"the triplet task needs a class label under {self.label_key!r}, but the data has only "
                f"{sorted(map(str, data))}; use labelled items (e.g. medssl3d.data.prepare_classification_split)."
            )
        d = dict(data)
        label = as_class_label(d[self.label_key], self.label_key)
        self.randomize()
        views = [self._view(d, seed) for seed in self._seeds]
        out = views[0]
        for key in self.key_iterator(out):
            tensors = [convert_to_tensor(v[key], dtype=torch.float32, track_meta=False) for v in views]
            out[key] = (tensors[0] if self.num_views == 1 else torch.stack(tensors)).contiguous()
        out[self.label_key] = label
        return out


class TripletEmbeddingNet(nn.Module):
    """Encoder, global average pooling and a head: (B, C, *spatial) images -> (B, D) embeddings.

    Args:
        encoder: a medssl3d encoder (``forward_features``, ``out_channels``); kept as ``.encoder``.
        spatial_dims: 2 or 3; must match the encoder.
        head: maps pooled (N, ``encoder.out_channels``) features to (N, D) (e.g.
            :func:`~medssl3d.nets.triplet_projection`, which L2-normalises); kept as ``.head``.
    """

    def __init__(self, encoder: nn.Module, spatial_dims: int, head: nn.Module) -> None:
        super().__init__()
        check_encoder(encoder, spatial_dims)
        if not isinstance(head, nn.Module):
            raise TypeError(f"head must be an nn.Module, got {type(head).__name__}.")
        self.encoder = encoder
        self.spatial_dims = spatial_dims
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, *spatial) -> (B, D); or (B, V, C, *spatial) views -> (B, V, D), all in one encoder call."""
        if x.ndim == self.spatial_dims + 3:
            batch, views = x.shape[:2]
            z = self.head(global_pool(self.encoder.forward_features(x.reshape(batch * views, *x.shape[2:]))))
            return z.view(batch, views, -1)
        if x.ndim != self.spatial_dims + 2:
            raise ValueError(
                f"{type(self).__name__} expects (B, C, *spatial) or (B, V, C, *spatial) with {self.spatial_dims} "
                f"spatial dims, got shape {tuple(x.shape)}."
            )
        return self.head(global_pool(self.encoder.forward_features(x)))


class TripletLabelLoss(nn.Module):
    """``loss(embeddings, labels)`` of :class:`~medssl3d.losses.LabeledTripletLoss`, computed in float32.

    Mixed precision is switched off inside: in float16 the loss's ``eps`` under the square root rounds to 0, so
    the zero diagonal distances would give an infinite (masked, hence NaN) gradient.

    Args:
        loss: the labelled triplet loss; kept as ``.loss`` (for ``last_num_valid`` / ``last_fraction_active``).
    """

    def __init__(self, loss: LabeledTripletLoss) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, output: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        """output: (B, D) embeddings, or (B, V, D) for V views per image; target: (B,) class labels.

        The views of an image are samples with the image's label, so every image has a positive (its other
        views) even when it is the only one of its class in the batch. Returns a scalar.
        """
        if target is None:
            raise ValueError("the triplet loss needs the class labels as target, got None.")
        output, labels = _flatten_views(output, torch.as_tensor(target, device=output.device).long())
        with torch.autocast(device_type=output.device.type, enabled=False):
            return self.loss(output.float(), labels)


def _flatten_views(output: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, V, D) embeddings and (B,) labels -> (B*V, D) and each label repeated V times; (B, D) unchanged."""
    if output.ndim != 3:
        return output, labels
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != output.shape[:1]:
        raise ValueError(
            f"(B, V, D) embeddings need (B,) labels, got {tuple(output.shape)} and {tuple(labels.shape)}."
        )
    views = output.shape[1]
    return output.reshape(-1, output.shape[-1]), labels.repeat_interleave(views)


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


class LabeledTripletTask(PretextTask):
    """Labelled triplet pretraining (batch-all triplet margin loss on L2-normalised 128-d embeddings).

    The transform makes one augmented view per image (optional background removal and CLAHE, the medical
    SimCLR augmentations, the optional multi-scale jigsaw; see
    :class:`~medssl3d.tasks.joint_embedding.JointEmbeddingTask`, whose steps it shares) and passes the image's
    class label through as an int64 0-d tensor: the data must be labelled. The network is encoder -> global
    average pooling -> :func:`~medssl3d.nets.triplet_projection` (a Linear to ``embedding_dim`` and L2
    normalisation); the loss is :class:`~medssl3d.losses.LabeledTripletLoss` (``loss(embeddings, labels)``,
    every valid triplet of the batch, ``max(d(a,p)^gamma - d(a,n)^gamma + margin, 0)``); the held-out score is
    the leave-one-out nearest-neighbour label agreement within a batch (:func:`nearest_neighbour_correct`).

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
            :class:`~medssl3d.tasks.joint_embedding.JointEmbeddingTask`.
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
        super().__init__(spatial_dims)
        self.num_views = check_positive_int("num_views", num_views)
        if input_size is None:
            input_size = 64 if self.spatial_dims == 3 else 128
        self._input_size = check_size("input_size", input_size, self.spatial_dims)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        checked = LabeledTripletLoss(margin=margin, gamma=gamma)
        self.margin, self.gamma = checked.margin, checked.gamma
        self._views = ViewOptions(
            self.spatial_dims, self._input_size, clahe, remove_background, jigsaw_grid_sizes, augmentation
        )
        self.clahe, self.remove_background = self._views.clahe, self._views.remove_background
        self.jigsaw_grid_sizes, self.augmentation = self._views.jigsaw_grid_sizes, self._views.augmentation

    @property
    def input_size(self) -> tuple[int, ...]:
        return self._input_size

    def view_transform(self, keys: KeysCollection = "image") -> Compose:
        """The dictionary transform that makes the view (background removal, CLAHE, augmentations, jigsaw)."""
        return self._views.transform(keys)

    def transform(self, keys: KeysCollection = "image", label_key: str = "label") -> LabeledViewd:
        return LabeledViewd(keys, self.view_transform(keys), label_key=label_key, num_views=self.num_views)

    def network(self, encoder: nn.Module) -> TripletEmbeddingNet:
        features = check_encoder(encoder, self.spatial_dims)
        return TripletEmbeddingNet(encoder, self.spatial_dims, triplet_projection(features, self.embedding_dim))

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
            "input_size": list(self._input_size),
            "embedding_dim": self.embedding_dim,
            "margin": self.margin,
            "gamma": self.gamma,
            "num_views": self.num_views,
            "clahe": self.clahe,
            "remove_background": self.remove_background,
            "jigsaw_grid_sizes": None if self.jigsaw_grid_sizes is None else list(self.jigsaw_grid_sizes),
            "augmentation": {k: list(v) if isinstance(v, tuple) else v for k, v in self.augmentation.items()},
        }
