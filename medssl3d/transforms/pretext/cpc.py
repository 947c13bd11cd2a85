"""The overlapping patch grid of contrastive predictive coding (CPC), 2D and 3D.

van den Oord, A., Li, Y., Vinyals, O. "Representation Learning with Contrastive Predictive Coding",
2018. https://arxiv.org/abs/1807.03748
Taleb, A. et al. "3D Self-Supervised Methods for Medical Imaging", NeurIPS 2020.
https://arxiv.org/abs/2006.03829 (3D CPC: a 4x4x4 grid of patches overlapping by half; 5x5 in 2D).

The image is cut into a deterministic grid of ``G_0 x G_1 (x G_2)`` patches of size ``patch_size`` at
stride ``patch_size / 2`` (50 % overlap); patch ``(g_0, g_1, g_2)`` starts at ``g * stride`` and is number
``(g_0 * G_1 + g_1) * G_2 + g_2`` (row-major), so the image must be exactly ``(G - 1) * stride + patch_size``
per side (the pipeline's random crop supplies the randomness). CPC has no class target: the transforms
return the patches only.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform
from monai.utils import convert_to_tensor

from medssl3d.transforms.pretext.base import array_property

__all__ = ["grid_patches", "CPCGrid", "CPCGridd"]


def grid_patches(image: torch.Tensor, patch_size: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """All patches of a regular grid, in row-major grid order, with ``Tensor.unfold`` (no loop over patches).

    Args:
        image: (C, *spatial).
        patch_size: patch side per spatial axis.
        stride: step between patch starts per spatial axis.

    Returns:
        (P, C, *patch_size) where ``P = prod((spatial - patch_size) // stride + 1)``; patch number
        ``(g_0 * G_1 + g_1) * G_2 + g_2`` starts at ``(g_0, g_1, g_2) * stride``.
    """
    dims = len(patch_size)
    x = image
    for axis, (p, s) in enumerate(zip(patch_size, stride)):
        x = x.unfold(axis + 1, p, s)  # (C, G_0, .., G_axis, rest.., p_0, .., p_axis)
    # x: (C, G_0, .., G_{d-1}, p_0, .., p_{d-1}) -> (G_0, .., G_{d-1}, C, p_0, ..)
    x = x.permute(*range(1, dims + 1), 0, *range(dims + 1, 2 * dims + 1))
    return x.reshape(-1, image.shape[0], *patch_size)


class CPCGrid(Transform):
    """Cut one (C, *input_size) image into the overlapping CPC grid (array form; deterministic).

    See the module docstring for the patch order and positions.

    Args:
        patch_size: patch side(s); each must be even (stride = patch / 2).
        grid_size: patches per side.

    ``__call__(img)`` takes a (C, *input_size) array/tensor/MetaTensor, ``input_size = (grid_size - 1) *
    patch_size / 2 + patch_size``, and returns one float32 tensor (prod(grid_size), C, *patch_size): the
    patches, with no label (CPC predicts patches, not a class).

    Raises:
        ValueError: (on call) if the image is not (C, *input_size).

    Example::

        grid = CPCGrid(patch_size=(16, 16), grid_size=(5, 5))  # input_size (48, 48)
        patches = grid(torch.rand(1, 48, 48))  # (25, 1, 16, 16)
    """

    def __init__(self, patch_size: Sequence[int], grid_size: Sequence[int]) -> None:
        self.patch_size = tuple(int(p) for p in patch_size)
        self.grid_size = tuple(int(g) for g in grid_size)
        self.stride = tuple(p // 2 for p in self.patch_size)
        self.input_size = tuple((g - 1) * s + p for g, s, p in zip(self.grid_size, self.stride, self.patch_size))

    def check_image(self, img: Any, what: str = "the image") -> torch.Tensor:
        """``img`` as a plain float32 tensor; ``ValueError`` naming ``what`` unless it is (C, *input_size)."""
        img = convert_to_tensor(img, dtype=torch.float32, track_meta=False)
        if img.ndim != len(self.input_size) + 1 or tuple(img.shape[1:]) != self.input_size:
            raise ValueError(
                f"{what} has shape {tuple(img.shape)} but the CPC grid needs (C, *{self.input_size}) "
                f"(grid {self.grid_size}, patch {self.patch_size}); crop/pad the image to the task's input_size."
            )
        return img

    def __call__(self, img: Any) -> torch.Tensor:
        return grid_patches(self.check_image(img), self.patch_size, self.stride).contiguous()


class CPCGridd(MapTransform):
    """Cut ``data[key]`` (C, *input_size) into the overlapping CPC grid: (prod(grid_size), C, *patch_size).

    Dictionary form of :class:`CPCGrid`. Deterministic (no random draws); see the module docstring for the
    patch order and positions.

    Args:
        keys: image key(s).
        patch_size: patch side(s); each must be even (stride = patch / 2).
        grid_size: patches per side.
        allow_missing_keys: don't raise if a key is missing.

    Raises:
        ValueError: (on call) if the image is not (C, *input_size).
    """

    patch_size = array_property("patch_size")
    grid_size = array_property("grid_size")
    stride = array_property("stride")
    input_size = array_property("input_size")

    def __init__(
        self,
        keys: KeysCollection,
        patch_size: Sequence[int],
        grid_size: Sequence[int],
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.array_transform = CPCGrid(patch_size, grid_size)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.array_transform(self.array_transform.check_image(d[key], repr(key)))
        return d
