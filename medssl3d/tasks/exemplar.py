"""Exemplar networks with a triplet loss: two augmented views of one image attract, other images repel.

Dosovitskiy, A., Springenberg, J. T., Riedmiller, M., Brox, T. "Discriminative Unsupervised Feature
Learning with Convolutional Neural Networks", NeurIPS 2014. https://arxiv.org/abs/1406.6909

Taleb, A. et al. "3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020.
https://arxiv.org/abs/2006.03829 (3D exemplar with a triplet loss, embedding size 1024).

The transform turns one image into two independently augmented views (anchor, positive). The network
embeds all views of the batch in one encoder call; the negative of sample ``i`` is the positive view of
sample ``(i + 1) % B`` (a derangement: never the sample itself), so a negative is always a different
image, never a re-augmented or channel-swapped copy of the anchor.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import (
    MapTransform,
    RandAffine,
    RandFlip,
    RandGaussianNoise,
    Randomizable,
    RandScaleIntensity,
    RandShiftIntensity,
)
from monai.utils import convert_to_tensor

from medssl3d.losses.triplet import ExemplarTripletLoss
from medssl3d.nets.encoders import check_encoder, global_pool
from medssl3d.tasks.base import PretextTask
from medssl3d.utils.checks import (
    check_non_negative,
    check_positive_int,
    check_probability,
    check_size,
    check_spatial_dims,
)

__all__ = ["ExemplarNet", "ExemplarTask", "ExemplarViewsd"]


class ExemplarViewsd(Randomizable, MapTransform):
    """Two independently augmented views of an image, stacked as (2, C, *spatial): anchor, positive.

    Each view goes through, with fresh random parameters: a flip of each spatial axis (probability
    ``flip_prob`` each), a small affine (rotation up to ``rotate_range`` radians in every plane, scaling by
    ``1 + U(-scale_range, scale_range)``; probability ``affine_prob``), an intensity scaling ``x * (1 + f)``
    with ``f ~ U(-intensity_scale, intensity_scale)``, a shift by ``U(-intensity_shift, intensity_shift)``
    (probability ``intensity_prob`` each) and Gaussian noise with a standard deviation drawn from
    ``U(0, noise_std)`` (probability ``noise_prob``). The MONAI array transforms doing this all draw from this
    transform's ``self.R`` (also after :meth:`set_random_state`). With several keys, each key gets its own
    draws.

    Args:
        keys: image key(s); each holds a (C, *spatial) array.
        spatial_dims: 2 or 3.
        flip_prob, rotate_range, scale_range, affine_prob, intensity_scale, intensity_shift, intensity_prob,
            noise_std, noise_prob: the augmentation strengths above (0 switches one off).
        allow_missing_keys: don't raise if a key is missing.

    Raises:
        ValueError: for a bad argument (the message names it).
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        spatial_dims: int = 3,
        flip_prob: float = 0.5,
        rotate_range: float = 0.26,
        scale_range: float = 0.1,
        affine_prob: float = 1.0,
        intensity_scale: float = 0.1,
        intensity_shift: float = 0.1,
        intensity_prob: float = 1.0,
        noise_std: float = 0.05,
        noise_prob: float = 1.0,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        check_spatial_dims(spatial_dims)
        self.spatial_dims = spatial_dims
        flip_prob = check_probability("flip_prob", flip_prob)
        affine_prob = check_probability("affine_prob", affine_prob)
        intensity_prob = check_probability("intensity_prob", intensity_prob)
        noise_prob = check_probability("noise_prob", noise_prob)
        rotate_range = check_non_negative("rotate_range", rotate_range)
        scale_range = check_non_negative("scale_range", scale_range)
        intensity_scale = check_non_negative("intensity_scale", intensity_scale)
        intensity_shift = check_non_negative("intensity_shift", intensity_shift)
        noise_std = check_non_negative("noise_std", noise_std)
        n_planes = 3 if spatial_dims == 3 else 1
        self.augmentations: list[Randomizable] = [RandFlip(prob=flip_prob, spatial_axis=a) for a in range(spatial_dims)]
        self.augmentations += [
            RandAffine(
                prob=affine_prob,
                rotate_range=(rotate_range,) * n_planes,
                scale_range=(scale_range,) * spatial_dims,
                mode="bilinear",
                padding_mode="border",
            ),
            RandScaleIntensity(factors=intensity_scale, prob=intensity_prob),
            RandShiftIntensity(offsets=intensity_shift, prob=intensity_prob),
            RandGaussianNoise(prob=noise_prob, mean=0.0, std=noise_std),
        ]
        self.set_random_state(state=self.R)

    def set_random_state(self, seed: int | None = None, state: Any = None) -> ExemplarViewsd:
        super().set_random_state(seed, state)
        for t in self.augmentations:  # all draws come from one stream: ours
            t.set_random_state(state=self.R)
        return self

    def randomize(self, data: Any = None) -> None:
        """Nothing to pre-draw: each augmentation draws its parameters from ``self.R`` when it is applied."""

    def augment(self, img: torch.Tensor) -> torch.Tensor:
        """One augmented view of ``img`` (C, *spatial), with fresh random parameters."""
        x = img
        for t in self.augmentations:
            x = t(x)
        return convert_to_tensor(x, dtype=torch.float32, track_meta=False)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = convert_to_tensor(d[key], dtype=torch.float32, track_meta=False)
            if img.ndim != self.spatial_dims + 1:
                raise ValueError(
                    f"{key!r} must be (C, *spatial) with {self.spatial_dims} spatial dims, "
                    f"got shape {tuple(img.shape)}."
                )
            d[key] = torch.stack([self.augment(img), self.augment(img)]).contiguous()
        return d


class ExemplarNet(nn.Module):
    """Embed anchor and positive views in one encoder call; take negatives from other samples of the batch.

    Args:
        encoder: a medssl3d encoder (``forward_features``, ``out_channels``); kept as ``.encoder``.
        spatial_dims: 2 or 3; must match the encoder.
        embedding_size: size of the embedding (a Linear on the globally pooled features).

    Input (B, 2, C, *spatial) with ``B >= 2``. Output: a dict of ``"anchor"``, ``"positive"``,
    ``"negative"`` (each (B, embedding_size)) and ``"negative_index"`` (B,) int64: ``negative[i]`` is
    ``positive[negative_index[i]]`` and ``negative_index[i] = (i + 1) % B != i``.
    """

    def __init__(self, encoder: nn.Module, spatial_dims: int, embedding_size: int = 1024) -> None:
        super().__init__()
        features = check_encoder(encoder, spatial_dims)
        embedding_size = check_positive_int("embedding_size", embedding_size)
        self.encoder = encoder
        self.spatial_dims = spatial_dims
        self.embedding = nn.Linear(features, embedding_size)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (B, 2, C, *spatial) -> dict of anchor/positive/negative (B, E) and negative_index (B,)."""
        if x.ndim != self.spatial_dims + 3 or x.shape[1] != 2:
            raise ValueError(
                f"ExemplarNet expects (B, 2, C, *spatial) with {self.spatial_dims} spatial dims (anchor and positive "
                f"views), got shape {tuple(x.shape)}."
            )
        batch = x.shape[0]
        if batch < 2:
            raise ValueError(
                f"ExemplarNet needs at least 2 images per batch (negatives come from other images), got batch size "
                f"{batch}; raise batch_size to 2 or more (and use drop_last=True if the last batch can hold 1)."
            )
        feats = self.encoder.forward_features(x.reshape(batch * 2, *x.shape[2:]))
        emb = self.embedding(global_pool(feats)).view(batch, 2, -1)
        anchor, positive = emb[:, 0], emb[:, 1]
        negative_index = torch.roll(torch.arange(batch, device=x.device), -1)
        return {
            "anchor": anchor,
            "positive": positive,
            "negative": positive[negative_index],
            "negative_index": negative_index,
        }


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
