"""Atomic checkpointing, resume after a crash, and best-model export for ignite/MONAI engines.

MONAI's ``CheckpointSaver`` writes with ``atomic=False`` (see its source), so a process killed while
saving can leave a truncated file behind. The handlers here write through
:func:`medssl3d.utils.io.atomic_torch_save` and read through MONAI's ``CheckpointLoader``
(``weights_only=True``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader

from medssl3d.engines.distributed import unwrap_model
from medssl3d.utils.distributed import is_main_process
from medssl3d.utils.io import atomic_torch_save

__all__ = ["CheckpointManager", "BestModelSaver", "latest_checkpoint"]

_CKPT_RE = re.compile(r"^checkpoint_epoch=(\d+)\.pt$")
logger = logging.getLogger(__name__)


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """Return the ``checkpoint_epoch=N.pt`` with the largest ``N`` in ``checkpoint_dir``, or ``None``."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CKPT_RE.match(p.name))]
    return max(found)[1] if found else None


def _state_dict(obj: Any) -> Any:
    if isinstance(obj, torch.nn.Module):
        return unwrap_model(obj).state_dict()
    return obj.state_dict()


class CheckpointManager:
    """Save the training state every ``save_interval`` epochs, and optionally resume from the latest one.

    Files are ``checkpoint_dir/checkpoint_epoch=N.pt`` holding ``{name: obj.state_dict()}`` for every
    object in ``save_dict`` (network, optimizer, scheduler, the trainer itself, ...). Only the newest
    ``n_saved`` are kept. A checkpoint is also written after the last epoch, so a finished run resumes
    to a no-op.

    With ``resume=True`` the newest checkpoint is loaded when the engine starts (through MONAI's
    ``CheckpointLoader``, ``weights_only=True``), restoring epoch and iteration: the run then ends
    at ``max_epochs`` exactly as an uninterrupted run would. Without a checkpoint, training starts
    from scratch and says so in the log.

    Args:
        checkpoint_dir: folder for the checkpoint files.
        save_dict: objects with ``state_dict``/``load_state_dict`` (network, optimizer, scheduler...).
            The engine this handler is attached to is added under ``"trainer"``, so epoch and
            iteration are restored too (bundle configs cannot name the trainer here without a cycle).
        save_interval: epochs between saves.
        n_saved: number of newest checkpoints kept.
        resume: load the newest checkpoint when the engine starts.
        map_location: device mapping for loading.
    """

    def __init__(
        self,
        checkpoint_dir: str | Path,
        save_dict: Mapping[str, Any],
        save_interval: int = 1,
        n_saved: int = 2,
        resume: bool = False,
        map_location: str | torch.device | None = "cpu",
    ) -> None:
        if int(save_interval) < 1:
            raise ValueError(f"save_interval must be >= 1 epoch, got {save_interval}.")
        if int(n_saved) < 1:
            raise ValueError(f"n_saved must be >= 1, got {n_saved}.")
        if not save_dict:
            raise ValueError("save_dict is empty: give the objects to checkpoint, e.g. {'model': net, 'trainer': trainer}.")
        self.checkpoint_dir = Path(checkpoint_dir)
        self.save_dict = dict(save_dict)
        self.save_interval = int(save_interval)
        self.n_saved = int(n_saved)
        self.resume = bool(resume)
        self.map_location = map_location

    def attach(self, engine: Engine) -> None:
        # the engine checkpoints itself (epoch, iteration) unless the caller already named it
        if not any(obj is engine for obj in self.save_dict.values()):
            self.save_dict.setdefault("trainer", engine)
        if self.resume:
            engine.add_event_handler(Events.STARTED, self.load_latest)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._maybe_save)

    def load_latest(self, engine: Engine) -> Path | None:
        """Load the newest checkpoint into ``save_dict``'s objects; return its path (``None`` if none)."""
        path = latest_checkpoint(self.checkpoint_dir)
        if path is None:
            logger.warning("resume requested but no checkpoint in %s: training starts from epoch 1.", self.checkpoint_dir)
            return None
        CheckpointLoader(load_path=str(path), load_dict=self.save_dict, map_location=self.map_location)(engine)
        logger.info("resumed from %s at epoch %d, iteration %d.", path, engine.state.epoch, engine.state.iteration)
        return path

    def _maybe_save(self, engine: Engine) -> None:
        epoch = engine.state.epoch
        if epoch % self.save_interval == 0 or epoch == engine.state.max_epochs:
            self.save(epoch)

    def save(self, epoch: int) -> Path | None:
        """Write ``checkpoint_epoch=<epoch>.pt`` (rank 0 only) and prune old ones."""
        if not is_main_process():
            return None
        path = self.checkpoint_dir / f"checkpoint_epoch={epoch}.pt"
        atomic_torch_save({k: _state_dict(v) for k, v in self.save_dict.items()}, path)
        found = sorted((int(m.group(1)), p) for p in self.checkpoint_dir.iterdir() if (m := _CKPT_RE.match(p.name)))
        for _, old in found[: -self.n_saved]:
            old.unlink(missing_ok=True)
        return path


class BestModelSaver:
    """Attach to an evaluator: write ``{"model": weights}`` whenever the key metric improves.

    The file layout (weights under ``"model"``) is what MONAI Label and ``inference.json`` load.
    ``state_dict``/``load_state_dict`` carry the best value, so include this object in the
    :class:`CheckpointManager` ``save_dict`` and a resumed run does not overwrite a better model.

    Args:
        path: output file, e.g. ``output_dir/model.pt``.
        network: the model (a DDP wrapper is unwrapped).
        metric_name: metric in ``engine.state.metrics``; default: the evaluator's key metric.
        mode: ``"max"`` (Dice, accuracy) or ``"min"`` (loss).
        extra: JSON-able values stored beside the weights (e.g. class names).
    """

    def __init__(
        self,
        path: str | Path,
        network: torch.nn.Module,
        metric_name: str | None = None,
        mode: str = "max",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}.")
        self.path = Path(path)
        self.network = network
        self.metric_name = metric_name
        self.mode = mode
        self.extra = dict(extra or {})
        self.best: float = -math.inf if mode == "max" else math.inf
        self.best_epoch: int = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        name = self.metric_name or getattr(engine.state, "key_metric_name", None)
        if name is None or name not in engine.state.metrics:
            raise KeyError(f"metric {name!r} not in evaluator metrics {sorted(engine.state.metrics)}; set metric_name.")
        value = float(engine.state.metrics[name])
        better = value > self.best if self.mode == "max" else value < self.best
        if not math.isfinite(value) or not better:
            return
        self.best = value
        self.best_epoch = int(engine.state.epoch)  # an evaluator run by ValidationHandler carries the trainer's epoch
        if is_main_process():
            payload = {
                "model": unwrap_model(self.network).state_dict(),
                "metric": {name: value},
                "validated": True,
                "epoch": self.best_epoch,
                **self.extra,
            }
            atomic_torch_save(payload, self.path)
            logger.info("saved %s (%s=%.4f)", self.path, name, value)

    @property
    def has_saved(self) -> bool:
        """Whether a validation has written (or, after a resume, had written) a model."""
        return math.isfinite(self.best)

    def save_unvalidated(self, epoch: int) -> None:
        """Write the current weights with ``"validated": False`` and no metric (training that never validated).

        Used by :class:`medssl3d.engines.ValidationHandler` when training ends without any validation
        (an empty validation list, or ``val_interval`` above the number of epochs), so that ``model.pt``
        exists after every completed training. Does not change :attr:`best`: a later validation still
        replaces the file.
        """
        if is_main_process():
            payload = {
                "model": unwrap_model(self.network).state_dict(),
                "metric": {},
                "validated": False,
                "epoch": int(epoch),
                **self.extra,
            }
            atomic_torch_save(payload, self.path)
            logger.warning(
                "no validation ran, so %s holds the weights after epoch %d (not chosen by a validation metric)",
                self.path,
                epoch,
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
