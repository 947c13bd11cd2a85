"""An image classifier on any medssl3d encoder: global average pooling and a linear or MLP head.

Taleb et al. 2020 ("3D Self-Supervised Methods for Medical Imaging", NeurIPS) fine-tune their
pretrained encoders for 5-grade diabetic retinopathy with a classification head on pooled encoder
features. The encoder is kept as ``self.encoder`` so ``encoder.pt`` from pretraining loads with
:func:`~medssl3d.nets.unet.with_pretrained_encoder` (prefix ``encoder.``) and
:class:`~medssl3d.engines.FreezeEncoder` can freeze it for a warm-up.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.utils import look_up_option

from medssl3d.nets.encoders import check_encoder, global_pool
from medssl3d.utils.checks import check_positive_int, check_probability, check_size

__all__ = ["Classifier", "CLASSIFIER_HEADS", "classification_head", "check_input_size"]

CLASSIFIER_HEADS = ("linear", "mlp")


def classification_head(
    in_features: int, num_classes: int, head: str = "linear", dropout: float = 0.3, hidden: Sequence[int] = (256, 128)
) -> nn.Sequential:
    """The head on pooled (N, in_features) features.

    ``"linear"``: Dropout -> Linear(in_features, num_classes). ``"mlp"``: for each ``h`` in ``hidden``
    Linear -> ReLU -> Dropout, then Linear(hidden[-1], num_classes), e.g. 512 -> 256 -> 128 -> C for a ResNet18.
    Dropout layers are left out when ``dropout`` is 0.

    Raises:
        ValueError: a non-positive size, an unknown head, a bad dropout or an empty ``hidden`` for ``"mlp"``.
    """
    width = check_positive_int("in_features", in_features)
    num_classes = check_positive_int("num_classes", num_classes)
    head = look_up_option(str(head).lower(), CLASSIFIER_HEADS)
    p = check_probability("dropout", dropout, include_one=False)
    layers: list[nn.Module] = []
    if head == "mlp":
        try:
            sizes = check_size("hidden", hidden)
        except ValueError:
            raise ValueError(
                f"hidden must be a non-empty list of positive layer widths for head='mlp', got {hidden!r}."
            ) from None
        for h in sizes:
            layers += [nn.Linear(width, int(h)), nn.ReLU(inplace=True)]
            if p > 0:
                layers.append(nn.Dropout(p))
            width = int(h)
    elif p > 0:
        layers.append(nn.Dropout(p))
    layers.append(nn.Linear(width, int(num_classes)))
    return nn.Sequential(*layers)


class Classifier(nn.Module):
    """``head(global_pool(encoder.forward_features(x)))``: class logits from any medssl3d encoder.

    Args:
        encoder: a module with ``forward_features(x) -> (N, F, *spatial)`` and an int ``out_channels`` = F
            (see :func:`medssl3d.nets.create_encoder`), 2D or 3D.
        num_classes: number of classes C (5 DR grades).
        head: ``"linear"`` or ``"mlp"`` (see :func:`classification_head`).
        dropout: dropout probability in the head, in [0, 1).
        hidden: widths of the MLP head's hidden layers.
        class_names: the C output names (default ``"0" .. "C-1"``); only described, not used by ``forward``.
        multi_label: the outputs are independent findings (sigmoid), not one class (softmax); descriptive.
        input_size: the spatial size it was trained at (one int or one per axis); ``None`` when unknown.

    ``class_names``, ``multi_label`` and ``input_size`` are plain attributes that TorchScript keeps, so a
    ``model.ts`` exported with ``monai.bundle ckpt_export`` still says what its outputs mean.

    Attributes:
        encoder: the encoder (loaded from ``encoder.pt`` under the prefix ``encoder.``).
        head: the ``nn.Sequential`` head.
        num_classes: C.

    Raises:
        TypeError: ``encoder`` is not a medssl3d encoder.
        ValueError: bad ``num_classes``, ``head``, ``dropout`` or ``hidden``.

    Example::

        net = Classifier(create_encoder("densenet121", 2, 3), num_classes=5, head="mlp")
        net(torch.zeros(2, 3, 224, 224)).shape  # (2, 5)
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        head: str = "linear",
        dropout: float = 0.3,
        hidden: Sequence[int] = (256, 128),
        class_names: Sequence[str] | None = None,
        multi_label: bool = False,
        input_size: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        spatial_dims = getattr(encoder, "spatial_dims", None)
        features = check_encoder(encoder, spatial_dims if isinstance(spatial_dims, int) else 2)
        self.encoder = encoder
        self.head_type = look_up_option(str(head).lower(), CLASSIFIER_HEADS)
        self.head = classification_head(features, num_classes, self.head_type, dropout, hidden)
        self.num_classes = int(num_classes)
        self.dropout = float(dropout)
        self.hidden = tuple(int(h) for h in ([hidden] if isinstance(hidden, numbers.Integral) else hidden))
        # descriptive attributes; TorchScript keeps them, so an exported model.ts names its outputs
        names = [str(i) for i in range(self.num_classes)] if class_names is None else [str(c) for c in class_names]
        if isinstance(class_names, str) or len(names) != self.num_classes:
            raise ValueError(f"class_names must hold num_classes={self.num_classes} names, got {class_names!r}.")
        self.class_names = names
        self.multi_label = bool(multi_label)
        dims = int(getattr(encoder, "spatial_dims", 2))
        size: list[int] = [] if input_size is None else list(check_size("input_size", input_size, dims))
        self.input_size = size  # TorchScript keeps it only when known (an empty list has no type it can infer)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled encoder features: (N, C_in, *S) -> (N, encoder.out_channels)."""
        return global_pool(self.encoder.forward_features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits: (N, C_in, *S) -> (N, num_classes)."""
        return self.head(self.embed(x))

    def config(self) -> dict[str, Any]:
        """Plain constructor arguments of the head, and the encoder's ``config()`` when it has one."""
        enc = self.encoder.config() if callable(getattr(self.encoder, "config", None)) else None
        return {"num_classes": self.num_classes, "head": self.head_type, "dropout": self.dropout,
                "hidden": list(self.hidden), "class_names": list(self.class_names), "multi_label": self.multi_label,
                "input_size": list(self.input_size), "encoder": enc}


def check_input_size(network: nn.Module, image_size: int | Sequence[int]) -> tuple[int, ...]:
    """Fail early, with the way out, when ``image_size`` is too small for ``network``'s encoder.

    Runs one forward pass of a zero image (batch 2, eval mode, no gradients) through the encoder.

    Args:
        network: a :class:`Classifier` (or any model with ``.encoder``) or a bare encoder.
        image_size: one int (square) or one int per spatial dimension.

    Returns:
        the spatial size of the encoder's feature map.

    Raises:
        ValueError: the encoder rejects the size or its feature map would be empty.
    """
    encoder = getattr(network, "encoder", network)
    dims = int(getattr(encoder, "spatial_dims", 2))
    size = check_size("image_size", image_size, dims)
    x = torch.zeros(2, int(encoder.in_channels), *size)
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            out = encoder.forward_features(x)
    except (RuntimeError, ValueError) as e:
        reason = " ".join(str(e).split())[:200]
        raise ValueError(
            f"image_size={image_size!r} is too small for the {type(encoder).__name__} encoder ({reason}); "
            "use a larger image_size (e.g. >= 32 for densenet121/resnet)."
        ) from e
    finally:
        encoder.train(was_training)
    if out.numel() == 0 or min(out.shape[2:]) < 1:
        raise ValueError(
            f"image_size={image_size!r} gives an empty feature map {tuple(out.shape)}; use a larger image_size."
        )
    return tuple(out.shape[2:])
