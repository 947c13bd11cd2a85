"""Tests for the LARS optimiser and the bias/norm parameter groups."""

from __future__ import annotations

import io
import math

import pytest
import torch

from medssl3d.optimizers import LARS, exclude_bias_and_norm_param_groups, warmup_cosine_schedule

ILL_CASES = [
    ({"lr": -0.1}, ValueError, "learning rate"),
    ({"lr": 0.1, "momentum": -0.5}, ValueError, "momentum"),
    ({"lr": 0.1, "momentum": 1.0}, ValueError, "momentum"),
    ({"lr": 0.1, "weight_decay": -1e-6}, ValueError, "weight_decay"),
    ({"lr": 0.1, "trust_coefficient": -0.001}, ValueError, "trust_coefficient"),
    ({"lr": 0.1, "eps": -1e-8}, ValueError, "eps"),
]


def _linear() -> torch.nn.Linear:
    """A weight matrix W = diag(3, 4) (norm 5) and a bias b = (1, -2)."""
    lin = torch.nn.Linear(2, 2).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
        lin.bias.copy_(torch.tensor([1.0, -2.0]))
    return lin


GRAD_W = torch.tensor([[0.3, 0.0], [0.0, 0.4]], dtype=torch.float64)
GRAD_B = torch.tensor([0.5, 0.5], dtype=torch.float64)


def _set_grads(lin: torch.nn.Linear) -> None:
    lin.weight.grad = GRAD_W.clone()
    lin.bias.grad = GRAD_B.clone()


def test_two_steps_match_hand_formula():
    lin = _linear()
    lr, m, wd, eta = 1.0, 0.9, 0.1, 0.01
    opt = LARS(lin.parameters(), lr=lr, momentum=m, weight_decay=wd, trust_coefficient=eta, eps=0.0)

    # step 1, weight: g + wd*W = diag(0.6, 0.8), norm 1; ratio = 0.01 * 5 / 1 = 0.05 -> update diag(0.03, 0.04)
    _set_grads(lin)
    opt.step()
    torch.testing.assert_close(lin.weight, torch.tensor([[2.97, 0.0], [0.0, 3.96]], dtype=torch.float64))
    # bias is excluded: plain SGD, no weight decay: b - g
    torch.testing.assert_close(lin.bias, torch.tensor([0.5, -2.5], dtype=torch.float64))

    # step 2, weight: W1 = 0.99 * W, g + wd*W1 = 0.995 * diag(0.6, 0.8), ratio = 0.01 * 4.95 / 0.995
    _set_grads(lin)
    opt.step()
    ratio = eta * 4.95 / 0.995
    buf = [m * 0.03 + 0.597 * ratio, m * 0.04 + 0.796 * ratio]
    expected_w = torch.tensor([[2.97 - lr * buf[0], 0.0], [0.0, 3.96 - lr * buf[1]]], dtype=torch.float64)
    torch.testing.assert_close(lin.weight, expected_w)
    # bias momentum buffer: 0.9 * 0.5 + 0.5 = 0.95
    torch.testing.assert_close(lin.bias, torch.tensor([-0.45, -3.45], dtype=torch.float64))


def _reference_lars(params, grads_per_step, lr, momentum, wd, eta, eps, excluded):
    """Slow reference: the LARS formula element by element on Python floats."""
    params = [p.flatten().tolist() for p in params]
    bufs = [None] * len(params)
    for grads in grads_per_step:
        for i, (p, g) in enumerate(zip(params, (g.flatten().tolist() for g in grads))):
            if not excluded[i]:
                g = [gj + wd * pj for gj, pj in zip(g, p)]
                pn, gn = math.sqrt(sum(v * v for v in p)), math.sqrt(sum(v * v for v in g))
                ratio = eta * pn / (gn + eps) if pn > 0 and gn > 0 else 1.0
                g = [gj * ratio for gj in g]
            bufs[i] = list(g) if bufs[i] is None else [momentum * b + gj for b, gj in zip(bufs[i], g)]
            params[i] = [pj - lr * bj for pj, bj in zip(p, bufs[i])]
    return params


def test_matches_reference_with_backward():
    torch.manual_seed(0)
    net = torch.nn.Linear(5, 3).double()
    start = [p.detach().clone() for p in net.parameters()]
    x, y = torch.randn(8, 5, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)
    kw = dict(lr=0.5, momentum=0.9, weight_decay=1e-2, trust_coefficient=0.02, eps=1e-8)
    opt = LARS(net.parameters(), **kw)
    grads = []
    for _ in range(3):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x), y)
        loss.backward()
        grads.append([p.grad.clone() for p in net.parameters()])
        opt.step()
    ref = _reference_lars(start, grads, kw["lr"], kw["momentum"], kw["weight_decay"], kw["trust_coefficient"],
                          kw["eps"], excluded=[False, True])
    for p, r in zip(net.parameters(), ref):
        torch.testing.assert_close(p.flatten(), torch.tensor(r, dtype=torch.float64))


@pytest.mark.parametrize("how", ["default_rule", "group_key"])
def test_excluded_params_are_sgd_momentum_without_decay(how):
    torch.manual_seed(1)
    a, b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    if how == "default_rule":  # only the 1-D bias is excluded by ndim
        lars = LARS([a.bias], lr=0.1, momentum=0.9, weight_decay=0.5)
        sgd = torch.optim.SGD([b.bias], lr=0.1, momentum=0.9)
    else:  # the 2-D weight too, through the group key
        lars = LARS([{"params": a.parameters(), "lars_exclude": True}], lr=0.1, momentum=0.9, weight_decay=0.5)
        sgd = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(6, 4)
    for _ in range(3):
        for net, opt in ((a, lars), (b, sgd)):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)


def test_group_key_false_adapts_bias_and_flag_off():
    for opt_kwargs, group_key in (({"exclude_bias_and_norm": False}, None), ({}, False)):
        lin = _linear()
        params = lin.parameters() if group_key is None else [{"params": lin.parameters(), "lars_exclude": group_key}]
        opt = LARS(params, lr=1.0, momentum=0.0, weight_decay=0.0, trust_coefficient=0.01, eps=0.0, **opt_kwargs)
        _set_grads(lin)
        opt.step()
        # ||b|| = sqrt(5), ||g|| = sqrt(0.5): ratio = 0.01 * sqrt(10) -> b - ratio * g
        ratio = 0.01 * math.sqrt(10.0)
        torch.testing.assert_close(lin.bias, torch.tensor([1.0 - 0.5 * ratio, -2.0 - 0.5 * ratio], dtype=torch.float64))


def test_zero_norms_give_trust_ratio_one():
    w = torch.nn.Parameter(torch.zeros(2, 2))
    v = torch.nn.Parameter(torch.ones(2, 2))
    opt = LARS([w, v], lr=0.1, momentum=0.0, weight_decay=0.0)
    w.grad, v.grad = torch.ones(2, 2), torch.zeros(2, 2)
    opt.step()
    torch.testing.assert_close(w, torch.full((2, 2), -0.1))  # ||p|| = 0: plain SGD step
    torch.testing.assert_close(v, torch.ones(2, 2))  # ||g|| = 0: no update, no NaN


def test_state_dict_round_trip():
    torch.manual_seed(2)
    x = torch.randn(6, 4)

    def run(net, opt, n):
        for _ in range(n):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()

    a = torch.nn.Linear(4, 3)
    opt_a = LARS(exclude_bias_and_norm_param_groups(a, 1e-3), lr=0.2, trust_coefficient=0.02)
    run(a, opt_a, 2)
    b = torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    opt_b = LARS(exclude_bias_and_norm_param_groups(b, 0.0), lr=0.0)
    buffer = io.BytesIO()  # through bytes, as a checkpoint: state_dict() holds references to live buffers
    torch.save(opt_a.state_dict(), buffer)
    buffer.seek(0)
    opt_b.load_state_dict(torch.load(buffer))
    assert [g["lars_exclude"] for g in opt_b.param_groups] == [False, True]
    assert opt_b.param_groups[0]["weight_decay"] == 1e-3 and opt_b.param_groups[0]["lr"] == 0.2
    torch.testing.assert_close(opt_b.state[b.weight]["momentum_buffer"], opt_a.state[a.weight]["momentum_buffer"])
    run(a, opt_a, 1)
    run(b, opt_b, 1)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)


def test_works_with_lambda_lr_and_warmup_cosine():
    lin = _linear()
    opt = LARS(lin.parameters(), lr=2.0, momentum=0.0, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5**step)
    for k in range(3):
        assert opt.param_groups[0]["lr"] == pytest.approx(2.0 * 0.5**k)
        before = lin.bias.detach().clone()
        _set_grads(lin)
        opt.step()
        sched.step()
        # the excluded bias moves by lr * g: the scheduled lr is the one used
        torch.testing.assert_close(before - lin.bias.detach(), 2.0 * 0.5**k * GRAD_B)
    sched2 = warmup_cosine_schedule(LARS(lin.parameters(), lr=1.0), warmup_steps=2, total_steps=4)
    lrs = []
    for _ in range(5):
        lrs.append(sched2.optimizer.param_groups[0]["lr"])
        sched2.optimizer.step()
        sched2.step()
    assert lrs == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0])


def test_closure_returns_loss():
    lin = torch.nn.Linear(2, 1)
    opt = LARS(lin.parameters(), lr=0.1)

    def closure():
        opt.zero_grad()
        loss = lin(torch.ones(1, 2)).sum()
        loss.backward()
        return loss

    assert isinstance(opt.step(closure), torch.Tensor)


@pytest.mark.parametrize("kwargs, error, match", ILL_CASES)
def test_ill_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        LARS(torch.nn.Linear(2, 2).parameters(), **kwargs)


def test_ill_param_groups():
    lin = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="param group 0: weight_decay"):
        LARS([{"params": lin.parameters(), "weight_decay": -1.0}], lr=0.1)
    with pytest.raises(TypeError, match="lars_exclude"):
        LARS([{"params": lin.parameters(), "lars_exclude": "yes"}], lr=0.1)
    opt = LARS([lin.weight], lr=0.1)
    with pytest.raises(ValueError, match="param group 1: learning rate"):
        opt.add_param_group({"params": [lin.bias], "lr": -1.0})


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 2, 3, bias=False)
        self.norm = torch.nn.BatchNorm3d(2)
        self.gn = torch.nn.GroupNorm(1, 2)
        self.head = torch.nn.Linear(2, 3)
        self.tied = self.head  # shared module: its parameters appear once
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, 2, 4))


def test_param_groups_split_bias_and_norm():
    net = _Net()
    net.conv.weight.requires_grad_(False)  # frozen parameters are still grouped
    groups = exclude_bias_and_norm_param_groups(net, weight_decay=1e-6)
    names = {id(p): n for n, p in net.named_parameters()}
    assert [names[id(p)] for p in groups[0]["params"]] == ["pos_embed", "conv.weight", "head.weight"]
    assert sorted(names[id(p)] for p in groups[1]["params"]) == [
        "gn.bias", "gn.weight", "head.bias", "norm.bias", "norm.weight"
    ]
    assert (groups[0]["weight_decay"], groups[0]["lars_exclude"]) == (1e-6, False)
    assert (groups[1]["weight_decay"], groups[1]["lars_exclude"]) == (0.0, True)
    skipped = exclude_bias_and_norm_param_groups(net, 1e-6, skip_names=("pos_embed",))
    assert len(skipped[0]["params"]) == 2 and len(skipped[1]["params"]) == 6
    # the groups also drive standard optimisers, which keep and ignore ``lars_exclude``
    torch.optim.AdamW(groups, lr=1e-3)
    with pytest.raises(ValueError, match="weight_decay"):
        exclude_bias_and_norm_param_groups(net, -1.0)
