"""Small shared helpers: atomic file writes, device selection, allocator tuning, config switches, argument
checks (:mod:`medssl3d.utils.checks`) and the rank-0 test of distributed runs (:mod:`medssl3d.utils.distributed`,
imported on its own: this package stays free of torch imports)."""

from __future__ import annotations

from medssl3d.utils.io import atomic_torch_save, atomic_write_json, load_weights, require_file
from medssl3d.utils.device import default_device
from medssl3d.utils.flags import as_flag
from medssl3d.utils.memory import keep_freed_memory

__all__ = [
    "atomic_write_json",
    "atomic_torch_save",
    "load_weights",
    "require_file",
    "default_device",
    "keep_freed_memory",
    "as_flag",
]
