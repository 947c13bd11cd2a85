"""The two epoch-level bases: the ignite metric every classification metric derives from, and the handler
that collects a run's outputs to write them once at its end.

MONAI's evaluators decollate a batch into per-item dictionaries, so a metric receives lists of (C,) score
and () label tensors; :class:`StackedEpochMetric` stacks them once per batch, turns one-hot labels into
class indices (or keeps multi-hot rows for multi-label metrics) and leaves the epoch computation to the
function a subclass passes. :class:`EpochCollector` is the shape of the report writers
(:class:`~medssl3d.metrics.classification_writer.ClassificationMetricsWriter`,
:class:`~medssl3d.engines.predictions.ClassificationPredictionWriter`): reset when a run starts, collect
after every iteration, write when it completes.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from ignite.metrics import EpochMetric

from medssl3d.metrics.outputs import from_pred_label

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["StackedEpochMetric", "NO_UNROLLING", "EpochCollector"]

# ignite >= 0.5.1 can hand a metric a batch's lists in one call instead of one item at a time
NO_UNROLLING = (
    {"skip_unrolling": True} if "skip_unrolling" in inspect.signature(EpochMetric.__init__).parameters else {}
)


class StackedEpochMetric(EpochMetric):
    """``EpochMetric`` that also takes MONAI's decollated output: lists of per-item (C,) / () tensors.

    Subclasses pass ``skip_unrolling=True`` (where ignite has it) so a batch's lists are stacked here in
    one step instead of ignite feeding them one item at a time. With ``multi_hot`` (multi-label metrics) the
    labels stay (N, C) float rows instead of becoming class indices.
    """

    multi_hot = False

    def __init__(
        self,
        compute_fn: Callable[[torch.Tensor, torch.Tensor], float],
        output_transform: Callable[[Any], Any] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        """``compute_fn(y_pred, y)`` on the stacked epoch; the output transform defaults to ``pred``/``label``."""
        super().__init__(
            compute_fn,
            output_transform=output_transform or from_pred_label,
            check_compute_fn=False,
            device=device,
            **NO_UNROLLING,
        )

    def update(self, output: Sequence[Any]) -> None:
        y_pred, y = output
        if isinstance(y_pred, (list, tuple)):
            y_pred = torch.stack([torch.as_tensor(v) for v in y_pred])
        if isinstance(y, (list, tuple)):
            y = torch.stack([torch.as_tensor(v) for v in y])
        y = torch.as_tensor(y)
        if self.multi_hot:
            y_pred = torch.as_tensor(y_pred).float()
            super().update((y_pred.reshape(y_pred.shape[0], -1), y.float().reshape(y.shape[0], -1)))
            return
        if y.ndim == 2 and y.shape[1] > 1:  # one-hot labels
            y = y.argmax(dim=1)
        super().update((torch.as_tensor(y_pred).float(), y.reshape(-1).long()))


class EpochCollector(ABC):
    """An ignite handler that gathers something from every iteration of a run and acts once at its end.

    :meth:`attach` registers :meth:`reset` at ``Events.STARTED``, :meth:`collect` at
    ``Events.ITERATION_COMPLETED`` and the handler itself at ``Events.COMPLETED``; attaching twice registers
    nothing more, so a bundle may list the handler and still call ``attach``.
    """

    @abstractmethod
    def reset(self, engine: Engine | None = None) -> None:
        """Forget what earlier runs collected."""

    @abstractmethod
    def collect(self, engine: Engine) -> None:
        """Keep what this iteration produced (``engine.state.output``, ``engine.state.batch``)."""

    @abstractmethod
    def __call__(self, engine: Engine) -> None:
        """Act on everything collected, once the run has completed."""

    def attach(self, engine: Engine) -> None:
        """Register on ``engine``: reset at ``STARTED``, collect at ``ITERATION_COMPLETED``, act at ``COMPLETED``."""
        from ignite.engine import Events

        if not engine.has_event_handler(self, Events.COMPLETED):
            engine.add_event_handler(Events.STARTED, self.reset)
            engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)
            engine.add_event_handler(Events.COMPLETED, self)
