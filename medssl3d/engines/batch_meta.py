"""The per-item metadata of a decollated engine batch, for MONAI handlers that name each case."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["image_meta_dicts"]


def image_meta_dicts(batch: Sequence[Mapping[str, Any]], key: str = "image") -> list[dict]:
    """The ``meta`` dictionary of each item's ``key`` tensor (a MONAI ``MetaTensor``), in batch order.

    MONAI's ``MetricsSaver`` takes this as ``batch_transform`` to name each row of its per-case metric files
    (``filename_or_obj``). The evaluator's batch must be decollated (a list of dictionaries, MONAI's default).

    Args:
        batch: ``engine.state.batch`` of a decollating evaluator.
        key: the item entry whose metadata names the case.

    Raises:
        ValueError: an item has no ``key`` entry, or no metadata (not a ``MetaTensor``).

    Example (bundle JSON)::

        "batch_transform": {"_target_": "medssl3d.engines.image_meta_dicts", "_mode_": "callable"}
    """
    metas = []
    for i, item in enumerate(batch):
        if not isinstance(item, Mapping) or key not in item:
            found = sorted(item) if isinstance(item, Mapping) else type(item).__name__
            raise ValueError(f"batch item {i} has no {key!r} entry ({found}); is the evaluator's batch decollated?")
        meta = getattr(item[key], "meta", None)
        if meta is None:
            raise ValueError(f"batch item {i}: {key!r} is a {type(item[key]).__name__}, not a MetaTensor with metadata.")
        metas.append(meta)
    return metas
