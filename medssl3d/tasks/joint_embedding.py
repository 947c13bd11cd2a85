"""Joint-embedding pretext tasks: two augmented views of an image, one encoder, a loss on the two embeddings.

* SimCLR: a projection head and the NT-Xent contrastive loss. Chen, Kornblith, Norouzi & Hinton, "A Simple
  Framework for Contrastive Learning of Visual Representations", ICML 2020, https://arxiv.org/abs/2002.05709;
  settings of the healthcare SimCLR recipe (ResNet-18, 512 -> 512 -> 128 head, temperature 0.5, the medical
  augmentation set of :func:`~medssl3d.transforms.simclr_medical_augmentations`).
* SiCoVa: a VICReg expander (3 x 8192) and the VICReg loss with SiCoVa's extra cross-correlation term.
  Bardes, Ponce & LeCun, "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised Learning",
  ICLR 2022, https://arxiv.org/abs/2105.04906; settings of the fundus SiCoVa recipe
  (:meth:`~medssl3d.losses.VICRegLoss.sicova`).

The task modules are thin glue: views come from :class:`~medssl3d.transforms.MultiViewd`, heads from
:mod:`medssl3d.nets.heads`, losses from :mod:`medssl3d.losses`. The network embeds both views of the batch in
one encoder call and returns a dict; :class:`ViewPairLoss` applies a pure ``loss(z1, z2)`` to it, so MONAI's
``SupervisedTrainer`` trains it with no target.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import Compose
from monai.utils import convert_to_tensor, look_up_option

from medssl3d.losses import NTXentLoss, VICRegLoss
from medssl3d.nets.heads import sicova_expander, simclr_projection_head
from medssl3d.nets.encoders import check_encoder, global_pool
from medssl3d.tasks.base import PretextTask
from medssl3d.utils.checks import check_flag, check_number, check_positive_int, check_size
from medssl3d.transforms import (
    CLAHEd,
    MultiStageRandomChoiceJigsawd,
    MultiViewd,
    RemoveBackgroundd,
    simclr_medical_augmentations,
)

__all__ = [
    "JointEmbeddingNet",
    "JointEmbeddingTask",
    "SiCoVaTask",
    "SimCLRTask",
    "TwoViewsd",
    "ViewPairLoss",
    "view_retrieval_correct",
]

#: what :meth:`JointEmbeddingTask.correct` compares: the head's output or the pooled encoder features
ACCURACY_ON = ("embedding", "representation")
_OUTPUT_KEYS = {"embedding": ("z1", "z2"), "representation": ("h1", "h2")}


def view_retrieval_correct(a: torch.Tensor, b: torch.Tensor) -> tuple[int, int]:
    """Top-1 retrieval of the other view among all other embeddings of the batch (SimCLR's contrastive accuracy).

    The ``2N`` rows of ``a`` and ``b`` are each an anchor; its candidates are the other ``2N - 1`` rows (the
    same ones NT-Xent's softmax runs over), compared by cosine similarity. An anchor is right when its
    positive (row ``i`` of the other view) is strictly more similar than every one of its ``2N - 2``
    negatives, so ties count as wrong. A batch of one has no negatives and judges nothing.

    Args:
        a: (N, D) embeddings of the first view.
        b: (N, D) embeddings of the second view.

    Returns:
        (number of anchors right, number judged: ``2N``, or 0 when ``N == 1``).

    Raises:
        ValueError: ``a`` and ``b`` are not (N, D) tensors of the same shape.
    """
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"a and b must both be (N, D) with the same shape, got {tuple(a.shape)} and {tuple(b.shape)}.")
    n = a.shape[0]
    if n < 2:
        return 0, 0
    with torch.no_grad():
        z = F.normalize(torch.cat([a, b]).detach().float(), dim=1)
        sim = z @ z.T  # (2N, 2N)
        rows = torch.arange(2 * n, device=z.device)
        positive_index = (rows + n) % (2 * n)
        positive = sim[rows, positive_index]
        sim[rows, rows] = float("-inf")
        sim[rows, positive_index] = float("-inf")
        right = (positive > sim.max(dim=1).values).sum()
    return int(right), 2 * n


class TwoViewsd(MultiViewd):
    """Two independently augmented views of each key, stacked as a plain float32 tensor ``(2, C, *spatial)``.

    :class:`~medssl3d.transforms.MultiViewd` with ``n_views=2, stack=True``; the stacked views lose their
    ``MetaTensor`` metadata (the network needs none), so a batch is a plain ``(B, 2, C, *spatial)`` tensor.

    Args:
        keys: image key(s).
        transform: the ``Randomizable`` dictionary transform that makes one view (seeded per view).
        allow_missing_keys: don't raise for missing keys.
    """

    def __init__(self, keys: KeysCollection, transform: Any, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, transform, n_views=2, stack=True, allow_missing_keys=allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = super().__call__(data)
        for key in self.key_iterator(d):
            d[key] = convert_to_tensor(d[key], dtype=torch.float32, track_meta=False).contiguous()
        return d


class JointEmbeddingNet(nn.Module):
    """Encoder, global pooling and a head, applied to both views of a batch in one encoder call.

    Args:
        encoder: a medssl3d encoder (``forward_features``, ``out_channels``); kept as ``.encoder``.
        spatial_dims: 2 or 3; must match the encoder.
        head: maps pooled (N, ``encoder.out_channels``) features to (N, D) embeddings (e.g.
            :func:`~medssl3d.nets.simclr_projection_head`); kept as ``.head``.

    Input (B, 2, C, *spatial). Output: a dict of ``"z1"``, ``"z2"`` (B, D) embeddings of view 1 and 2 (the
    loss's input) and ``"h1"``, ``"h2"`` (B, F) pooled encoder features (the representation that transfers).
    Both views go through the encoder and the head as one batch of ``2B`` images, so batch normalisation sees
    both views.
    """

    def __init__(self, encoder: nn.Module, spatial_dims: int, head: nn.Module) -> None:
        super().__init__()
        check_encoder(encoder, spatial_dims)
        if not isinstance(head, nn.Module):
            raise TypeError(f"head must be an nn.Module, got {type(head).__name__}.")
        self.encoder = encoder
        self.spatial_dims = spatial_dims
        self.head = head

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (B, 2, C, *spatial) -> {"z1", "z2": (B, D), "h1", "h2": (B, F)}."""
        if x.ndim != self.spatial_dims + 3 or x.shape[1] != 2:
            raise ValueError(
                f"{type(self).__name__} expects (B, 2, C, *spatial) with {self.spatial_dims} spatial dims (two "
                f"views per image), got shape {tuple(x.shape)}."
            )
        batch = x.shape[0]
        h = global_pool(self.encoder.forward_features(x.reshape(batch * 2, *x.shape[2:])))  # (2B, F)
        z = self.head(h)  # (2B, D)
        h, z = h.view(batch, 2, -1), z.view(batch, 2, -1)
        return {"z1": z[:, 0], "z2": z[:, 1], "h1": h[:, 0], "h2": h[:, 1]}


class ViewPairLoss(nn.Module):
    """Apply a two-view loss ``loss(z1, z2)`` to a :class:`JointEmbeddingNet` output dict.

    Args:
        loss: a tensor-in, scalar-out loss of two (B, D) tensors (``NTXentLoss``, ``VICRegLoss``); kept as
            ``.loss`` (e.g. for ``VICRegLoss.last_terms``).
        keys: the output keys of the two views.
    """

    def __init__(self, loss: nn.Module, keys: Sequence[str] = ("z1", "z2")) -> None:
        super().__init__()
        keys = tuple(keys)
        if len(keys) != 2:
            raise ValueError(f"keys must name the two views' outputs, got {keys!r}.")
        self.loss = loss
        self.keys = keys

    def forward(self, output: Mapping[str, torch.Tensor], target: Any = None) -> torch.Tensor:
        """output: the network's dict; target: ignored (``None``: the task has no label). Returns a scalar."""
        return self.loss(output[self.keys[0]], output[self.keys[1]])


class ViewOptions:
    """The one-view pipeline shared by SimCLR, SiCoVa and the labelled triplet task, validated once.

    Steps: optional background removal (threshold), optional CLAHE, the SimCLR medical augmentations
    (:func:`~medssl3d.transforms.simclr_medical_augmentations`, options in ``augmentation``), optional
    multi-stage jigsaw (``jigsaw_grid_sizes``, e.g. ``[8, 4, 2, 1]`` as the SiCoVa reference).

    Raises:
        ValueError: a bad option (named), checked now rather than when the data pipeline starts.
    """

    def __init__(
        self,
        spatial_dims: int,
        input_size: tuple[int, ...],
        clahe: bool = False,
        remove_background: float | None = None,
        jigsaw_grid_sizes: Sequence[int] | None = None,
        augmentation: Mapping[str, Any] | None = None,
    ) -> None:
        self.spatial_dims, self.input_size = spatial_dims, tuple(input_size)
        self.clahe = check_flag("clahe", clahe)
        if remove_background is not None:
            remove_background = check_number("remove_background", remove_background, hint="; pass a threshold or None")
        self.remove_background = remove_background
        if jigsaw_grid_sizes is not None:
            if isinstance(jigsaw_grid_sizes, (str, bytes)) or not isinstance(jigsaw_grid_sizes, Sequence):
                raise ValueError(
                    f"jigsaw_grid_sizes must be a list of positive integers or None, got {jigsaw_grid_sizes!r}."
                )
            jigsaw_grid_sizes = [check_positive_int("jigsaw_grid_sizes entries", n) for n in jigsaw_grid_sizes]
            if not jigsaw_grid_sizes or max(jigsaw_grid_sizes) > min(self.input_size):
                raise ValueError(
                    f"jigsaw_grid_sizes must be a non-empty list of grid sizes no larger than the input size "
                    f"{list(self.input_size)}, got {jigsaw_grid_sizes!r}."
                )
        self.jigsaw_grid_sizes = jigsaw_grid_sizes
        self.augmentation = dict(augmentation or {})
        try:  # fail now, not when the data pipeline starts
            simclr_medical_augmentations(self.input_size, self.spatial_dims, **self.augmentation)
        except TypeError as e:
            raise ValueError(
                f"augmentation has an unknown option ({e}); see medssl3d.transforms.simclr_medical_augmentations."
            ) from None

    def transform(self, keys: KeysCollection = "image") -> Compose:
        """The dictionary transform that makes one view."""
        steps: list[Any] = []
        if self.remove_background is not None:
            steps.append(RemoveBackgroundd(keys, threshold=self.remove_background))
        if self.clahe:
            steps.append(CLAHEd(keys))
        augment = simclr_medical_augmentations(self.input_size, self.spatial_dims, keys=keys, **self.augmentation)
        steps += list(augment.transforms)
        if self.jigsaw_grid_sizes is not None:
            steps.append(MultiStageRandomChoiceJigsawd(keys, grid_sizes=self.jigsaw_grid_sizes))
        return Compose(steps)


class JointEmbeddingTask(PretextTask):
    """Shared part of the two-view tasks: the views, the network around a head, and the retrieval accuracy.

    Each view of an image (already cropped to ``input_size`` by the pipeline) goes through, with its own random
    draws: the optional background removal and CLAHE (deterministic, before any augmentation), the medical
    SimCLR augmentations (:func:`~medssl3d.transforms.simclr_medical_augmentations`: resized crop, flip,
    rotation, brightness/contrast, blur) and the optional multi-scale jigsaw shuffle
    (:class:`~medssl3d.transforms.MultiStageRandomChoiceJigsawd`). The transform writes ``(2, C, *input_size)``
    and no label.

    Subclasses set ``name`` and implement :meth:`head` and :meth:`loss`.

    Args:
        spatial_dims: 2 or 3.
        input_size: spatial size of the input image (int or sequence); default 64 in 3D, 128 in 2D.
        clahe: equalise each image with :class:`~medssl3d.transforms.CLAHEd` (default settings) first.
        remove_background: if a number, zero pixels whose channel-mean intensity is below it
            (:class:`~medssl3d.transforms.RemoveBackgroundd`, before CLAHE; images are in [0, 1]).
        jigsaw_grid_sizes: if given, shuffle each view's tiles on an ``n x n(x n)`` grid with ``n`` drawn from it
            (e.g. ``[8, 4, 2, 1]`` as in the fundus SiCoVa recipe); ``None``: no shuffle.
        augmentation: keyword arguments for :func:`~medssl3d.transforms.simclr_medical_augmentations`
            (``scale``, ``ratio``, ``flip_prob``, ``flip_axis``, ``rotate_degrees``, ``brightness``,
            ``contrast``, ``blur_prob``, ``blur_sigma``, ``value_range``, ``normalize``).
        accuracy_on: what :meth:`correct` retrieves with: ``"embedding"`` (the head's output ``z``) or
            ``"representation"`` (the pooled encoder features ``h``).

    Raises:
        ValueError: for a bad argument (the message names it).
    """

    has_label = False
    default_accuracy_on = "embedding"

    def __init__(
        self,
        spatial_dims: int = 3,
        input_size: int | Sequence[int] | None = None,
        clahe: bool = False,
        remove_background: float | None = None,
        jigsaw_grid_sizes: Sequence[int] | None = None,
        augmentation: Mapping[str, Any] | None = None,
        accuracy_on: str | None = None,
    ) -> None:
        super().__init__(spatial_dims)
        if input_size is None:
            input_size = 64 if self.spatial_dims == 3 else 128
        self._input_size = check_size("input_size", input_size, self.spatial_dims)
        self._views = ViewOptions(
            self.spatial_dims, self._input_size, clahe, remove_background, jigsaw_grid_sizes, augmentation
        )
        self.clahe, self.remove_background = self._views.clahe, self._views.remove_background
        self.jigsaw_grid_sizes, self.augmentation = self._views.jigsaw_grid_sizes, self._views.augmentation
        self.accuracy_on = look_up_option(accuracy_on or self.default_accuracy_on, ACCURACY_ON)

    @property
    def input_size(self) -> tuple[int, ...]:
        return self._input_size

    def view_transform(self, keys: KeysCollection = "image") -> Compose:
        """The dictionary transform that makes one view (see the class docstring for the steps)."""
        return self._views.transform(keys)

    def transform(self, keys: KeysCollection = "image", label_key: str = "label") -> TwoViewsd:
        return TwoViewsd(keys, self.view_transform(keys))

    @abstractmethod
    def head(self, in_features: int) -> nn.Module:
        """The head on (N, ``in_features``) pooled encoder features."""

    def network(self, encoder: nn.Module) -> JointEmbeddingNet:
        features = check_encoder(encoder, self.spatial_dims)
        return JointEmbeddingNet(encoder, self.spatial_dims, self.head(features))

    def correct(self, output: Mapping[str, torch.Tensor], target: Any = None) -> tuple[int, int]:
        """Anchors whose other view is the most similar of their ``2N - 1`` candidates.

        See :func:`view_retrieval_correct`; on ``z`` (``accuracy_on="embedding"``) or ``h`` (``"representation"``).
        """
        first, second = _OUTPUT_KEYS[self.accuracy_on]
        return view_retrieval_correct(output[first], output[second])

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "input_size": list(self._input_size),
            "clahe": self.clahe,
            "remove_background": self.remove_background,
            "jigsaw_grid_sizes": None if self.jigsaw_grid_sizes is None else list(self.jigsaw_grid_sizes),
            "augmentation": {k: list(v) if isinstance(v, tuple) else v for k, v in self.augmentation.items()},
            "accuracy_on": self.accuracy_on,
        }


class SimCLRTask(JointEmbeddingTask):
    """SimCLR: NT-Xent between the projections of two augmented views (Chen et al. 2020).

    The head is :func:`~medssl3d.nets.simclr_projection_head` (Linear -> BatchNorm -> ReLU -> Linear, hidden
    width = encoder features, e.g. 512 -> 512 -> 128 on a ResNet-18). The held-out score is SimCLR's
    contrastive top-1 accuracy on the projections by default.

    Args:
        spatial_dims, input_size, clahe, remove_background, jigsaw_grid_sizes, augmentation: see
            :class:`JointEmbeddingTask`.
        temperature: NT-Xent temperature (0.5, the healthcare SimCLR recipe's).
        projection_dim: size of the projection the loss sees (128).
        hidden_dim: hidden width of the head; ``None``: the encoder's feature size.
        gather_distributed: gather negatives from every process (see :class:`~medssl3d.losses.NTXentLoss`).
        accuracy_on: ``"embedding"`` (default) or ``"representation"``.

    Raises:
        ValueError: for a bad argument (the message names it).

    Example::

        task = SimCLRTask(spatial_dims=2, input_size=128)
        net, loss = task.network(create_encoder("resnet18", 2, 3)), task.loss()
        views = task.transform()({"image": torch.rand(3, 128, 128)})["image"]  # (2, 3, 128, 128)
        value = loss(net(views[None].repeat(4, 1, 1, 1, 1)), None)
    """

    name = "simclr"

    def __init__(
        self,
        spatial_dims: int = 3,
        input_size: int | Sequence[int] | None = None,
        temperature: float = 0.5,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        clahe: bool = False,
        remove_background: float | None = None,
        jigsaw_grid_sizes: Sequence[int] | None = None,
        augmentation: Mapping[str, Any] | None = None,
        gather_distributed: bool = False,
        accuracy_on: str | None = None,
    ) -> None:
        super().__init__(
            spatial_dims, input_size, clahe, remove_background, jigsaw_grid_sizes, augmentation, accuracy_on
        )
        self.projection_dim = check_positive_int("projection_dim", projection_dim)
        self.hidden_dim = None if hidden_dim is None else check_positive_int("hidden_dim", hidden_dim)
        checked = NTXentLoss(temperature, gather_distributed)
        self.temperature, self.gather_distributed = checked.temperature, checked.gather_distributed

    def head(self, in_features: int) -> nn.Module:
        return simclr_projection_head(in_features, self.hidden_dim, self.projection_dim)

    def loss(self) -> ViewPairLoss:
        return ViewPairLoss(NTXentLoss(self.temperature, self.gather_distributed))

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "temperature": self.temperature,
            "projection_dim": self.projection_dim,
            "hidden_dim": self.hidden_dim,
        }


class SiCoVaTask(JointEmbeddingTask):
    """SiCoVa: VICReg (variance, invariance, covariance) plus a cross-correlation term, on an 8192-d expander.

    The head is :func:`~medssl3d.nets.sicova_expander` (``expander_layers`` Linear layers of ``expander_dim``,
    BatchNorm + ReLU between); the loss is :meth:`VICRegLoss.sicova <medssl3d.losses.VICRegLoss.sicova>`
    (weights 25 / 25 / 1, variance eps 1e-3, cross-correlation weight ``5e-3 * 5e-3 ** 2``; Bardes et al. 2022
    for the first three). VICReg's loss has no notion of a "right answer", so the held-out score is the same
    top-1 view retrieval as SimCLR's, by default on the pooled encoder features (the representation that is
    transferred; the expander output is thrown away after pretraining).

    Args:
        spatial_dims, input_size, clahe, remove_background, jigsaw_grid_sizes, augmentation: see
            :class:`JointEmbeddingTask`.
        expander_dim: width and output size of the expander (8192).
        expander_layers: number of Linear layers in the expander (3).
        sim_weight, var_weight, cov_weight, cross_weight: loss weights (see :class:`~medssl3d.losses.VICRegLoss`).
        accuracy_on: ``"representation"`` (default) or ``"embedding"``.

    Raises:
        ValueError: for a bad argument (the message names it).

    Example::

        task = SiCoVaTask(spatial_dims=2, input_size=224)
        net, loss = task.network(create_encoder("resnet50", 2, 3)), task.loss()  # 2048 -> 8192 -> 8192 -> 8192
    """

    name = "sicova"
    default_accuracy_on = "representation"

    def __init__(
        self,
        spatial_dims: int = 3,
        input_size: int | Sequence[int] | None = None,
        expander_dim: int = 8192,
        expander_layers: int = 3,
        sim_weight: float = 25.0,
        var_weight: float = 25.0,
        cov_weight: float = 1.0,
        cross_weight: float = 5e-3 * 5e-3**2,
        clahe: bool = False,
        remove_background: float | None = None,
        jigsaw_grid_sizes: Sequence[int] | None = None,
        augmentation: Mapping[str, Any] | None = None,
        accuracy_on: str | None = None,
    ) -> None:
        super().__init__(
            spatial_dims, input_size, clahe, remove_background, jigsaw_grid_sizes, augmentation, accuracy_on
        )
        self.expander_dim = check_positive_int("expander_dim", expander_dim)
        self.expander_layers = check_positive_int("expander_layers", expander_layers)
        checked = VICRegLoss.sicova(
            sim_weight=sim_weight, var_weight=var_weight, cov_weight=cov_weight, cross_weight=cross_weight
        )
        self.weights = {
            "sim_weight": checked.sim_weight,
            "var_weight": checked.var_weight,
            "cov_weight": checked.cov_weight,
            "cross_weight": checked.cross_weight,
        }

    def head(self, in_features: int) -> nn.Module:
        return sicova_expander(in_features, self.expander_dim, self.expander_layers)

    def loss(self) -> ViewPairLoss:
        return ViewPairLoss(VICRegLoss.sicova(**self.weights))

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "expander_dim": self.expander_dim,
            "expander_layers": self.expander_layers,
            **self.weights,
        }
