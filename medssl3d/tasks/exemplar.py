"""Exemplar networks with a triplet loss: two augmented views of one image attract, other images repel.

Dosovitskiy, A., Springenberg, J. T., Riedmiller, M., Brox, T. "Discriminative Unsupervised Feature
Learning with Convolutional Neural Networks", NeurIPS 2014. https://arxiv.org/abs/1406.6909

Taleb, A. et al. "3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020.
https://arxiv.org/abs/2006.03829 (3D exemplar with a triplet loss, embedding size 1024).

The transform turns one image into two independently augmented views (anchor, positive). The network
embeds all views of the batch in one encoder call; the negative of sample ``i`` is the positive view of
sample ``(i + 1) % B`` (a derangement: never the sample itself), so a negative is always a different
image, never a re-augmented or channel-swapped copy of the anchor. The transform (:class:`ExemplarViewsd`,
array form :class:`~medssl3d.transforms.pretext.ExemplarViews`) lives in :mod:`medssl3d.transforms.pretext.exemplar`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.config import KeysCollection

from medssl3d.losses.triplet import ExemplarTripletLoss
from medssl3d.nets.pretext import ExemplarNet
from medssl3d.tasks.base import PretextTask
from medssl3d.transforms.pretext import ExemplarViewsd
from medssl3d.utils.checks import check_positive_int, check_size

__all__ = ["ExemplarNet", "ExemplarTask", "ExemplarViewsd"]


class ExemplarTask(PretextTask):
    """Exemplar pretext task: triplet loss on two augmented views of an image and a view of another image.

    Args:
        spatial_dims: 2 or 3.
        input_size: spatial size of the input image (int or sequence); default 64 in 3D, 128 in 2D.
        embedding_size: embedding size (default 1024, Taleb et al.).
        margin: triplet margin (default 1.0).
        augmentation: keyword arguments for :class:`ExemplarViewsd` (``flip_prob``, ``rotate_range``,
            ``scale_range``, ``affine_prob``, ``intensity_scale``, ``intensity_shift``, ``intensity_prob``,
            ``noise_std``, ``noise_prob``).

    Raises:
        ValueError: for a bad argument (the message names it).

    Example::

        task = ExemplarTask(spatial_dims=3, input_size=64)
        net, loss = task.network(UNetEncoder(3, 1)), task.loss()
        views = task.transform()({"image": torch.rand(1, 64, 64, 64)})["image"]  # (2, 1, 64, 64, 64)
    """

    name = "exemplar"
    has_label = False

    def __init__(
        self,
        spatial_dims: int = 3,
        input_size: int | Sequence[int] | None = None,
        embedding_size: int = 1024,
        margin: float = 1.0,
        augmentation: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(spatial_dims)
        if input_size is None:
            input_size = 64 if self.spatial_dims == 3 else 128
        self._input_size = check_size("input_size", input_size, self.spatial_dims)
        self.embedding_size = check_positive_int("embedding_size", embedding_size)
        self.margin = ExemplarTripletLoss(margin).margin
        self.augmentation = dict(augmentation or {})
        try:  # fail now, not when the data pipeline starts
            ExemplarViewsd("image", spatial_dims=self.spatial_dims, **self.augmentation)
        except TypeError as e:
            raise ValueError(f"augmentation has an unknown option ({e}); see ExemplarViewsd for the options.") from None

    @property
    def input_size(self) -> tuple[int, ...]:
        return self._input_size

    def transform(self, keys: KeysCollection = "image", label_key: str = "label") -> ExemplarViewsd:
        return ExemplarViewsd(keys, spatial_dims=self.spatial_dims, **self.augmentation)

    def network(self, encoder: nn.Module) -> ExemplarNet:
        return ExemplarNet(encoder, self.spatial_dims, self.embedding_size)

    def loss(self) -> ExemplarTripletLoss:
        return ExemplarTripletLoss(self.margin)

    def correct(self, output: Mapping[str, torch.Tensor], target: Any = None) -> tuple[int, int]:
        """Triplets where the anchor is closer to its positive than to its negative (same distance as the loss)."""
        d_pos = F.pairwise_distance(output["anchor"], output["positive"])
        d_neg = F.pairwise_distance(output["anchor"], output["negative"])
        return int((d_pos < d_neg).sum()), int(d_pos.numel())

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "input_size": list(self._input_size),
            "embedding_size": self.embedding_size,
            "margin": self.margin,
            "augmentation": dict(self.augmentation),
        }
