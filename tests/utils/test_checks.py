"""The shared argument checks: what they accept, what they return, and the message of what they refuse."""

from __future__ import annotations

import numpy as np
import pytest

from medssl3d.utils.checks import (
    check_flag,
    check_int,
    check_non_negative,
    check_non_negative_int,
    check_number,
    check_positive,
    check_positive_int,
    check_probability,
    check_size,
    check_spatial_dims,
)

ACCEPTED = [
    (check_positive_int, ("levels", 4), 4),
    (check_positive_int, ("levels", np.int64(4)), 4),
    (check_non_negative_int, ("seed", 0), 0),
    (lambda *a: check_int(*a, minimum=-3, maximum=2), ("axis", -3), -3),
    (check_positive, ("temperature", 0.1), 0.1),
    (check_positive, ("temperature", np.float32(2.0)), 2.0),
    (check_non_negative, ("weight", 0), 0.0),
    (check_probability, ("p", 1), 1.0),
    (lambda *a: check_probability(*a, include_one=False), ("dropout", 0.0), 0.0),
    (lambda *a: check_number(*a, minimum=0, maximum=100, open_min=True), ("percent", 100), 100.0),
    (check_flag, ("clahe", False), False),
    (check_spatial_dims, (3,), 3),
]

REFUSED = [
    (check_positive_int, ("levels", 0), "levels must be a positive integer, got 0"),
    (check_positive_int, ("levels", True), "levels must be a positive integer, got True"),
    (check_positive_int, ("levels", 2.0), "levels must be a positive integer, got 2.0"),
    (check_positive_int, ("levels", "4"), "levels must be a positive integer, got '4'"),
    (check_non_negative_int, ("seed", -1), "seed must be a non-negative integer, got -1"),
    (lambda *a: check_int(*a, minimum=2), ("n_items", 1), r"n_items must be an integer >= 2, got 1"),
    (
        lambda *a: check_int(*a, 1, 3, hint=" (less than 4)"),
        ("steps", 4),
        r"steps must be an integer in \[1, 3\], got 4 \(less than 4\)\.",
    ),
    (check_positive, ("temperature", 0), "temperature must be a positive number, got 0"),
    (check_positive, ("temperature", float("inf")), "temperature must be a positive number"),
    (check_positive, ("temperature", float("nan")), "temperature must be a positive number"),
    (check_non_negative, ("weight", -0.5), "weight must be a non-negative number, got -0.5"),
    (check_non_negative, ("weight", False), "weight must be a non-negative number, got False"),
    (check_probability, ("threshold", 1.5), r"threshold must be a probability in \[0, 1\], got 1.5"),
    (
        lambda *a: check_probability(*a, include_one=False),
        ("dropout", 1.0),
        r"dropout must be a probability in \[0, 1\)",
    ),
    (
        lambda *a: check_number(*a, minimum=0, maximum=100, open_min=True),
        ("percent", 0),
        r"percent must be a number in \(0, 100\]",
    ),
    (check_flag, ("clahe", "yes"), "clahe must be True or False, got 'yes'"),
    (check_flag, ("clahe", 1), "clahe must be True or False, got 1"),
    (check_spatial_dims, (1,), "spatial_dims must be 2 or 3, got 1"),
    (check_spatial_dims, (True,), "spatial_dims must be 2 or 3, got True"),
    (check_spatial_dims, (3.0,), "spatial_dims must be 2 or 3, got 3.0"),
]


@pytest.mark.parametrize("check, args, expected", ACCEPTED)
def test_accepted_values_come_back_as_plain_python(check, args, expected):
    value = check(*args)
    assert value == expected
    assert type(value) is type(expected)  # NumPy scalars become int/float, so configs and JSON stay plain


@pytest.mark.parametrize("check, args, message", REFUSED)
def test_refused_values_name_the_argument_and_the_value(check, args, message):
    with pytest.raises(ValueError, match=message):
        check(*args)


SIZES = [
    (("patch_size", 32, 3), {}, (32, 32, 32)),
    (("patch_size", [32, 24, 40], 3), {}, (32, 24, 40)),
    (("patch_size", (16, 16), 2), {}, (16, 16)),
    (("grid_sizes", [1, 2, 3]), {}, (1, 2, 3)),
    (("grid_sizes", 4), {}, (4,)),
    (("jitter", 0, 2), {"minimum": 0}, (0, 0)),
    (("patch_size", np.array([8, 8]), 2), {}, (8, 8)),
]

ILL_SIZES = [
    (("patch_size", [32, 32], 3), {}, r"patch_size must be 3 positive ints \(or one for every side\), got \[32, 32\]"),
    (("patch_size", 0, 3), {}, "patch_size must be 3 positive ints"),
    (("patch_size", [8, True], 2), {}, "patch_size must be 2 positive ints"),
    (("patch_size", [8.0, 8.0], 2), {}, "patch_size must be 2 positive ints"),
    (("patch_size", "32", 2), {}, "patch_size must be 2 positive ints"),
    (("grid_sizes", []), {}, "grid_sizes must be one or more positive ints, got"),
    (("jitter", -1, 2), {"minimum": 0}, "jitter must be 2 ints >= 0"),
]


@pytest.mark.parametrize("args, kwargs, expected", SIZES)
def test_sizes(args, kwargs, expected):
    size = check_size(*args, **kwargs)
    assert size == expected
    assert all(type(s) is int for s in size)


@pytest.mark.parametrize("args, kwargs, message", ILL_SIZES)
def test_ill_sizes(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_size(*args, **kwargs)
