"""Spatial-shape helpers shared by the view transforms (crops, tile shuffling, views) of this package."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.data import MetaTensor
from monai.transforms import MapTransform

__all__ = ["check_dims", "common_spatial_shape", "spatial_shape"]


def spatial_shape(img: Any) -> tuple[int, ...]:
    """Spatial shape of a channel-first image (a ``MetaTensor``'s shape after its pending operations)."""
    shape = img.peek_pending_shape() if isinstance(img, MetaTensor) else img.shape[1:]
    return tuple(int(s) for s in shape)


def common_spatial_shape(transform: MapTransform, d: Mapping[Hashable, Any]) -> tuple[int, ...] | None:
    """Spatial shape shared by all of ``transform``'s keys in ``d`` (None when none is present)."""
    shapes = {key: spatial_shape(d[key]) for key in transform.key_iterator(d)}
    if len(set(shapes.values())) > 1:
        raise ValueError(
            f"{type(transform).__name__} applies one random draw to every key, so the keys must share a spatial "
            f"shape; got {shapes}."
        )
    return next(iter(shapes.values()), None)


def check_dims(sizes: tuple[int, ...], spatial: tuple[int, ...], name: str) -> tuple[int, ...]:
    """Broadcast a single size to every spatial axis; otherwise the lengths must match."""
    if len(sizes) == 1:
        return sizes * len(spatial)
    if len(sizes) != len(spatial):
        raise ValueError(f"{name} {list(sizes)} has {len(sizes)} sizes but the image has spatial shape {spatial}.")
    return sizes
