"""What every pretext dictionary transform shares: it holds its array form and forwards to it.

A pretext transform comes in two forms, as MONAI's (``RandRotate90`` / ``RandRotate90d``): the array form
does the maths on one (C, *spatial) image; the dictionary form holds one array instance
(``self.array_transform``), draws once per call through it and applies it to every key, so the maths live
in one place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from monai.transforms import MapTransform, Randomizable

__all__ = ["RandPretextd", "array_property"]


def array_property(name: str) -> property:
    """A read-only property of a dictionary transform that reads ``self.array_transform.<name>``.

    Keeps the settings of a dictionary transform (``patch_size``, ``input_size``, ...) readable where they
    were before its maths moved to the array form, without a second copy that could drift.
    """

    def read(self: Any) -> Any:
        return getattr(self.array_transform, name)

    return property(read, doc=f"The array transform's ``{name}``.")


class RandPretextd(Randomizable, MapTransform):
    """Base of the random pretext dictionary transforms built on an array form held as ``array_transform``.

    :meth:`set_random_state` seeds this transform and hands its stream (``self.R``) to the array form, so the
    array form's draws are this transform's draws: the same seed gives the same outputs through either form.
    :meth:`randomize` draws through the array form. Subclasses set ``self.array_transform`` in ``__init__``
    and implement ``__call__``.
    """

    array_transform: Randomizable

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> RandPretextd:
        super().set_random_state(seed, state)
        self.array_transform.set_random_state(state=self.R)
        return self

    def randomize(self, data: Any = None) -> None:
        """Draw the random parameters of the next call (in the array form)."""
        self.array_transform.randomize(data)
