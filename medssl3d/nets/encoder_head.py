"""The one network shape of the pretext tasks: encoder, global average pooling, head.

Every pretext network of :mod:`medssl3d.tasks` is an :class:`EncoderWithHead`; what differs is the input
layout (one image, or ``V`` views/patches of each image that the encoder sees as one batch), the head, and
how the head's output is packed for the loss. The task-specific subclasses (:mod:`medssl3d.nets.pretext`)
only build their head and, where the loss wants a dict, override :meth:`EncoderWithHead.outputs`.

Nothing here is task-specific, and it is written by hand because the "several views through one encoder
call" layout has no counterpart in MONAI's networks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

from medssl3d.nets.encoders import check_encoder, global_pool
from medssl3d.utils.checks import check_positive_int

__all__ = ["ANY_VIEWS", "EncoderWithHead"]

#: ``views`` value of a network that takes either one image (B, C, *spatial) or any number of views
ANY_VIEWS = "any"


def _rename_old_keys(module: EncoderWithHead, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Load-state-dict pre-hook: map the keys of a checkpoint of the network's former layout (``renamed_keys``)."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        local = key[len(prefix) :]
        for old, new in module.renamed_keys.items():
            if local.startswith(old) and prefix + new + local[len(old) :] not in state_dict:
                state_dict[prefix + new + local[len(old) :]] = state_dict.pop(key)
                break


class EncoderWithHead(nn.Module):
    """``head(global_pool(encoder.forward_features(x)))``, with the views of a sample encoded in one call.

    Args:
        encoder: a medssl3d encoder (``forward_features``, int ``out_channels``); kept as ``.encoder``.
        spatial_dims: 2 or 3; must match the encoder.
        head: the module on the pooled features; kept as ``.head``.
        views: the input layout:

            * ``None``: one image per sample, (B, C, *spatial); the head gets (B, F).
            * an int ``V``: exactly ``V`` views (patches, augmentations) per sample, (B, V, C, *spatial); the
              encoder runs once on (B * V, C, *spatial) and the head gets (B, V, F) (or (B * V, F), below).
            * ``"any"`` (:data:`ANY_VIEWS`): either layout, any ``V``.
        head_per_view: give the head one row per view, (B * V, F), and reshape its output back to (B, V, D)
            (a head with batch normalisation then normalises over all views of the batch together);
            ``False``: the head gets (B, V, F) and sees the views of a sample together.
        input_name: how the error message calls one view ("patches", "views").

    ``F = encoder.out_channels``. :meth:`outputs` packs the pooled features and the head's output for the
    loss; by default it returns the head's output.

    Raises:
        TypeError: ``encoder`` is not a medssl3d encoder or ``head`` is not an ``nn.Module``.
        ValueError: bad ``spatial_dims`` or ``views``; on call, an input of the wrong layout (the message gives
            the expected and the actual shape).
    """

    #: appended to the wrong-layout message (e.g. "; two views per image")
    layout_hint: str = ""
    #: old state-dict key prefix -> new one, for checkpoints written before the network became this class
    renamed_keys: Mapping[str, str] = {}

    def __init__(
        self,
        encoder: nn.Module,
        spatial_dims: int,
        head: nn.Module,
        views: int | str | None = None,
        head_per_view: bool = True,
        input_name: str = "views",
    ) -> None:
        super().__init__()
        check_encoder(encoder, spatial_dims)
        if not isinstance(head, nn.Module):
            raise TypeError(f"head must be an nn.Module, got {type(head).__name__}.")
        if views is not None and views != ANY_VIEWS:
            views = check_positive_int("views", views, hint=f'; or None (one image) or "{ANY_VIEWS}"')
        self.encoder = encoder
        self.spatial_dims = spatial_dims
        self.head = head
        self.views = views
        self.head_per_view = bool(head_per_view)
        self.input_name = str(input_name)
        if self.renamed_keys:
            self.register_load_state_dict_pre_hook(_rename_old_keys)

    def _layout_error(self, x: torch.Tensor) -> ValueError:
        spatial = [f"S{i}" for i in range(self.spatial_dims)]
        images = f"({', '.join(['B', 'C', *spatial])})"
        views = f"({', '.join(['B', 'V' if self.views == ANY_VIEWS else str(self.views), 'C', *spatial])})"
        if self.views is None:
            layout = f"a batch of images {images}"
        elif self.views == ANY_VIEWS:
            layout = f"a batch of images {images} or of {self.input_name} {views}"
        else:
            layout = f"a batch of {self.input_name} {views}"
        return ValueError(
            f"{type(self).__name__} expects {layout} with {self.spatial_dims} spatial dims{self.layout_hint}, got "
            f"shape {tuple(x.shape)}; feed the output of the task's transform, batched."
        )

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled encoder features: (B, F) for (B, C, *spatial), (B, V, F) for (B, V, C, *spatial)."""
        single = x.ndim == self.spatial_dims + 2
        if self.views is None or (self.views == ANY_VIEWS and single):
            if not single:
                raise self._layout_error(x)
            return global_pool(self.encoder.forward_features(x))
        if x.ndim != self.spatial_dims + 3 or (self.views != ANY_VIEWS and x.shape[1] != self.views):
            raise self._layout_error(x)
        batch, views = x.shape[:2]
        return global_pool(self.encoder.forward_features(x.reshape(batch * views, *x.shape[2:]))).view(
            batch, views, -1
        )

    def apply_head(self, pooled: torch.Tensor) -> Any:
        """The head on the pooled features (one row per view when ``head_per_view``)."""
        if pooled.ndim == 3 and self.head_per_view:
            batch, views = pooled.shape[:2]
            out = self.head(pooled.reshape(batch * views, -1))
            return out.view(batch, views, *out.shape[1:])
        return self.head(pooled)

    def outputs(self, pooled: torch.Tensor, head_output: Any) -> Any:
        """What the network returns, from the pooled features and the head's output (default: the latter)."""
        return head_output

    def forward(self, x: torch.Tensor) -> Any:
        pooled = self.pool(x)
        return self.outputs(pooled, self.apply_head(pooled))
