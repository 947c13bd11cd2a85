"""Patch grids shared by the patch-based pretext transforms (jigsaw, relative patch location).

Both lay a regular grid of cells over the image and cut one patch per chosen cell at a small random offset
inside it. The cutting is a single advanced-indexing gather with broadcast index grids (no Python loop over
patches), in 2D and 3D. :class:`PatchPretext` is the array base (one image in, ``(patches, label)`` out),
:class:`PatchPretextd` the dictionary base built on it.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.transforms import Randomizable, Transform

from medssl3d.transforms.pretext.base import RandPretextd, array_property

__all__ = ["grid_cell_starts", "cut_patches", "as_image_tensor", "PatchPretext", "PatchPretextd"]


def grid_cell_starts(grid: Sequence[int], step: Sequence[int]) -> torch.Tensor:
    """Start corners of the cells of a regular grid, in C order (last spatial axis fastest).

    Args:
        grid: number of cells along each spatial axis, e.g. ``(3, 3, 3)``.
        step: distance between the starts of neighbouring cells along each axis (cell size plus any gap).

    Returns:
        int64 tensor (prod(grid), spatial_dims); row ``i`` is the corner of cell ``i``, where cell
        ``(a, b, c)`` has index ``a * grid[1] * grid[2] + b * grid[2] + c``.

    Example::

        grid_cell_starts((2, 3), (10, 5))  # [[0, 0], [0, 5], [0, 10], [10, 0], [10, 5], [10, 10]]
    """
    if len(grid) != len(step):
        raise ValueError(f"grid {tuple(grid)} and step {tuple(step)} must have the same number of axes.")
    cells = torch.tensor(list(itertools.product(*(range(int(g)) for g in grid))), dtype=torch.int64)
    return cells.reshape(-1, len(grid)) * torch.as_tensor([int(s) for s in step], dtype=torch.int64)


def cut_patches(image: torch.Tensor, starts: torch.Tensor, patch_size: Sequence[int]) -> torch.Tensor:
    """Cut ``P`` equally sized patches out of one image in a single gather.

    Args:
        image: (C, *spatial) tensor, 2 or 3 spatial axes.
        starts: (P, spatial_dims) integer tensor (or array) of patch corners.
        patch_size: spatial size of every patch.

    Returns:
        (P, C, *patch_size) tensor, ``out[p] == image[:, s0:s0+p0, s1:s1+p1, ...]`` for ``s = starts[p]``.

    Raises:
        ValueError: if the shapes disagree or a patch leaves the image.
    """
    starts = torch.as_tensor(starts, dtype=torch.int64, device=image.device)
    dims = image.ndim - 1
    size = tuple(int(s) for s in patch_size)
    if starts.ndim != 2 or starts.shape[1] != dims or len(size) != dims:
        raise ValueError(
            f"cut_patches: image {tuple(image.shape)} has {dims} spatial axes, so starts must be (P, {dims}) and "
            f"patch_size {dims} ints; got starts {tuple(starts.shape)} and patch_size {size}."
        )
    limit = torch.as_tensor(image.shape[1:], dtype=torch.int64, device=image.device) - torch.as_tensor(
        size, dtype=torch.int64, device=image.device
    )
    if starts.numel() and (bool((starts < 0).any()) or bool((starts > limit).any())):
        raise ValueError(
            f"cut_patches: a patch of size {size} at starts {starts.tolist()} leaves the image of spatial shape "
            f"{tuple(image.shape[1:])}."
        )
    n = starts.shape[0]
    index = []
    for axis in range(dims):  # one broadcast index grid per axis (a loop over axes, not over patches)
        shape = [1] * (dims + 1)
        shape[axis + 1] = size[axis]
        offsets = torch.arange(size[axis], device=image.device).reshape(shape)
        index.append(starts[:, axis].reshape([n] + [1] * dims) + offsets)
    # advanced indices on adjacent axes 1..dims: result (C, P, *patch_size)
    return image[(slice(None), *index)].movedim(0, 1).contiguous()


def as_image_tensor(
    img: Any, spatial_dims: int, input_size: Sequence[int], key: Hashable | None, task: str
) -> torch.Tensor:
    """``img`` as a float32 plain tensor (C, *input_size); ``ValueError`` that says what to do otherwise.

    Args:
        img: array, tensor or ``MetaTensor`` (its meta data is dropped: pretext inputs are plain tensors).
        spatial_dims: 2 or 3.
        input_size: the spatial shape required.
        key: the dictionary key ``img`` came from, named in the message as ``data[key]``; ``None`` for the
            array form (the message then says "the image").
        task: the transform's name, which starts the message.
    """
    if hasattr(img, "as_tensor"):  # MetaTensor: drop the meta data, pretext inputs are plain tensors
        img = img.as_tensor()
    img = torch.as_tensor(img).to(torch.float32)
    expected = tuple(int(s) for s in input_size)
    if img.ndim != spatial_dims + 1 or tuple(img.shape[1:]) != expected:
        what = "the image" if key is None else f"data[{key!r}]"
        raise ValueError(
            f"{task}: {what} must be channel-first (C, {', '.join(map(str, expected))}), the task's "
            f"input_size {expected}, but has shape {tuple(img.shape)}; crop/pad every image to task.input_size "
            "first (e.g. ResizeWithPadOrCropd or RandSpatialCropd with roi_size=task.input_size)."
        )
    return img


class PatchPretext(Randomizable, Transform):
    """Base of the array transforms that cut patches from one image and return them with a class target.

    ``__call__(img, randomize=True)`` checks that ``img`` is (C, *input_size), draws (:meth:`randomize`,
    skipped with ``randomize=False`` to reuse the last draw) and returns the tuple ``(pretext_input, label)``:
    the float32 patches of :meth:`pretext_input` and the class of :meth:`pretext_label` as an int64 0-d
    tensor. Subclasses set ``spatial_dims`` and ``input_size`` and implement ``randomize`` and the two methods.
    """

    spatial_dims: int
    input_size: tuple[int, ...]

    def pretext_input(self, image: torch.Tensor) -> torch.Tensor:
        """The network input for the last draw, from a checked (C, *input_size) float32 image."""
        raise NotImplementedError

    def pretext_label(self) -> int:
        """The class of the last draw."""
        raise NotImplementedError

    def __call__(self, img: Any, randomize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        image = as_image_tensor(img, self.spatial_dims, self.input_size, None, type(self).__name__)
        if randomize:
            self.randomize(None)
        return self.pretext_input(image), torch.tensor(self.pretext_label(), dtype=torch.int64)


class PatchPretextd(RandPretextd):
    """Base of the dictionary transforms that cut patches from one image and write a class target.

    ``__call__`` draws once (``randomize``, through the array form), turns every key's (C, *input_size) image
    into the pretext input with the array form ``self.array_transform`` (a :class:`PatchPretext`), and
    writes the class (int64 0-d tensor) under ``label_key`` when at least one key was present. Subclasses set
    ``array_transform`` and ``label_key`` in ``__init__``.
    """

    array_transform: PatchPretext
    label_key: str
    spatial_dims = array_property("spatial_dims")
    input_size = array_property("input_size")

    def pretext_input(self, image: torch.Tensor) -> torch.Tensor:
        """The array form's :meth:`PatchPretext.pretext_input` for the last draw."""
        return self.array_transform.pretext_input(image)

    def pretext_label(self) -> int:
        """The class of the last draw."""
        return self.array_transform.pretext_label()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize(None)
        label = None
        for key in self.key_iterator(d):
            image = as_image_tensor(d[key], self.spatial_dims, self.input_size, key, type(self).__name__)
            d[key], label = self.array_transform(image, randomize=False)
        if label is not None:
            d[self.label_key] = label
        return d
