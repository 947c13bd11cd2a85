"""Engine pieces for pretext-task pretraining: held-out pretext metrics and the ``encoder.pt`` writer.

The trainer and evaluator are MONAI's ``SupervisedTrainer``/``SupervisedEvaluator`` with
``decollate=False`` (task outputs are tuples or dicts of batched tensors); these metrics ask the task
itself how to judge an output (:meth:`medssl3d.tasks.PretextTask.correct`), so one evaluator serves
every task.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.exceptions import NotComputableError
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced, sync_all_reduce

from medssl3d.engines.distributed import unwrap_model
from medssl3d.utils.distributed import is_main_process
from medssl3d.nets.unet import save_encoder

__all__ = ["PretextAccuracy", "PretextLoss", "SaveEncoder"]

logger = logging.getLogger(__name__)


def _pred_target(output: Any) -> tuple[Any, Any]:
    if isinstance(output, Mapping):
        return output["pred"], output.get("label")
    pred, target = output
    return pred, target


def _batch_size(pred: Any, target: Any) -> int:
    if isinstance(target, torch.Tensor) and target.ndim > 0:
        return int(target.shape[0])
    value = pred
    while not isinstance(value, torch.Tensor):
        value = next(iter(value.values())) if isinstance(value, Mapping) else value[0]
    return int(value.shape[0])


class PretextAccuracy(Metric):
    """Fraction of held-out pretext decisions the network gets right, as judged by ``task.correct``.

    Classification tasks (jigsaw, rotation, RPL) count correct classes; exemplar counts triplets with
    d(anchor, positive) < d(anchor, negative); CPC counts predictions whose true latent scores highest.

    Args:
        task: a :class:`~medssl3d.tasks.PretextTask`.
        output_transform: engine output -> ``(pred, target)`` (or the engine's dict with ``pred``/``label``).
    """

    # MONAI engine outputs ({"pred", "label", ...}) are accepted without an output_transform
    required_output_keys = ("pred", "label")

    def __init__(self, task: Any, output_transform: Callable = lambda x: x, device: str | torch.device = "cpu"):
        self.task = task
        super().__init__(output_transform=output_transform, device=device)

    @reinit__is_reduced
    def reset(self) -> None:
        self._right = torch.tensor(0.0, device=self._device)
        self._judged = torch.tensor(0.0, device=self._device)

    @reinit__is_reduced
    def update(self, output: Any) -> None:
        pred, target = _pred_target(output)
        right, judged = self.task.correct(pred, target)
        self._right += float(right)
        self._judged += float(judged)

    @sync_all_reduce("_right", "_judged")
    def compute(self) -> float:
        """Right / judged; NaN (with a warning) when nothing was judged, e.g. a held-out set whose batches
        hold no two images of one class for the labelled triplet task, so pretraining carries on."""
        if self._judged.item() == 0:
            logger.warning("PretextAccuracy: no held-out output could be judged; reporting NaN.")
            return float("nan")
        return (self._right / self._judged).item()


class PretextLoss(Metric):
    """Mean pretext loss on held-out data, weighted by batch size.

    Args:
        loss_fn: the task's loss, ``loss_fn(pred, target) -> scalar``.
        output_transform: engine output -> ``(pred, target)``.
    """

    required_output_keys = ("pred", "label")

    def __init__(self, loss_fn: Callable, output_transform: Callable = lambda x: x, device: str | torch.device = "cpu"):
        self.loss_fn = loss_fn
        super().__init__(output_transform=output_transform, device=device)

    @reinit__is_reduced
    def reset(self) -> None:
        self._sum = torch.tensor(0.0, device=self._device)
        self._count = torch.tensor(0.0, device=self._device)

    @reinit__is_reduced
    def update(self, output: Any) -> None:
        pred, target = _pred_target(output)
        n = _batch_size(pred, target)
        with torch.no_grad():
            self._sum += float(self.loss_fn(pred, target)) * n
        self._count += n

    @sync_all_reduce("_sum", "_count")
    def compute(self) -> float:
        if self._count.item() == 0:
            raise NotComputableError("PretextLoss needs at least one output before compute().")
        return (self._sum / self._count).item()


class SaveEncoder:
    """Write ``encoder.pt`` (atomically) when pretraining completes: the encoder weights under ``"model"``,
    the task name, the task's settings (``"task_state"``, e.g. jigsaw's permutation set), the encoder's
    architecture, the training configuration, and the last held-out pretext metrics.

    Written only at ``Events.COMPLETED``, so an existing ``encoder.pt`` always means a finished run; an
    interrupted run resumes from its checkpoints instead.

    Args:
        network: the pretext network (its ``.encoder`` is saved; a DDP wrapper is looked through).
        task: the :class:`~medssl3d.tasks.PretextTask`.
        output_path: the file to write, conventionally ``<output_dir>/encoder.pt``.
        config: plain training settings to record.
        evaluator: optional held-out evaluator whose ``state.metrics`` are recorded.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        task: Any,
        output_path: str | os.PathLike,
        config: Mapping[str, Any] | None = None,
        evaluator: Engine | None = None,
    ) -> None:
        if not hasattr(unwrap_model(network), "encoder"):
            raise ValueError(f"{type(unwrap_model(network)).__name__} has no .encoder to save.")
        self.network = network
        self.task = task
        self.output_path = str(output_path)
        self.config = dict(config or {})
        self.evaluator = evaluator

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if not is_main_process():
            return
        metrics = {}
        if self.evaluator is not None:
            metrics = {k: float(v) for k, v in self.evaluator.state.metrics.items() if isinstance(v, (int, float))}
        path = save_encoder(
            unwrap_model(self.network).encoder,
            self.output_path,
            task=self.task.name,
            config=self.config,
            task_state=self.task.state(),
            epochs=int(engine.state.epoch),
            heldout_metrics=metrics,
        )
        logger.info(f"saved the {self.task.name} encoder to {path} (held-out: {metrics})")
