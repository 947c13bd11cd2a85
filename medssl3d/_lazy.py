"""Lazy public names for sub-packages (PEP 562), so importing a package does not import every module.

Kept free of torch and MONAI imports: ``medssl3d.data`` relies on it to stay importable without them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str], namespace: dict[str, Any]) -> tuple[Callable, Callable]:
    """Module-level ``__getattr__`` and ``__dir__`` for ``package`` that import ``exports[name]`` on first use.

    Args:
        package: the package's ``__name__``.
        exports: public name -> submodule (relative to ``package``) defining it.
        namespace: the package's ``globals()``; a loaded name is cached there.

    Example (in a package ``__init__``)::

        __getattr__, __dir__ = lazy_exports(__name__, {"UNet": "unet"}, globals())
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
