"""Patch grids shared by the patch-based pretext tasks (jigsaw, relative patch location).

Both tasks lay a regular grid of cells over the image, cut one patch per chosen cell at a small random
offset inside it, and run one shared encoder over all patches of a batch at once. The cutting is a
single advanced-indexing gather with broadcast index grids (no Python loop over patches), in 2D and 3D.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.transforms import MapTransform, Randomizable

from medssl3d.nets.encoders import global_pool

__all__ = [
    "grid_cell_starts",
    "cut_patches",
    "as_image_tensor",
    "encode_patches",
    "count_correct",
]


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


def as_image_tensor(img: Any, spatial_dims: int, input_size: Sequence[int], key: str, task: str) -> torch.Tensor:
    """``data[key]`` as a float32 plain tensor (C, *input_size); ``ValueError`` that says what to do otherwise."""
    if hasattr(img, "as_tensor"):  # MetaTensor: drop the meta data, pretext inputs are plain tensors
        img = img.as_tensor()
    img = torch.as_tensor(img).to(torch.float32)
    expected = tuple(int(s) for s in input_size)
    if img.ndim != spatial_dims + 1 or tuple(img.shape[1:]) != expected:
        raise ValueError(
            f"{task}: data[{key!r}] must be channel-first (C, {', '.join(map(str, expected))}), the task's "
            f"input_size {expected}, but has shape {tuple(img.shape)}; crop/pad every image to task.input_size "
            "first (e.g. ResizeWithPadOrCropd or RandSpatialCropd with roi_size=task.input_size)."
        )
    return img


def encode_patches(encoder: nn.Module, x: torch.Tensor, n_patches: int, spatial_dims: int, who: str) -> torch.Tensor:
    """Run ``encoder`` once over all patches of a batch and pool them.

    Args:
        encoder: a medssl3d encoder (``forward_features``).
        x: (B, n_patches, C, *patch).
        n_patches: expected number of patches per sample.
        spatial_dims: 2 or 3.
        who: name of the network, for error messages.

    Returns:
        (B, n_patches, F) pooled features, ``F = encoder.out_channels``.
    """
    if x.ndim != spatial_dims + 3 or x.shape[1] != n_patches:
        axes = ", ".join(["B", str(n_patches), "C"] + [f"S{i}" for i in range(spatial_dims)])
        raise ValueError(
            f"{who} expects a batch of patches ({axes}) (batch, patches, channels, {spatial_dims} spatial axes), "
            f"got shape {tuple(x.shape)}; feed the output of the task's transform, batched."
        )
    b = x.shape[0]
    features = encoder.forward_features(x.reshape(b * n_patches, *x.shape[2:]))
    return global_pool(features).reshape(b, n_patches, -1)


def count_correct(output: torch.Tensor, target: torch.Tensor | None) -> tuple[int, int]:
    """(number of rows whose arg-max equals ``target``, number of rows) for logits (B, K) and labels (B,)."""
    if target is None:
        raise ValueError("this task has labels: correct(output, target) needs the target labels, got None.")
    target = torch.as_tensor(target).reshape(-1)
    if output.ndim != 2 or output.shape[0] != target.numel():
        raise ValueError(
            f"correct() expects logits (B, n_classes) and B labels, got output {tuple(output.shape)} and "
            f"target {tuple(target.shape)}."
        )
    right = (output.argmax(dim=1) == target.to(output.device)).sum()
    return int(right.item()), int(target.numel())


class PatchPretextd(Randomizable, MapTransform):
    """Base of the dictionary transforms that cut patches from one image and write a class target.

    ``__call__`` draws once (``randomize``), turns every key's (C, *input_size) image into the pretext
    input with :meth:`pretext_input`, and writes :meth:`pretext_label` under ``label_key``. Subclasses set
    ``spatial_dims``, ``input_size`` and ``label_key``, and implement ``randomize`` and the two methods.
    """

    spatial_dims: int
    input_size: tuple[int, ...]
    label_key: str

    def pretext_input(self, image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pretext_label(self) -> int:
        raise NotImplementedError

    def __call__(self, data):
        d = dict(data)
        self.randomize(None)
        done = False
        for key in self.key_iterator(d):
            image = as_image_tensor(d[key], self.spatial_dims, self.input_size, key, type(self).__name__)
            d[key] = self.pretext_input(image)
            done = True
        if done:
            d[self.label_key] = torch.tensor(self.pretext_label(), dtype=torch.int64)
        return d
