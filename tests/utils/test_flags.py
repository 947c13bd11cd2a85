"""Config switches given on the command line as strings."""

from __future__ import annotations

import pytest

from medssl3d.utils import as_flag

CASES = [(True, True), (False, False), (1, True), (0, False), ("True", True), ("false", False), (" YES ", True),
         ("off", False), ("", False), ("1", True)]


@pytest.mark.parametrize("value, expected", CASES)
def test_as_flag(value, expected):
    assert as_flag(value) is expected


@pytest.mark.parametrize("value", ["maybe", 2, None, 0.5, [True]])
def test_as_flag_rejects_other_values(value):
    with pytest.raises(ValueError, match="linear_probe must be true or false"):
        as_flag(value, "linear_probe")
