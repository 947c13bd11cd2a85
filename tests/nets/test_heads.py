"""Tests of medssl3d.nets.heads: block-list projection heads for SimCLR, SiCoVa/VICReg and triplet methods."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from medssl3d.nets import L2Normalize, ProjectionHead, sicova_expander, simclr_projection_head, triplet_projection


def _layout(head: ProjectionHead) -> list[tuple]:
    """(type name, in, out, bias) for Linear layers, (type name, features) for BatchNorm1d, type name otherwise."""
    out = []
    for m in head.layers:
        if isinstance(m, nn.Linear):
            out.append(("Linear", m.in_features, m.out_features, m.bias is not None))
        elif isinstance(m, nn.BatchNorm1d):
            out.append(("BatchNorm1d", m.num_features))
        else:
            out.append(type(m).__name__)
    return out


# (builder, kwargs, expected layout, output size)
LAYOUT_CASES = [
    (  # ResNet-18: 512 -> 512 -> 128, as in the healthcare SimCLR recipe
        simclr_projection_head,
        {"in_features": 512},
        [("Linear", 512, 512, False), ("BatchNorm1d", 512), "ReLU", ("Linear", 512, 128, True)],
        128,
    ),
    (  # ResNet-50: 2048 -> 2048 -> 128
        simclr_projection_head,
        {"in_features": 2048},
        [("Linear", 2048, 2048, False), ("BatchNorm1d", 2048), "ReLU", ("Linear", 2048, 128, True)],
        128,
    ),
    (
        simclr_projection_head,
        {"in_features": 16, "hidden": 8, "out": 4},
        [("Linear", 16, 8, False), ("BatchNorm1d", 8), "ReLU", ("Linear", 8, 4, True)],
        4,
    ),
    (  # VICReg / SiCoVa expander, 3 layers
        sicova_expander,
        {"in_features": 32, "dim": 64},
        [
            ("Linear", 32, 64, False),
            ("BatchNorm1d", 64),
            "ReLU",
            ("Linear", 64, 64, False),
            ("BatchNorm1d", 64),
            "ReLU",
            ("Linear", 64, 64, True),
        ],
        64,
    ),
    (sicova_expander, {"in_features": 32, "dim": 16, "layers": 1}, [("Linear", 32, 16, True)], 16),
    (triplet_projection, {"in_features": 32, "out": 8}, [("Linear", 32, 8, True), "L2Normalize"], 8),
]


@pytest.mark.parametrize("builder, kwargs, layout, out", LAYOUT_CASES)
def test_layer_structure_and_output_shape(builder, kwargs, layout, out):
    head = builder(**kwargs)
    assert _layout(head) == layout
    assert head.in_features == kwargs["in_features"] and head.out_features == out
    assert head(torch.randn(4, kwargs["in_features"])).shape == (4, out)


def test_expander_default_is_8192_wide():
    with torch.device("meta"):  # 150M parameters: shapes only, no memory
        head = sicova_expander(2048)
    widths = [m.out_features for m in head.layers if isinstance(m, nn.Linear)]
    assert widths == [8192, 8192, 8192] and head.layers[0].in_features == 2048


def test_triplet_projection_has_unit_rows():
    head = triplet_projection(16, out=8)
    z = head(torch.randn(5, 16) * 10)
    assert torch.allclose(z.norm(dim=1), torch.ones(5), atol=1e-5)
    assert torch.equal(L2Normalize()(torch.zeros(2, 3)), torch.zeros(2, 3))  # a zero row stays finite


def test_head_in_eval_mode_takes_a_single_sample():
    head = simclr_projection_head(8, out=4).eval()
    assert head(torch.randn(1, 8)).shape == (1, 4)


def test_custom_block_list():
    head = ProjectionHead([(6, 5, nn.LayerNorm(5), nn.GELU()), (5, 3, None, nn.Tanh())], normalize=True)
    expected = [("Linear", 6, 5, False), "LayerNorm", "GELU", ("Linear", 5, 3, True), "Tanh", "L2Normalize"]
    assert _layout(head) == expected
    assert head(torch.randn(2, 6)).shape == (2, 3)


ILL_CASES = [
    (lambda: ProjectionHead([]), ValueError, "at least one"),
    (lambda: ProjectionHead([(4, 3, None)]), ValueError, "block 0"),
    (lambda: ProjectionHead([(4, 3, None, None), (4, 2, None, None)]), ValueError, "chain"),
    (lambda: ProjectionHead([(0, 3, None, None)]), ValueError, "in_features"),
    (lambda: ProjectionHead([(4, 3, "batch", None)]), TypeError, "norm"),
    (lambda: simclr_projection_head(0), ValueError, "in_features"),
    (lambda: simclr_projection_head(8, hidden=-1), ValueError, "hidden"),
    (lambda: sicova_expander(8, layers=0), ValueError, "layers"),
    (lambda: sicova_expander(8, dim=2.5), ValueError, "dim"),
    (lambda: triplet_projection(8, out=True), ValueError, "out"),
]


@pytest.mark.parametrize("make, error, match", ILL_CASES)
def test_bad_arguments_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()
