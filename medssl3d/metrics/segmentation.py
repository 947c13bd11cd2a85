"""Segmentation metrics: a per-class Dice summary and a handler that writes it to ``metrics.json``.

The foreground mean (classes ``1..C-1``) is the number to compare methods by; the all-classes mean
(background included) is also reported because it is what Taleb et al. 2020 ("3D Self-Supervised Methods
for Medical Imaging") plotted, and is kept under its own name so the two are never confused.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from medssl3d.utils.distributed import is_main_process
from medssl3d.utils.io import atomic_write_json

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["dice_summary", "SegmentationMetricsWriter"]

logger = logging.getLogger(__name__)


def _as_float_or_none(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _nanmean_or_none(values: np.ndarray) -> float | None:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else None


def dice_summary(
    dice_per_class: Sequence[float] | torch.Tensor | np.ndarray | float,
    class_names: Sequence[str],
) -> dict[str, Any]:
    """Summarise per-class Dice scores as a JSON-able dict.

    Args:
        dice_per_class: (C,) Dice of each class, background at index 0 (as computed by
            ``DiceMetric(include_background=True, reduction="mean_batch")``). NaN marks a class absent from
            every case; it becomes ``None`` and is left out of the means (note that MONAI's ``mean_batch``
            reports 0.0, not NaN, for such a class; :class:`SegmentationMetricsWriter` restores the NaN from the
            per-case values). A plain number counts as C = 1.
        class_names: C names, in class-index order (e.g. ``["background", "liver", "tumour"]``).

    Returns:
        ``{"dice_per_class": {name: value or None}, "mean_dice_foreground": nanmean over classes 1..C-1,
        "mean_dice_all_classes": nanmean over all C classes (includes background; what Taleb et al. 2020
        plotted), "num_classes": C}``. A mean over only NaN values (or an empty foreground) is ``None``.

    Raises:
        ValueError: if ``dice_per_class`` is not 1-D, if its length differs from ``len(class_names)``, or if a
            class name repeats.

    Example::

        dice_summary([0.98, 0.80, float("nan")], ["background", "liver", "tumour"])
        # {"dice_per_class": {"background": 0.98, "liver": 0.8, "tumour": None},
        #  "mean_dice_foreground": 0.8, "mean_dice_all_classes": 0.89, "num_classes": 3}
    """
    if isinstance(dice_per_class, torch.Tensor):
        values = dice_per_class.detach().cpu().to(torch.float64).numpy()
    else:
        values = np.asarray(dice_per_class, dtype=np.float64)
    if values.ndim == 0:
        values = values.reshape(1)
    if values.ndim != 1:
        raise ValueError(
            f"dice_per_class must be 1-D (one value per class), got shape {tuple(values.shape)}; compute it with "
            'DiceMetric/MeanDice(include_background=True, reduction="mean_batch").'
        )
    names = [str(n) for n in class_names]
    if len(names) != values.shape[0]:
        raise ValueError(
            f"dice_per_class has {values.shape[0]} values but class_names has {len(names)} names ({names}); "
            "give one name per class, background included at index 0."
        )
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be unique, got {names}.")
    return {
        "dice_per_class": {name: _as_float_or_none(v) for name, v in zip(names, values)},
        "mean_dice_foreground": _nanmean_or_none(values[1:]),
        "mean_dice_all_classes": _nanmean_or_none(values),
        "num_classes": int(values.shape[0]),
    }


_NOT_SCALAR = object()


def _json_scalar(value: Any) -> Any:
    """A JSON-able scalar for ``value`` (NaN becomes None), or ``_NOT_SCALAR``."""
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, (float, np.floating, np.integer)):
        return _as_float_or_none(value)
    if isinstance(value, np.ndarray) and value.size == 1:
        return _as_float_or_none(value.item())
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return _as_float_or_none(value.item())
    return _NOT_SCALAR


class SegmentationMetricsWriter:
    """Write a per-class Dice summary and the other scalar metrics of an evaluator to a JSON file.

    Attach to a MONAI ``SupervisedEvaluator`` (or any ignite ``Engine``) that has a per-class Dice metric,
    e.g. ``MeanDice(include_background=True, reduction="mean_batch")`` under ``metric_name``; that handler
    leaves a (C,) tensor in ``engine.state.metrics[metric_name]``, and the (N, C) per-case values in
    ``engine.state.metric_details[metric_name]``; a class that is NaN (empty ground truth) in every case gets
    0.0 from ``mean_batch`` but is written as ``null`` here and left out of the means. On ``Events.COMPLETED``
    the handler writes
    ``{**dice_summary(...), "metrics": {other scalar metrics, e.g. the key metric}, **extra}`` to
    ``output_path`` atomically (temporary file + ``os.replace``). NaN becomes ``null``. When
    ``torch.distributed`` is initialised only rank 0 writes (ignite metrics are already reduced over ranks).

    Args:
        output_path: the JSON file to write (parent folders are created), conventionally ``metrics.json``.
        class_names: one name per class, background first; its length must match the metric's. ``None``:
            ``class_0, class_1, ...``.
        metric_name: name of the per-class Dice metric in ``engine.state.metrics``.
        extra: JSON-able entries merged into the top level of the file (e.g. checkpoint path, number of cases).

    Raises:
        TypeError: if ``extra`` is not JSON-able (checked in ``__init__``).
        ValueError: when writing, if ``metric_name`` is not among the engine's metrics or its value has the
            wrong length (see :func:`dice_summary`).

    Example::

        evaluator = SupervisedEvaluator(..., additional_metrics={"dice_per_class": MeanDice(
            include_background=True, reduction="mean_batch", output_transform=from_engine(["pred", "label"]))})
        SegmentationMetricsWriter("out/metrics.json", ["background", "liver", "tumour"]).attach(evaluator)
    """

    def __init__(
        self,
        output_path: str | os.PathLike = "metrics.json",
        class_names: Sequence[str] | None = None,
        metric_name: str = "dice_per_class",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(class_names, str):
            raise TypeError(f"class_names must be a sequence of names, got the string {class_names!r}.")
        self.output_path = Path(output_path)
        self.class_names = None if class_names is None else [str(n) for n in class_names]
        self.metric_name = metric_name
        self.extra = dict(extra or {})
        try:
            json.dumps(self.extra, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"extra must be JSON-able (convert paths with str()), got {self.extra!r}: {e}") from e

    def attach(self, engine: Engine) -> None:
        """Register ``self`` on ``engine`` for ``Events.COMPLETED``."""
        from ignite.engine import Events

        if not engine.has_event_handler(self, Events.COMPLETED):
            engine.add_event_handler(Events.COMPLETED, self)

    def summary(self, metrics: Mapping[str, Any], details: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Build the JSON payload.

        Args:
            metrics: ``engine.state.metrics``-like mapping; ``metrics[metric_name]`` holds (C,) per-class Dice.
            details: ``engine.state.metric_details``-like mapping (MONAI metric handlers with
                ``save_details=True`` leave the (N, C) per-case values there). Used to mark classes that are
                NaN in every case as absent: MONAI's ``reduction="mean_batch"`` reports 0.0 for them, which would
                wrongly pull the means down.

        Returns:
            ``{**dice_summary(...), "metrics": {name: scalar for the other scalar metrics}, **extra}``.
        """
        if self.metric_name not in metrics:
            raise ValueError(
                f"metric {self.metric_name!r} not found in engine.state.metrics (available: {sorted(metrics)}); "
                'add MeanDice(include_background=True, reduction="mean_batch") under that name, or set metric_name.'
            )
        dice = metrics[self.metric_name]
        if isinstance(dice, Mapping):  # MeanDice(return_with_label=...) gives {label: value}
            dice = [float(v) for v in dice.values()]
        dice = torch.as_tensor(dice, dtype=torch.float64).cpu()
        if dice.ndim == 0:
            dice = dice.reshape(1)
        per_case = (details or {}).get(self.metric_name)
        if isinstance(per_case, torch.Tensor) and per_case.ndim == 2 and dice.ndim == 1:
            if per_case.shape[1] == dice.shape[0]:
                dice = dice.clone()
                dice[torch.isnan(per_case.double()).all(dim=0).cpu()] = float("nan")
        if self.class_names is None:
            class_names = [f"class_{i}" for i in range(dice.shape[0])]
        else:
            class_names = self.class_names
        payload = dice_summary(dice, class_names)
        others = {}
        for name, value in metrics.items():
            if name == self.metric_name:
                continue
            scalar = _json_scalar(value)
            if scalar is not _NOT_SCALAR:
                others[name] = scalar
        payload["metrics"] = others
        payload.update(self.extra)
        return payload

    def __call__(self, engine: Engine) -> None:
        """Write the summary of ``engine.state.metrics`` to ``output_path`` (rank 0 only)."""
        if not is_main_process():
            return
        payload = self.summary(engine.state.metrics, getattr(engine.state, "metric_details", None))
        atomic_write_json(payload, self.output_path, allow_nan=False)
        logger.info(
            f"wrote {self.output_path}: mean Dice foreground {payload['mean_dice_foreground']}, "
            f"all classes {payload['mean_dice_all_classes']}"
        )
