"""Ignite handlers: encoder warm-up freezing, stopping on a non-finite loss, loss logging and the training plan."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar
from monai.handlers import ValidationHandler as _MonaiValidationHandler
from monai.utils import CommonKeys

from medssl3d.engines.distributed import unwrap_model

__all__ = [
    "FreezeEncoder",
    "LossProgressBar",
    "NonFiniteLossError",
    "StopOnNonFiniteLoss",
    "every_n_iterations",
    "loss_value",
    "loss_terms",
    "LossTerms",
    "TrainingPlan",
    "ValidationHandler",
]

logger = logging.getLogger(__name__)


class FreezeEncoder:
    """Keep a sub-module frozen (``requires_grad=False``) for the first ``epochs`` epochs, then train it.

    Taleb et al. (2020) fine-tuned with the pretrained encoder frozen for a warm-up (25 of 400 epochs
    for pancreas segmentation) so the randomly initialised decoder cannot wreck the pretrained
    features with large early gradients. The state is derived from ``engine.state.epoch`` at every
    epoch start, so a resumed run freezes exactly when an uninterrupted run would.

    Frozen parameters get no gradient, so optimisers such as Adam skip them (no weight decay either).
    By default BatchNorm running statistics still follow the new data; with ``eval_mode`` the frozen
    sub-module also runs in eval mode (BatchNorm statistics and dropout fixed), so its features are exactly
    the pretrained ones: a linear probe on frozen features (freeze for every epoch). Under DDP wrap the model
    with ``find_unused_parameters=True`` while ``epochs > 0``.

    Args:
        network: the model (a DDP wrapper is looked through).
        epochs: number of epochs the sub-module stays frozen; 0 disables the handler.
        attr: dotted attribute path of the sub-module to freeze, default ``"encoder"``.
        enabled: switch, e.g. ``bool(pretrained_encoder)``: freezing a random encoder is rarely wanted.
        eval_mode: while frozen, keep the sub-module in eval mode (trainers call ``network.train()`` every
            iteration, so a forward pre-hook on the model switches the sub-module back before each forward pass).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        epochs: int,
        attr: str = "encoder",
        enabled: bool = True,
        eval_mode: bool = False,
    ) -> None:
        if int(epochs) < 0:
            raise ValueError(f"freeze epochs must be >= 0, got {epochs}.")
        self.root = unwrap_model(network)
        module: Any = self.root
        for part in attr.split("."):
            if not hasattr(module, part):
                raise ValueError(f"{type(unwrap_model(network)).__name__} has no sub-module {attr!r} to freeze.")
            module = getattr(module, part)
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"{attr!r} is a {type(module).__name__}, not a torch.nn.Module.")
        self.module = module
        self.epochs = int(epochs)
        self.attr = attr
        self.enabled = bool(enabled) and self.epochs > 0
        self.eval_mode = bool(eval_mode)
        self.frozen: bool | None = None
        self._hook: Any = None

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            engine.add_event_handler(Events.EPOCH_STARTED, self)
            engine.add_event_handler(Events.COMPLETED, lambda _: self.set_frozen(False))

    def set_frozen(self, frozen: bool) -> None:
        for p in self.module.parameters():
            p.requires_grad_(not frozen)
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if frozen and self.eval_mode:  # on the whole model: it may call the sub-module's other methods
            self._hook = self.root.register_forward_pre_hook(self._keep_eval)
        self.frozen = frozen

    def _keep_eval(self, root: torch.nn.Module, args: Any) -> None:
        """Forward pre-hook of the model: the frozen sub-module runs in eval mode, even inside a training step."""
        if self.module.training:
            self.module.train(False)

    def __call__(self, engine: Engine) -> None:
        frozen = engine.state.epoch <= self.epochs
        if frozen != self.frozen:
            self.set_frozen(frozen)
            logger.info("epoch %d: %s %s", engine.state.epoch, "froze" if frozen else "unfroze", self.attr)


class NonFiniteLossError(RuntimeError):
    """Raised when the training loss becomes NaN or infinite."""


class StopOnNonFiniteLoss:
    """Stop training at the first NaN/inf loss with an error naming the epoch and iteration.

    Unlike ignite's ``TerminateOnNan`` (which ends the run quietly), this raises, so a script or
    scheduler sees the failure. Checkpoints are written only at epoch ends, so the last good
    checkpoint is left untouched and ``resume`` (with a lower learning rate) restarts from it.

    Args:
        output_transform: maps ``engine.state.output`` to the loss; default reads MONAI's ``"loss"`` key.
    """

    def __init__(self, output_transform: Callable[[Any], Any] | None = None) -> None:
        self.output_transform = output_transform or _loss_from_output

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        loss = self.output_transform(engine.state.output)
        value = float(loss.detach().float().sum()) if isinstance(loss, torch.Tensor) else float(loss)
        if not math.isfinite(value):
            epoch_length = engine.state.epoch_length or 1
            it_in_epoch = (engine.state.iteration - 1) % epoch_length + 1
            msg = (
                f"training loss is {value} at epoch {engine.state.epoch}, iteration {it_in_epoch} "
                f"(global iteration {engine.state.iteration}); stopping. The last good checkpoint is kept: "
                "lower the learning rate, check the inputs for NaN, then rerun with resume=True."
            )
            logger.error(msg)
            raise NonFiniteLossError(msg)


class TrainingPlan:
    """Log, when training starts, how many optimiser steps the run will take and at what effective batch.

    Gradient accumulation hides how little a configuration may train: the SiCoVa recipe (batch 256,
    ``accumulation_steps`` 8) on a 540-image set with batch 64 does one optimiser step per epoch, so
    20 epochs move the weights 20 times. This handler says so before any time is spent: it logs
    ``epochs x iterations (batch B) -> N optimiser steps at effective batch B x k`` and warns when ``N``
    is below ``min_optimizer_steps`` (50 by default: the demo's jigsaw learns its task in 80 steps) or when
    the effective batch is larger than the training set.

    The count follows MONAI's ``SupervisedTrainer``: with ``accumulation_steps`` k and a known epoch
    length L it steps every k iterations and once more at the end of an epoch, ``ceil(L / k)`` steps
    per epoch.

    Args:
        min_optimizer_steps: warn below this many optimiser steps in the whole run.
        name: what is trained, for the messages (e.g. ``"pretraining"``).
    """

    def __init__(self, min_optimizer_steps: int = 50, name: str = "training") -> None:
        if min_optimizer_steps < 0:
            raise ValueError(f"min_optimizer_steps must be >= 0, got {min_optimizer_steps}.")
        self.min_optimizer_steps = int(min_optimizer_steps)
        self.name = name
        self.plan: dict[str, int | None] = {}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        state = engine.state
        epoch_length = state.epoch_length
        if epoch_length is None or state.max_epochs is None:  # an iterator of unknown length: nothing to count
            return
        accumulation = int(getattr(engine, "accumulation_steps", 1) or 1)
        loader = state.dataloader
        batch = getattr(loader, "batch_size", None)
        try:
            num_samples: int | None = len(loader.dataset)  # type: ignore[union-attr, arg-type]
        except (AttributeError, TypeError):
            num_samples = None
        steps = state.max_epochs * math.ceil(epoch_length / accumulation)
        effective = batch * accumulation if batch else None
        self.plan = {
            "epochs": state.max_epochs,
            "iterations_per_epoch": epoch_length,
            "accumulation_steps": accumulation,
            "optimizer_steps": steps,
            "batch_size": batch,
            "effective_batch_size": effective,
            "num_samples": num_samples,
        }
        batch_text = f" (batch {batch})" if batch else ""
        eff_text = f" at effective batch {effective}" if effective else ""
        data_text = f", {num_samples} training samples" if num_samples is not None else ""
        logger.info(
            f"{self.name}: {state.max_epochs} epochs x {epoch_length} iterations{batch_text}, accumulation "
            f"{accumulation} -> {steps} optimiser steps{eff_text}{data_text}"
        )
        advice = (
            f"lower accumulation_steps (now {accumulation}) or batch_size, or raise epochs"
            if accumulation > 1
            else "raise epochs or lower batch_size"
        )
        if steps < self.min_optimizer_steps:
            logger.warning(
                f"{self.name} will take only {steps} optimiser steps (fewer than {self.min_optimizer_steps}); "
                f"if that is not intended, {advice}."
            )
        if effective and num_samples is not None and effective > num_samples:
            logger.warning(
                f"{self.name}: the effective batch ({batch} x {accumulation} = {effective}) is larger than the "
                f"{num_samples} training samples; {advice}."
            )


def loss_value(output: Any) -> float:
    """The training loss of a MONAI engine output as a float: a dict, a decollated list of dicts, or a tensor.

    Use as ``output_transform`` of ``StatsHandler``/``TensorBoardStatsHandler`` for engines with
    ``decollate=False`` (where ``from_engine(["loss"], first=True)`` would give a tuple).
    """
    loss = _loss_from_output(output)
    return float(loss.detach().float().sum()) if isinstance(loss, torch.Tensor) else float(loss)


def loss_terms(loss: Any) -> dict[str, float]:
    """The parts of a loss's last value that the loss keeps for logging, as ``{name: float}``.

    Looks through ``loss`` and its sub-modules (a wrapper such as ``ViewPairLoss`` keeps the real loss as
    ``.loss``) for ``last_terms`` (``VICRegLoss``: invariance, variance, covariance, cross_correlation; the
    weighted total ``"loss"`` is left out) and ``last_fraction_active`` / ``last_num_valid``
    (``LabeledTripletLoss``). A loss that keeps none gives ``{}``.
    """
    modules = loss.modules() if isinstance(loss, torch.nn.Module) else [loss]
    terms: dict[str, float] = {}
    for module in modules:
        last = getattr(module, "last_terms", None)
        if isinstance(last, dict):
            terms.update({str(k): float(v) for k, v in last.items() if k != "loss"})
        if hasattr(module, "last_fraction_active"):
            terms["fraction_active_triplets"] = float(module.last_fraction_active)
            terms["valid_triplets"] = float(getattr(module, "last_num_valid", float("nan")))
    return terms


class LossTerms:
    """``output_transform`` for ``TensorBoardStatsHandler`` that logs the loss and its parts each iteration.

    Returns ``{tag: loss, f"{tag}/{part}": value, ...}`` with the parts of :func:`loss_terms`, so TensorBoard
    shows e.g. ``pretext_loss/variance`` next to ``pretext_loss`` (MONAI's handler writes every key of a
    returned dict as its own scalar). With gradient accumulation the parts are those of the last micro-batch.

    Args:
        loss: the loss module the trainer calls (the same object, so its ``last_*`` attributes are fresh).
        tag: name of the total loss.

    Example (bundle JSON): ``"output_transform": "$medssl3d.engines.LossTerms(@loss, 'pretext_loss')"``.
    """

    def __init__(self, loss: Any, tag: str = "loss") -> None:
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"tag must be a non-empty string, got {tag!r}.")
        self.loss, self.tag = loss, tag

    def __call__(self, output: Any) -> dict[str, float]:
        values = {self.tag: loss_value(output)}
        values.update({f"{self.tag}/{name}": value for name, value in loss_terms(self.loss).items()})
        return values


def _loss_from_output(output: Any) -> Any:
    if isinstance(output, list):  # MONAI decollates to a list of dicts; the loss is repeated in each
        output = output[0]
    if isinstance(output, dict):
        if CommonKeys.LOSS not in output:
            raise KeyError(f"engine output has no {CommonKeys.LOSS!r} key; pass output_transform.")
        return output[CommonKeys.LOSS]
    return output


class LossProgressBar(ProgressBar):
    """ignite's tqdm ``ProgressBar`` showing the running loss, attachable from a bundle config.

    A config's handler list calls ``attach(engine)`` only, so the loss extraction that ignite expects as
    an ``attach`` argument is given to the constructor here.

    Args:
        output_transform: maps ``engine.state.output`` to the value shown; default reads MONAI's ``"loss"``.
        tqdm_kwargs: passed to ``ProgressBar`` (e.g. ``persist``, ``ncols``).
    """

    def __init__(self, output_transform: Callable[[Any], Any] | None = None, **tqdm_kwargs: Any) -> None:
        super().__init__(**tqdm_kwargs)
        self._loss_transform = output_transform or (lambda out: {"loss": loss_value(out)})

    def attach(self, engine: Engine, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        kwargs.setdefault("output_transform", self._loss_transform)
        super().attach(engine, *args, **kwargs)


def every_n_iterations(n: int) -> Callable[[Engine, int], bool]:
    """Event filter for ``StatsHandler(iteration_log=...)``: log every ``n``-th iteration (and the first)."""
    if int(n) < 1:
        raise ValueError(f"log interval must be >= 1 iteration, got {n}.")
    n = int(n)
    return lambda engine, iteration: iteration == 1 or iteration % n == 0


class ValidationHandler(_MonaiValidationHandler):
    """MONAI's ``ValidationHandler`` for a training that may have nothing to validate on.

    - An empty validation list skips validation (logged once) instead of failing inside the evaluator.
      MONAI Label's ``BundleTrainTask`` passes one when ``val_split`` is 0, or when its datastore holds too
      few labelled images for a validation part.
    - With ``best_model_saver``, a training that completes without any validation having written a model
      (empty list, or ``interval`` above the number of epochs) has the saver write the final weights,
      marked ``"validated": False``, so ``model.pt`` exists after every completed training.

    Args:
        validator: the evaluator to run.
        interval: epochs (or iterations) between validations.
        epoch_level: ``interval`` counts epochs (True) or iterations (False).
        exec_at_start: also validate before the first epoch.
        best_model_saver: a :class:`~medssl3d.engines.BestModelSaver` attached to ``validator``.
    """

    def __init__(
        self,
        validator: Any,
        interval: int = 1,
        epoch_level: bool = True,
        exec_at_start: bool = False,
        best_model_saver: Any = None,
    ) -> None:
        super().__init__(interval=interval, validator=validator, epoch_level=epoch_level, exec_at_start=exec_at_start)
        self.best_model_saver = best_model_saver
        self._warned_empty = False

    def _has_cases(self) -> bool:
        loader = getattr(self.validator, "data_loader", None)
        try:
            return loader is None or len(loader) > 0
        except TypeError:  # an iterable without a length: let the evaluator run it
            return True

    def attach(self, engine: Engine) -> None:
        super().attach(engine)
        if self.best_model_saver is not None:
            engine.add_event_handler(Events.COMPLETED, self._save_if_never_validated)

    def __call__(self, engine: Engine) -> None:
        if self.validator is not None and not self._has_cases():
            if not self._warned_empty:
                logger.warning("the validation list is empty: training runs without validation")
                self._warned_empty = True
            return
        super().__call__(engine)

    def _save_if_never_validated(self, engine: Engine) -> None:
        if not self.best_model_saver.has_saved:
            self.best_model_saver.save_unvalidated(int(engine.state.epoch))
