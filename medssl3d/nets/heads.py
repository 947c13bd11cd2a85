"""Projection heads for joint-embedding self-supervised methods, built from a list of blocks.

One :class:`ProjectionHead` class serves every method; each method's head is a builder that passes its block
list and cites its paper. Heads act on pooled (N, in_features) encoder features, so they serve 2D and 3D
encoders alike, and are thrown away after pretraining (only the encoder is saved).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from medssl3d.utils.checks import check_positive_int

__all__ = ["L2Normalize", "ProjectionHead", "simclr_projection_head", "sicova_expander", "triplet_projection"]

#: one block: (in_features, out_features, normalisation layer or None, activation or None)
Block = tuple[int, int, "nn.Module | None", "nn.Module | None"]


class L2Normalize(nn.Module):
    """Scale each row of a (N, D) tensor to unit Euclidean length (``F.normalize(x, dim=1)``).

    Args:
        eps: lower bound on the norm, so a zero row stays zero instead of dividing by zero.
    """

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, D) -> (N, D) with unit rows."""
        return F.normalize(x, dim=1, eps=self.eps)


class ProjectionHead(nn.Module):
    """An MLP given as a list of blocks, each ``Linear -> [norm] -> [activation]``.

    A block is ``(in_features, out_features, norm, activation)`` with ``norm`` and ``activation`` modules or
    ``None``. The Linear of a block followed by a normalisation layer has no bias (the normalisation's shift
    makes it redundant). Consecutive blocks must chain: each block's ``in_features`` is the previous block's
    ``out_features``.

    Args:
        blocks: the blocks, first to last (at least one).
        normalize: end with :class:`L2Normalize` (unit-length outputs).

    Attributes:
        in_features, out_features: the sizes of the head's input and output.
        layers: the ``nn.Sequential`` of all layers.

    Raises:
        ValueError: no blocks, a malformed block, a non-positive size, or blocks that do not chain.
        TypeError: a norm or activation that is neither an ``nn.Module`` nor ``None``.

    Example:
        >>> head = ProjectionHead([(512, 512, nn.BatchNorm1d(512), nn.ReLU()), (512, 128, None, None)])
        >>> head(torch.randn(4, 512)).shape
        torch.Size([4, 128])
    """

    def __init__(self, blocks: Sequence[Block], normalize: bool = False) -> None:
        super().__init__()
        blocks = list(blocks)
        if not blocks:
            raise ValueError("blocks must hold at least one (in_features, out_features, norm, activation) block.")
        layers: list[nn.Module] = []
        previous: int | None = None
        for i, block in enumerate(blocks):
            if not isinstance(block, Sequence) or len(block) != 4:
                raise ValueError(f"block {i} must be (in_features, out_features, norm, activation), got {block!r}.")
            n_in = check_positive_int(f"block {i} in_features", block[0])
            n_out = check_positive_int(f"block {i} out_features", block[1])
            norm, act = block[2], block[3]
            for what, module in (("norm", norm), ("activation", act)):
                if module is not None and not isinstance(module, nn.Module):
                    raise TypeError(f"block {i} {what} must be an nn.Module or None, got {type(module).__name__}.")
            if previous is not None and n_in != previous:
                raise ValueError(
                    f"block {i} takes {n_in} features but block {i - 1} gives {previous}; blocks must chain."
                )
            layers.append(nn.Linear(n_in, n_out, bias=norm is None))
            layers += [m for m in (norm, act) if m is not None]
            previous = n_out
        if normalize:
            layers.append(L2Normalize())
        self.in_features = int(blocks[0][0])
        self.out_features = int(previous)  # type: ignore[arg-type]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, in_features) -> (N, out_features)."""
        return self.layers(x)


def simclr_projection_head(in_features: int, hidden: int | None = None, out: int = 128) -> ProjectionHead:
    """SimCLR's projection head g(.): Linear -> BatchNorm1d -> ReLU -> Linear.

    Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of Visual Representations",
    ICML 2020, https://arxiv.org/abs/2002.05709. The healthcare SimCLR recipe uses ``Linear(512 -> 512)``,
    ``BatchNorm + ReLU``, ``Linear(512 -> 128)`` on a ResNet-18 (2048 -> 2048 -> 128 on a ResNet-50).

    Args:
        in_features: size of the pooled encoder features (512 for ResNet-18, 2048 for ResNet-50).
        hidden: width of the hidden layer; ``None``: ``in_features``.
        out: size of the embedding the contrastive loss sees.

    Raises:
        ValueError: a non-positive size.
    """
    in_features = check_positive_int("in_features", in_features)
    hidden = in_features if hidden is None else check_positive_int("hidden", hidden)
    out = check_positive_int("out", out)
    return ProjectionHead(
        [(in_features, hidden, nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)), (hidden, out, None, None)]
    )


def sicova_expander(in_features: int, dim: int = 8192, layers: int = 3) -> ProjectionHead:
    """The VICReg expander (also SiCoVa's): ``layers - 1`` blocks Linear -> BatchNorm1d -> ReLU, then a Linear.

    Bardes, Ponce & LeCun, "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised Learning",
    ICLR 2022, https://arxiv.org/abs/2105.04906: three fully-connected layers of 8192 units, the first two with
    batch normalisation and ReLU. The fundus SiCoVa recipe: "ResNet50 encoder + 3-layer MLP expander (->8192-d
    embeddings)".

    Args:
        in_features: size of the pooled encoder features (2048 for ResNet-50).
        dim: width of every layer and size of the embedding.
        layers: number of Linear layers, >= 1 (1: a single Linear).

    Raises:
        ValueError: a non-positive size or number of layers.
    """
    in_features = check_positive_int("in_features", in_features)
    dim = check_positive_int("dim", dim)
    layers = check_positive_int("layers", layers)
    widths = [in_features] + [dim] * layers
    blocks: list[Block] = [
        (widths[i], widths[i + 1], nn.BatchNorm1d(widths[i + 1]), nn.ReLU(inplace=True)) for i in range(layers - 1)
    ]
    blocks.append((widths[-2], widths[-1], None, None))
    return ProjectionHead(blocks)


def triplet_projection(in_features: int, out: int = 128) -> ProjectionHead:
    """A linear projection to ``out`` dimensions followed by L2 normalisation, for triplet losses.

    The fundus triplet recipe: "ResNet50 encoder + linear projection head (->128-d embeddings)", "L2-normalized
    embeddings for triplet mining" (unit embeddings as in Schroff, Kalenichenko & Philbin, "FaceNet", CVPR 2015,
    https://arxiv.org/abs/1503.03832).

    Args:
        in_features: size of the pooled encoder features.
        out: embedding size.

    Raises:
        ValueError: a non-positive size.
    """
    in_features = check_positive_int("in_features", in_features)
    out = check_positive_int("out", out)
    return ProjectionHead([(in_features, out, None, None)], normalize=True)
