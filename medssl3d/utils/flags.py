"""Command-line switches for bundle configs.

``python -m monai.bundle run ... --linear_probe True`` gives a bool, but ``--linear_probe false`` reaches
the config as the string ``"false"`` (Fire parses only Python literals), which is truthy. Configs read
such switches through :func:`as_flag`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["as_flag"]

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0", "")


def as_flag(value: Any, name: str = "flag") -> bool:
    """``value`` as a bool: bools and 0/1 as they are, strings ``true/yes/on/1`` and ``false/no/off/0/""``.

    Args:
        value: the config value.
        name: the key, for the error message.

    Raises:
        ValueError: any other value.

    Example:
        >>> as_flag("False"), as_flag(True), as_flag("yes")
        (False, True, True)
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"{name} must be true or false, got {value!r}.")
