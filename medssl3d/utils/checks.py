"""Argument checks shared by every module: integers, numbers, probabilities, flags, sizes, ``spatial_dims``.

Each check returns the value as a plain Python type and raises ``ValueError`` naming the argument, the
value received and what is allowed, so that a bad config entry fails in ``__init__``, before any training
(MONAI's networks and transforms validate the same way). ``bool`` is never accepted as a number:
``True`` is an ``int`` to Python but never what a user meant by ``hidden_size=True``.

Kept free of torch and MONAI imports, so that the data and reporting modules can use it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

__all__ = [
    "check_int",
    "check_positive_int",
    "check_non_negative_int",
    "check_number",
    "check_positive",
    "check_non_negative",
    "check_probability",
    "check_flag",
    "check_size",
    "check_spatial_dims",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _int_range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"an integer in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"an integer >= {minimum}"
    if maximum is not None:
        return f"an integer <= {maximum}"
    return "an integer"


def _checked_int(name: str, value: Any, minimum: int | None, maximum: int | None, what: str, hint: str) -> int:
    if not _is_int(value) or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {what}, got {value!r}{hint}.")
    return int(value)


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None, hint: str = "") -> int:
    """``value`` as an ``int`` within ``[minimum, maximum]`` (either bound optional).

    Args:
        name: the argument's name, for the message.
        value: any integer type (Python or NumPy), not ``bool``.
        minimum: smallest allowed value, or ``None``.
        maximum: largest allowed value, or ``None``.
        hint: appended to the message (e.g. ``"; the grid needs at least 2 cells"``).

    Raises:
        ValueError: not an integer, or out of range.

    Example:
        >>> check_int("levels", 4, minimum=1)
        4
    """
    return _checked_int(name, value, minimum, maximum, _int_range(minimum, maximum), hint)


def check_positive_int(name: str, value: Any, hint: str = "") -> int:
    """``value`` as an ``int`` >= 1 ("must be a positive integer" otherwise)."""
    return _checked_int(name, value, 1, None, "a positive integer", hint)


def check_non_negative_int(name: str, value: Any, hint: str = "") -> int:
    """``value`` as an ``int`` >= 0, e.g. a seed ("must be a non-negative integer" otherwise)."""
    return _checked_int(name, value, 0, None, "a non-negative integer", hint)


def _bound(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low == 0:
        return "a positive number" if low_open else "a non-negative number"
    if low is not None:
        return f"a number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a number {'<' if high_open else '<='} {high:g}"
    return "a finite number"


def check_number(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    open_min: bool = False,
    open_max: bool = False,
    hint: str = "",
) -> float:
    """``value`` as a finite ``float`` within the given bounds.

    Args:
        name: the argument's name, for the message.
        value: an int or float (Python or NumPy), not ``bool``, not NaN or infinite.
        minimum, maximum: bounds, or ``None`` for none.
        open_min, open_max: whether the bound itself is excluded.
        hint: appended to the message.

    Raises:
        ValueError: not a finite number, or out of range.

    Example:
        >>> check_number("temperature", 0.1, minimum=0, open_min=True)
        0.1
    """
    ok = _is_real(value)
    if ok and minimum is not None:
        ok = value > minimum if open_min else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if open_max else value <= maximum
    if not ok:
        raise ValueError(f"{name} must be {_bound(minimum, maximum, open_min, open_max)}, got {value!r}{hint}.")
    return float(value)


def check_positive(name: str, value: Any, hint: str = "") -> float:
    """``value`` as a ``float`` > 0 (a temperature, a margin, a clip limit)."""
    return check_number(name, value, minimum=0, open_min=True, hint=hint)


def check_non_negative(name: str, value: Any, hint: str = "") -> float:
    """``value`` as a ``float`` >= 0 (a loss weight, an epsilon)."""
    return check_number(name, value, minimum=0, hint=hint)


def check_probability(name: str, value: Any, include_one: bool = True) -> float:
    """``value`` as a ``float`` in [0, 1] (``include_one=False``: [0, 1), e.g. a dropout rate)."""
    if not _is_real(value) or not (0.0 <= value <= 1.0 if include_one else 0.0 <= value < 1.0):
        raise ValueError(f"{name} must be a probability in [0, {'1]' if include_one else '1)'}, got {value!r}.")
    return float(value)


def check_flag(name: str, value: Any) -> bool:
    """``value`` if it is exactly ``True`` or ``False`` (config strings go through ``utils.flags.as_flag``)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return value


def check_size(name: str, value: Any, spatial_dims: int | None = None, minimum: int = 1) -> tuple[int, ...]:
    """A size: one integer or a sequence of integers, each >= ``minimum``, as a tuple.

    Args:
        name: the argument's name, for the message.
        value: an int (repeated ``spatial_dims`` times) or a sequence of ints.
        spatial_dims: the number of sides required; ``None`` accepts any non-empty sequence (and a
            single int as a 1-tuple).
        minimum: smallest allowed side (0 for offsets, 1 for sizes).

    Raises:
        ValueError: not integers, a side below ``minimum``, or the wrong number of sides.

    Example:
        >>> check_size("patch_size", 32, spatial_dims=3)
        (32, 32, 32)
    """
    side = "positive ints" if minimum == 1 else f"ints >= {minimum}"
    if spatial_dims is None:
        message = f"{name} must be one or more {side}, got {value!r}."
    else:
        message = f"{name} must be {spatial_dims} {side} (or one for every side), got {value!r}."
    if _is_int(value):
        sides: tuple[Any, ...] = (value,) * (1 if spatial_dims is None else spatial_dims)
    elif (isinstance(value, Sequence) and not isinstance(value, (str, bytes))) or _is_array(value):
        sides = tuple(value)
    else:
        raise ValueError(message)
    if not sides or (spatial_dims is not None and len(sides) != spatial_dims):
        raise ValueError(message)
    if any(not _is_int(s) or s < minimum for s in sides):
        raise ValueError(message)
    return tuple(int(s) for s in sides)


def _is_array(value: Any) -> bool:
    """A NumPy array or tensor of one dimension (sizes read back from a saved config)."""
    shape = getattr(value, "shape", None)
    return shape is not None and len(shape) == 1 and hasattr(value, "tolist")


def check_spatial_dims(spatial_dims: Any) -> int:
    """``spatial_dims`` as an int; ``ValueError`` unless it is 2 or 3."""
    if isinstance(spatial_dims, bool) or not _is_int(spatial_dims) or spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    return int(spatial_dims)
