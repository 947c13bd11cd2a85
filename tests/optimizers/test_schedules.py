"""Tests for the per-iteration linear warm-up + cosine learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch
from ignite.engine import Engine
from monai.handlers import LrScheduleHandler

from medssl3d.optimizers import LARS, warmup_cosine_factor, warmup_cosine_schedule

# (step, warmup_steps, total_steps, min_lr_ratio, start_ratio, expected factor)
FACTOR_CASES = [
    (0, 10, 110, 0.0, 0.0, 0.0),  # start of warm-up
    (5, 10, 110, 0.0, 0.0, 0.5),  # half-way through the warm-up
    (10, 10, 110, 0.0, 0.0, 1.0),  # end of warm-up
    (35, 10, 110, 0.0, 0.0, 0.5 + math.sqrt(2.0) / 4.0),  # a quarter into the cosine: (1 + cos(pi/4)) / 2
    (60, 10, 110, 0.0, 0.0, 0.5),  # mid-cosine
    (110, 10, 110, 0.0, 0.0, 0.0),  # last step
    (500, 10, 110, 0.0, 0.0, 0.0),  # held after the end
    (0, 10, 110, 0.1, 0.2, 0.2),  # start_ratio
    (5, 10, 110, 0.1, 0.2, 0.6),
    (60, 10, 110, 0.1, 0.2, 0.55),  # 0.1 + 0.9 * 0.5
    (110, 10, 110, 0.1, 0.2, 0.1),  # min_lr_ratio
    (0, 0, 4, 0.0, 0.0, 1.0),  # no warm-up: cosine from the first step
    (2, 0, 4, 0.0, 0.0, 0.5),
    (4, 4, 4, 0.0, 0.0, 1.0),  # warm-up only: then constant
]

ILL_CASES = [
    (dict(step=0, warmup_steps=0, total_steps=0), ValueError, "total_steps must be positive"),
    (dict(step=0, warmup_steps=0, total_steps=-3), ValueError, "total_steps must be positive"),
    (dict(step=0, warmup_steps=11, total_steps=10), ValueError, "warmup_steps must be in"),
    (dict(step=0, warmup_steps=-1, total_steps=10), ValueError, "warmup_steps must be in"),
    (dict(step=0, warmup_steps=1, total_steps=10, min_lr_ratio=1.5), ValueError, "min_lr_ratio"),
    (dict(step=0, warmup_steps=1, total_steps=10, start_ratio=-0.1), ValueError, "start_ratio"),
    (dict(step=-1, warmup_steps=1, total_steps=10), ValueError, "step must be >= 0"),
    (dict(step=0, warmup_steps=1.5, total_steps=10), TypeError, "integers"),
]


@pytest.mark.parametrize("step, warmup, total, min_ratio, start, expected", FACTOR_CASES)
def test_factor_values(step, warmup, total, min_ratio, start, expected):
    assert warmup_cosine_factor(step, warmup, total, min_ratio, start) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("kwargs, error, match", ILL_CASES)
def test_ill_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        warmup_cosine_factor(**kwargs)
    if kwargs["step"] >= 0:  # the scheduler validates at construction
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        with pytest.raises(error, match=match):
            warmup_cosine_schedule(opt, **{k: v for k, v in kwargs.items() if k != "step"})


def test_schedule_scales_every_group_and_resumes():
    w, b = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(2))
    opt = LARS([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=2.0)
    sched = warmup_cosine_schedule(opt, warmup_steps=2, total_steps=6, min_lr_ratio=0.1, start_ratio=0.5)
    seen = []
    for step in range(7):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
        if step == 3:
            saved = sched.state_dict()
    for step, (lr_w, lr_b) in enumerate(seen):
        f = warmup_cosine_factor(step, 2, 6, 0.1, 0.5)
        assert (lr_w, lr_b) == pytest.approx((2.0 * f, 0.5 * f))
    assert seen[0][0] == pytest.approx(1.0) and seen[2][0] == pytest.approx(2.0) and seen[6][0] == pytest.approx(0.2)
    # resume: a fresh scheduler loaded from step 4 continues with the same rates
    opt2 = LARS([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=2.0)
    sched2 = warmup_cosine_schedule(opt2, warmup_steps=2, total_steps=6, min_lr_ratio=0.1, start_ratio=0.5)
    sched2.load_state_dict(saved)
    assert sched2.get_last_lr() == pytest.approx(seen[4])


def test_lr_schedule_handler_per_iteration():
    """A tiny ignite run: MONAI's ``LrScheduleHandler(epoch_level=False)`` moves the rate every iteration."""
    base_lr, epochs, epoch_length, warmup = 0.8, 3, 4, 3
    total = epochs * epoch_length
    param = torch.nn.Parameter(torch.ones(3))
    opt = LARS([param], lr=base_lr)
    sched = warmup_cosine_schedule(opt, warmup_steps=warmup, total_steps=total, min_lr_ratio=0.05, start_ratio=0.1)
    used: list[float] = []

    def process(engine, batch):
        used.append(opt.param_groups[0]["lr"])  # the rate this iteration trains with
        opt.zero_grad()
        param.sum().backward()
        opt.step()

    engine = Engine(process)
    LrScheduleHandler(sched, print_lr=False, epoch_level=False).attach(engine)
    engine.run(range(epoch_length), max_epochs=epochs)
    expected = [base_lr * warmup_cosine_factor(i, warmup, total, 0.05, 0.1) for i in range(total)]
    assert used == pytest.approx(expected)
    assert used[0] == pytest.approx(0.08) and used[warmup] == pytest.approx(base_lr)
    assert len(set(used)) == total  # never stuck on a constant step
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 * base_lr)  # after the last step
