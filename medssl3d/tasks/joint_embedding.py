"""Joint-embedding pretext tasks: two augmented views of an image, one encoder, a loss on the two embeddings.

* SimCLR: a projection head and the NT-Xent contrastive loss. Chen, Kornblith, Norouzi & Hinton, "A Simple
  Framework for Contrastive Learning of Visual Representations", ICML 2020, https://arxiv.org/abs/2002.05709;
  settings of the healthcare SimCLR recipe (ResNet-18, 512 -> 512 -> 128 head, temperature 0.5, the medical
  augmentation set of :func:`~medssl3d.transforms.simclr_medical_augmentations`).
* SiCoVa: a VICReg expander (3 x 8192) and the VICReg loss with SiCoVa's extra cross-correlation term.
  Bardes, Ponce & LeCun, "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised Learning",
  ICLR 2022, https://arxiv.org/abs/2105.04906; settings of the fundus SiCoVa recipe
  (:meth:`~medssl3d.losses.VICRegLoss.sicova`).

The task modules are thin glue: views come from :class:`~medssl3d.transforms.pretext.TwoViewsd` (the shared
view pipeline of :class:`~medssl3d.tasks.view_task.ViewTask`), heads from :mod:`medssl3d.nets.heads`, the
network is :class:`~medssl3d.nets.JointEmbeddingNet` and the losses come from :mod:`medssl3d.losses`. The
network embeds both views of the batch in one encoder call and returns a dict;
:class:`~medssl3d.losses.ViewPairLoss` applies a pure ``loss(z1, z2)`` to it, so MONAI's ``SupervisedTrainer``
trains it with no target.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.utils import look_up_option

from medssl3d.losses import NTXentLoss, VICRegLoss, ViewPairLoss
from medssl3d.nets.heads import sicova_expander, simclr_projection_head
from medssl3d.nets.pretext import JointEmbeddingNet
from medssl3d.tasks.view_task import ViewOptions, ViewTask
from medssl3d.transforms.pretext import TwoViewsd
from medssl3d.utils.checks import check_positive_int

__all__ = [
    "JointEmbeddingNet",
    "JointEmbeddingTask",
    "ViewOptions",
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


class JointEmbeddingTask(ViewTask):
    """Shared part of the two-view tasks: two views of each image, the network around a head, the retrieval score.

    The views are made as described in :class:`~medssl3d.tasks.view_task.ViewTask`; the transform writes
    ``(2, C, *input_size)`` and no label. The network is a :class:`~medssl3d.nets.JointEmbeddingNet` around
    :meth:`head`.

    Subclasses set ``name`` and implement :meth:`head` and :meth:`loss`.

    Args:
        spatial_dims, input_size, clahe, remove_background, jigsaw_grid_sizes, augmentation: see
            :class:`~medssl3d.tasks.view_task.ViewTask`.
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
        super().__init__(spatial_dims, input_size, clahe, remove_background, jigsaw_grid_sizes, augmentation)
        self.accuracy_on = look_up_option(accuracy_on or self.default_accuracy_on, ACCURACY_ON)

    def transform(self, keys: KeysCollection = "image", label_key: str = "label") -> TwoViewsd:
        return TwoViewsd(keys, self.view_transform(keys))

    @abstractmethod
    def head(self, in_features: int) -> nn.Module:
        """The head on (N, ``in_features``) pooled encoder features."""

    def network(self, encoder: nn.Module) -> JointEmbeddingNet:
        return JointEmbeddingNet(encoder, self.spatial_dims, self.head_for(encoder))

    def correct(self, output: Mapping[str, torch.Tensor], target: Any = None) -> tuple[int, int]:
        """Anchors whose other view is the most similar of their ``2N - 1`` candidates.

        See :func:`view_retrieval_correct`; on ``z`` (``accuracy_on="embedding"``) or ``h`` (``"representation"``).
        """
        first, second = _OUTPUT_KEYS[self.accuracy_on]
        return view_retrieval_correct(output[first], output[second])

    def state(self) -> dict[str, Any]:
        return {**super().state(), "accuracy_on": self.accuracy_on}


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
