"""Learning-rate schedules stepped once per iteration: linear warm-up then cosine decay."""

from __future__ import annotations

import functools
import math
import operator

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["warmup_cosine_factor", "warmup_cosine_schedule"]


def _check(warmup_steps: int, total_steps: int, min_lr_ratio: float, start_ratio: float) -> tuple[int, int]:
    try:
        warmup_steps, total_steps = operator.index(warmup_steps), operator.index(total_steps)
    except TypeError as e:
        raise TypeError(
            f"warmup_steps and total_steps must be integers, got {warmup_steps!r} and {total_steps!r}."
        ) from e
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got total_steps={total_steps}.")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(
            f"warmup_steps must be in [0, total_steps={total_steps}], got warmup_steps={warmup_steps}; "
            "count both in scheduler steps (iterations), e.g. warmup_epochs * epoch_length."
        )
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got min_lr_ratio={min_lr_ratio}.")
    if not 0.0 <= start_ratio <= 1.0:
        raise ValueError(f"start_ratio must be in [0, 1], got start_ratio={start_ratio}.")
    return warmup_steps, total_steps


def warmup_cosine_factor(
    step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0, start_ratio: float = 0.0
) -> float:
    """Multiplier of the base learning rate at ``step``: linear warm-up, then half a cosine.

    Goyal et al., "Accurate, Large Minibatch SGD" (2017) for the warm-up; Loshchilov and Hutter,
    "SGDR" (2017) for the cosine decay (without restarts).

    - ``0 <= step <= warmup_steps``: ``start_ratio + (1 - start_ratio) * step / warmup_steps``
      (``start_ratio`` at step 0, 1 at the end of the warm-up);
    - ``warmup_steps <= step <= total_steps``:
      ``min_lr_ratio + (1 - min_lr_ratio) * (1 + cos(pi * (step - warmup_steps) / (total_steps - warmup_steps))) / 2``
      (1 after the warm-up, ``min_lr_ratio`` at ``step == total_steps``);
    - ``step > total_steps``: held at ``min_lr_ratio`` (at 1 when ``warmup_steps == total_steps``,
      which gives a warm-up followed by a constant rate).

    ``step`` is the scheduler's step counter: iteration ``i`` (0-based) of a run trains with the
    factor at ``i``, so a run of ``total_steps`` iterations ends one step before the minimum.

    Args:
        step: scheduler step, >= 0.
        warmup_steps: length of the linear warm-up, in ``[0, total_steps]``.
        total_steps: step at which the cosine reaches ``min_lr_ratio``, > 0.
        min_lr_ratio: final factor, in ``[0, 1]``.
        start_ratio: factor at step 0, in ``[0, 1]``.

    Returns:
        the factor, in ``[min(start_ratio, min_lr_ratio), 1]``.

    Raises:
        ValueError: for a negative step or an out-of-range argument.
        TypeError: for non-integer step counts.

    Example:
        >>> warmup_cosine_factor(10, warmup_steps=10, total_steps=110)
        1.0
        >>> round(warmup_cosine_factor(60, warmup_steps=10, total_steps=110), 6)
        0.5
    """
    warmup_steps, total_steps = _check(warmup_steps, total_steps, min_lr_ratio, start_ratio)
    if step < 0:
        raise ValueError(f"step must be >= 0, got step={step}.")
    if step < warmup_steps:
        return start_ratio + (1.0 - start_ratio) * step / warmup_steps
    if warmup_steps == total_steps:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_schedule(
    optimizer: Optimizer,
    warmup_steps: int,
    total_steps: int,
    min_lr_ratio: float = 0.0,
    start_ratio: float = 0.0,
    last_epoch: int = -1,
) -> LambdaLR:
    """A ``LambdaLR`` that follows :func:`warmup_cosine_factor`, to be stepped once per iteration.

    Each param group's initial ``lr`` is its base rate (so groups with different rates keep their
    ratio). With MONAI engines attach ``monai.handlers.LrScheduleHandler(schedule, epoch_level=False)``;
    count ``warmup_steps`` and ``total_steps`` in iterations (``epochs * epoch_length``). With
    gradient accumulation (``SupervisedTrainer(accumulation_steps=k)``) the handler still steps every
    iteration: keep counting iterations, and each optimiser step uses the factor at its iteration.
    Resume with the scheduler's ``load_state_dict``: its step counter is restored, the schedule's
    arguments come from the (possibly changed) configuration.

    Args:
        optimizer: the optimiser whose param groups' ``lr`` is scheduled.
        warmup_steps: iterations of linear warm-up, in ``[0, total_steps]``.
        total_steps: iteration at which the rate reaches ``min_lr_ratio * base_lr``, > 0.
        min_lr_ratio: final rate as a fraction of the base rate, in ``[0, 1]``.
        start_ratio: rate at step 0 as a fraction of the base rate, in ``[0, 1]``.
        last_epoch: index of the last step when resuming without a state dict; -1 starts afresh.

    Returns:
        the scheduler; constructing it sets every group's ``lr`` to ``start_ratio * base_lr``.

    Raises:
        ValueError: for an out-of-range argument.

    Example:
        >>> opt = LARS(net.parameters(), lr=0.2 * 2048 / 256)
        >>> sched = warmup_cosine_schedule(opt, 10 * epoch_length, 100 * epoch_length)
        >>> handler = LrScheduleHandler(sched, epoch_level=False, print_lr=False)
    """
    _check(warmup_steps, total_steps, min_lr_ratio, start_ratio)
    factor = functools.partial(
        warmup_cosine_factor,
        warmup_steps=warmup_steps,
        total_steps=total_steps,
        min_lr_ratio=min_lr_ratio,
        start_ratio=start_ratio,
    )
    return LambdaLR(optimizer, lr_lambda=factor, last_epoch=last_epoch)
