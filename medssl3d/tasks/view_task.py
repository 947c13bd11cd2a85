"""The base of the tasks that learn from augmented views of whole images: SimCLR, SiCoVa, labelled triplet.

They share the input (an image cropped to ``input_size``), the one-view pipeline (:class:`ViewOptions`),
the encoder-pool-head network (:class:`~medssl3d.nets.encoder_head.EncoderWithHead`) around a head that
each task builds, and the settings they record. They differ in how many views a sample holds, whether it
keeps its label, the head, the loss and the held-out score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn as nn
from monai.config import KeysCollection
from monai.transforms import Compose

from medssl3d.nets.encoders import check_encoder
from medssl3d.tasks.base import PretextTask
from medssl3d.transforms import CLAHEd, MultiStageRandomChoiceJigsawd, RemoveBackgroundd, simclr_medical_augmentations
from medssl3d.utils.checks import check_flag, check_number, check_positive_int, check_size

__all__ = ["ViewOptions", "ViewTask"]


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
        self.jigsaw_grid_sizes = self._check_grid_sizes(jigsaw_grid_sizes)
        self.augmentation = dict(augmentation or {})
        try:  # fail now, not when the data pipeline starts
            simclr_medical_augmentations(self.input_size, self.spatial_dims, **self.augmentation)
        except TypeError as e:
            raise ValueError(
                f"augmentation has an unknown option ({e}); see medssl3d.transforms.simclr_medical_augmentations."
            ) from None

    def _check_grid_sizes(self, jigsaw_grid_sizes: Sequence[int] | None) -> list[int] | None:
        if jigsaw_grid_sizes is None:
            return None
        if isinstance(jigsaw_grid_sizes, (str, bytes)) or not isinstance(jigsaw_grid_sizes, Sequence):
            raise ValueError(
                f"jigsaw_grid_sizes must be a list of positive integers or None, got {jigsaw_grid_sizes!r}."
            )
        sizes = [check_positive_int("jigsaw_grid_sizes entries", n) for n in jigsaw_grid_sizes]
        if not sizes or max(sizes) > min(self.input_size):
            raise ValueError(
                f"jigsaw_grid_sizes must be a non-empty list of grid sizes no larger than the input size "
                f"{list(self.input_size)}, got {jigsaw_grid_sizes!r}."
            )
        return sizes

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

    def state(self) -> dict[str, Any]:
        """The options as plain values (for the task's recorded state)."""
        return {
            "clahe": self.clahe,
            "remove_background": self.remove_background,
            "jigsaw_grid_sizes": None if self.jigsaw_grid_sizes is None else list(self.jigsaw_grid_sizes),
            "augmentation": {k: list(v) if isinstance(v, tuple) else v for k, v in self.augmentation.items()},
        }


class ViewTask(PretextTask):
    """A pretext task on augmented views of an image (already cropped to ``input_size`` by the pipeline).

    Each view goes through, with its own random draws: the optional background removal and CLAHE
    (deterministic, before any augmentation), the medical SimCLR augmentations
    (:func:`~medssl3d.transforms.simclr_medical_augmentations`: resized crop, flip, rotation,
    brightness/contrast, blur) and the optional multi-scale jigsaw shuffle
    (:class:`~medssl3d.transforms.MultiStageRandomChoiceJigsawd`). Subclasses set ``name`` and implement
    :meth:`head`, :meth:`network` (usually through :meth:`head`), ``transform``, ``loss`` and ``correct``.

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

    Raises:
        ValueError: for a bad argument (the message names it).
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        input_size: int | Sequence[int] | None = None,
        clahe: bool = False,
        remove_background: float | None = None,
        jigsaw_grid_sizes: Sequence[int] | None = None,
        augmentation: Mapping[str, Any] | None = None,
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

    @property
    def input_size(self) -> tuple[int, ...]:
        return self._input_size

    def view_transform(self, keys: KeysCollection = "image") -> Compose:
        """The dictionary transform that makes one view (see the class docstring for the steps)."""
        return self._views.transform(keys)

    def head(self, in_features: int) -> nn.Module:
        """The head on (N, ``in_features``) pooled encoder features."""
        raise NotImplementedError

    def head_for(self, encoder: nn.Module) -> nn.Module:
        """:meth:`head` sized for ``encoder`` (checked to be a medssl3d encoder of this task's dimension)."""
        return self.head(check_encoder(encoder, self.spatial_dims))

    def state(self) -> dict[str, Any]:
        return {**super().state(), "input_size": list(self._input_size), **self._views.state()}
