"""Small shared helpers: atomic file writes and device selection."""

from __future__ import annotations

from medssl3d.utils.io import atomic_torch_save, atomic_write_json, load_weights, require_file
from medssl3d.utils.device import default_device

__all__ = ["atomic_write_json", "atomic_torch_save", "load_weights", "require_file", "default_device"]
