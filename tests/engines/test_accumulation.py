"""Gradient accumulation to a large effective batch with MONAI's ``SupervisedTrainer(accumulation_steps=k)``.

MONAI >= 1.5 accumulates in ``SupervisedTrainer._iteration`` (loss / k, optimiser step and zero_grad once
per k iterations, GradScaler under ``amp``, unscaled loss in the output), so medssl3d has no trainer
subclass for it. These tests pin the behaviour the pretraining recipes (256 x 8 = 2048) rely on,
together with LARS and the per-iteration warm-up + cosine schedule.
"""

from __future__ import annotations

import pytest
import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.handlers import LrScheduleHandler

from medssl3d.optimizers import LARS, exclude_bias_and_norm_param_groups, warmup_cosine_factor, warmup_cosine_schedule


def _data(n: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([[1.0], [2.0], [-1.0]]) + 0.5
    return [{"image": x[i], "label": y[i]} for i in range(n)]


def _sgd(net):
    return torch.optim.SGD(net.parameters(), lr=0.1)


def _lars(net):
    return LARS(exclude_bias_and_norm_param_groups(net, 1e-2), lr=0.5, momentum=0.9, trust_coefficient=0.05)


def _trainer(n, batch_size, k, make_opt, handlers=()):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    opt = make_opt(net)
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=torch.utils.data.DataLoader(_data(n), batch_size=batch_size, shuffle=False),
        network=net,
        optimizer=opt,
        loss_function=torch.nn.MSELoss(),
        accumulation_steps=k,
        train_handlers=[h(opt) for h in handlers],
        decollate=False,
    )
    return trainer, net, opt


@pytest.mark.parametrize("make_opt", [_sgd, _lars], ids=["sgd", "lars_momentum"])
def test_k_small_batches_equal_one_large_batch(make_opt):
    # 16 samples: 2 optimiser steps either way (8 iterations of 2 with k=4, or 2 iterations of 8)
    small, net_small, _ = _trainer(16, batch_size=2, k=4, make_opt=make_opt)
    large, net_large, _ = _trainer(16, batch_size=8, k=1, make_opt=make_opt)
    small.run()
    large.run()
    for p_small, p_large in zip(net_small.parameters(), net_large.parameters()):
        torch.testing.assert_close(p_small, p_large)


def test_steps_every_k_iterations_with_unscaled_loss():
    trainer, net, _ = _trainer(12, batch_size=2, k=3, make_opt=_sgd)
    changed, losses = [], []
    last = [net.weight.detach().clone()]

    @trainer.on(IterationEvents.MODEL_COMPLETED)
    def _record(engine):
        changed.append(not torch.equal(net.weight, last[0]))
        last[0] = net.weight.detach().clone()
        out = engine.state.output  # after backward and step; decollate=False keeps the batch dict
        losses.append((out["loss"].item(), torch.nn.functional.mse_loss(out["pred"], out["label"]).item()))

    trainer.run()
    assert changed == [False, False, True] * 2
    for reported, batch_mse in losses:
        assert reported == pytest.approx(batch_mse)  # the output holds the loss before the 1/k scaling


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before:UserWarning")
def test_schedule_counts_iterations_under_accumulation():
    """With ``LrScheduleHandler(epoch_level=False)`` the schedule advances every iteration; an
    optimiser step at iteration i (0-based) uses ``base_lr * factor(i)``. (PyTorch warns once that the
    scheduler stepped before the optimiser: true, and harmless, during the first accumulation window.)"""
    k, n, batch_size, base_lr = 2, 16, 2, 0.5
    total = n // batch_size
    handler = lambda opt: LrScheduleHandler(
        warmup_cosine_schedule(opt, warmup_steps=4, total_steps=total), print_lr=False, epoch_level=False
    )
    trainer, _, opt = _trainer(n, batch_size, k, make_opt=_lars, handlers=[handler])
    used = []

    @trainer.on(IterationEvents.BACKWARD_COMPLETED)
    def _record(engine):
        used.append(opt.param_groups[0]["lr"])

    trainer.run()
    step_iterations = [i for i in range(total) if (i + 1) % k == 0]
    assert [used[i] for i in step_iterations] == pytest.approx(
        [base_lr * warmup_cosine_factor(i, 4, total) for i in step_iterations]
    )
