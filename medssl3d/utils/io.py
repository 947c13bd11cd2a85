"""Atomic writes and safe checkpoint reads.

A crash (or ``kill -9``) while a file is being written must never leave a truncated checkpoint or JSON
behind: every writer here serialises into a temporary file in the destination directory and then
``os.replace``-s it over the target, which is atomic on POSIX file systems.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported lazily so that torch-free modules (splits, phantoms) can use these writers
    import torch

__all__ = ["atomic_write", "atomic_torch_save", "atomic_write_json", "load_weights", "require_file", "to_plain"]


def to_plain(value: Any) -> Any:
    """Tuples to lists and mapping keys to strings, recursively, so a config is JSON-able and loads back with
    ``torch.load(..., weights_only=True)``.

    Example:
        >>> to_plain({"act": ("prelu", {"init": 0.2})})
        {'act': ['prelu', {'init': 0.2}]}
    """
    if isinstance(value, (tuple, list)):
        return [to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    return value


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Call ``write(file_object)`` on a temporary file, then move it over ``path`` in one step.

    Args:
        path: destination; parent folders are created.
        write: callable receiving the open temporary file.
        mode: ``"wb"`` or ``"w"``.

    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # text is always UTF-8: the locale's encoding can be ASCII (C locale, or a library calling setlocale)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` that never leaves a half-written file at ``path``."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_json(obj: Any, path: str | os.PathLike, indent: int = 2, allow_nan: bool = True) -> Path:
    """Write ``obj`` as JSON atomically (trailing newline); ``allow_nan=False`` rejects NaN/inf."""

    def _write(f: Any) -> None:
        f.write(json.dumps(obj, indent=indent, default=_json_default, allow_nan=allow_nan) + "\n")

    return atomic_write(path, _write, mode="w")


def _json_default(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # tensors, numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serialisable: {value!r}")


def load_weights(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` and a clear error for a missing or foreign file.

    Args:
        path: a ``.pt`` file written by ``torch.save`` of tensors, numbers, strings, lists and dicts.
        map_location: passed to ``torch.load``.

    Returns:
        The loaded dictionary.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be read as a weights-only checkpoint, or is not a dictionary.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint not found: {path}; check the path (it must be a .pt file).")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle errors, truncated files, foreign formats
        raise ValueError(
            f"Cannot read checkpoint {path} with torch.load(weights_only=True): {e}. "
            "It must be a torch.save'd dictionary of tensors, numbers, strings, lists and dicts."
        ) from e
    if not isinstance(obj, dict):
        raise ValueError(f"Checkpoint {path} holds a {type(obj).__name__}, expected a dictionary.")
    return obj


def require_file(path: str | os.PathLike, hint: str = "") -> str:
    """Return ``path`` as a string if it is an existing file, else raise ``FileNotFoundError`` with ``hint``.

    Used in bundle configs so a missing checkpoint is reported before any data is loaded.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"Required file not found: {path}" + (f"; {hint}." if hint else "."))
    return os.fspath(path)
