"""From an evaluation engine's output to NumPy: scores, class indices, probabilities, source names.

Every evaluation handler (the metric writers of :mod:`medssl3d.metrics.classification_writer`, the prediction
writer of :mod:`medssl3d.engines.predictions`) and the ignite metrics read MONAI engine outputs the same
way; these functions are that one way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = [
    "as_numpy",
    "batch_sources",
    "class_indices",
    "from_pred_label",
    "none_if_nan",
    "sigmoid_probabilities",
    "softmax_probabilities",
]


def as_numpy(value: Any, dtype: Any) -> np.ndarray:
    """``value`` (a tensor, a list of per-item tensors as MONAI's decollated output has, or array-like) as NumPy."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().astype(dtype)
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
        return torch.stack([torch.as_tensor(v).detach().cpu() for v in value]).numpy().astype(dtype)
    return np.asarray(value, dtype=dtype)


def class_indices(y_true: Any) -> np.ndarray:
    """(N,) integer labels from (N,), (N, 1) or one-hot (N, C) input."""
    arr = as_numpy(y_true, np.float64)
    if arr.ndim == 2 and arr.shape[1] > 1:
        arr = arr.argmax(axis=1)
    arr = arr.reshape(-1)
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise ValueError("labels must be integer class indices (or one-hot rows); got non-integer values.")
    return arr.astype(np.int64)


def none_if_nan(value: float | None) -> float | None:
    """``value`` as a float, or ``None`` when it is missing, NaN or infinite (strict JSON has no NaN)."""
    return None if value is None or not math.isfinite(float(value)) else float(value)


def from_pred_label(output: Any) -> tuple[Any, Any]:
    """``(pred, label)`` from a MONAI engine's output (MONAI's ``from_engine(["pred", "label"])``)."""
    from monai.handlers import from_engine

    return from_engine(["pred", "label"])(output)


def sigmoid_probabilities(scores: np.ndarray) -> np.ndarray:
    """Multi-label scores already in [0, 1] are kept; anything else (logits) goes through a sigmoid."""
    if scores.size and np.all(scores >= 0) and np.all(scores <= 1):
        return scores
    return 0.5 * (1.0 + np.tanh(0.5 * scores))  # the logistic function, without overflow


def softmax_probabilities(scores: np.ndarray) -> np.ndarray:
    """Rows that are already probabilities are kept; anything else (logits) goes through softmax."""
    if scores.size and np.all(scores >= 0) and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3):
        return scores
    shifted = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def batch_sources(batch: Any, key: str | None, n: int) -> list[str]:
    """Each item's source name in ``engine.state.batch`` (a decollated list or a collated dict); ``""`` if none."""
    sources: list[str] = []
    if key is not None and isinstance(batch, list):
        sources = [str(item.get(key, "")) if isinstance(item, Mapping) else "" for item in batch]
    elif key is not None and isinstance(batch, Mapping) and key in batch:
        sources = [str(s) for s in batch[key]]
    return sources if len(sources) == n else [""] * n
