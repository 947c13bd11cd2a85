"""The errors every dataset reader raises, in one module so that each reader imports them from here.

A reader collects every problem it finds and raises once, naming each file or value and how to fix it,
so that a bad dataset stops before training starts rather than hours into it.
"""

from __future__ import annotations

__all__ = ["DataValidationError", "DatasetNotFoundError"]


class DataValidationError(ValueError):
    """A dataset folder or datalist is unusable; the message lists every problem found and its fix."""


class DatasetNotFoundError(DataValidationError, FileNotFoundError):
    """A dataset folder or its ``dataset.json`` is missing (both a ``ValueError`` and a ``FileNotFoundError``)."""
