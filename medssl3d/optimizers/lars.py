"""LARS: layer-wise adaptive rate scaling for large-batch self-supervised pretraining."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import torch
from torch.optim import Optimizer

__all__ = ["LARS", "exclude_bias_and_norm_param_groups", "is_bias_or_norm"]

T = TypeVar("T")

#: normalisation layers whose affine parameters are never decayed nor trust-scaled.
_NORM_TYPES: tuple[type[torch.nn.Module], ...] = (
    torch.nn.modules.batchnorm._NormBase,  # BatchNorm*d, SyncBatchNorm, InstanceNorm*d
    torch.nn.GroupNorm,
    torch.nn.LayerNorm,
    torch.nn.LocalResponseNorm,
) + ((torch.nn.RMSNorm,) if hasattr(torch.nn, "RMSNorm") else ())


class LARS(Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling (LARS).

    You, Gitman and Ginsburg, "Large Batch Training of Convolutional Networks", 2017
    (https://arxiv.org/abs/1708.03888). Used with a linear warm-up and cosine decay for the
    large effective batches of contrastive / VICReg pretraining (SimCLR, BYOL, Barlow Twins, VICReg).

    For every parameter ``p`` with gradient ``g`` (one "layer" = one parameter tensor):

    - adapted parameters: ``g <- g + weight_decay * p``, then
      ``g <- g * trust_coefficient * ||p|| / (||g|| + eps)``; the ratio is 1 when ``||p||`` or ``||g||`` is 0;
    - excluded parameters (biases and normalisation weights by default): ``g`` unchanged, no weight decay;
    - then, for both: ``buf <- momentum * buf + g`` (``buf = g`` at the first step) and ``p <- p - lr * buf``.

    A parameter is excluded when its group's ``lars_exclude`` key is ``True``; when the key is
    ``None`` (the default) it is excluded if ``exclude_bias_and_norm`` is set and ``p.ndim <= 1``
    (biases and the affine weights of BatchNorm/GroupNorm/LayerNorm/InstanceNorm). Groups built by
    :func:`exclude_bias_and_norm_param_groups` set ``lars_exclude`` explicitly.

    Param groups keep the standard ``lr`` key, so ``torch.optim.lr_scheduler`` schedulers (e.g.
    :func:`medssl3d.optimizers.warmup_cosine_schedule`) and MONAI's ``LrScheduleHandler`` work.
    Every value of every group is validated, including groups added later with ``add_param_group``.

    Args:
        params: iterable of parameters or of dicts defining parameter groups (may hold ``lars_exclude``).
        lr: learning rate (the global rate that multiplies the layer-wise trust ratio), >= 0.
        momentum: momentum factor in ``[0, 1)``. Defaults to 0.9.
        weight_decay: L2 penalty added to the gradient of adapted parameters, >= 0. Defaults to 1e-6.
        trust_coefficient: LARS coefficient (eta in the paper), >= 0. Defaults to 0.001.
        eps: term added to the gradient norm in the trust ratio, >= 0. Defaults to 1e-8.
        exclude_bias_and_norm: exclude parameters with ``ndim <= 1`` from adaptation and weight decay
            in groups that do not set ``lars_exclude``. Defaults to ``True``.

    Raises:
        ValueError: when a learning rate, momentum, weight decay, trust coefficient or eps is out of range.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3), torch.nn.BatchNorm3d(4))
        >>> opt = LARS(exclude_bias_and_norm_param_groups(net, weight_decay=1e-6), lr=0.2 * 2048 / 256)
    """

    def __init__(
        self,
        params: Iterable,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 1e-6,
        trust_coefficient: float = 0.001,
        eps: float = 1e-8,
        exclude_bias_and_norm: bool = True,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            trust_coefficient=trust_coefficient,
            eps=eps,
            exclude_bias_and_norm=exclude_bias_and_norm,
            lars_exclude=None,
        )
        _check_group(defaults, where="LARS")
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group (see ``torch.optim.Optimizer.add_param_group``) after validating its values."""
        super().add_param_group(param_group)
        _check_group(self.param_groups[-1], where=f"LARS param group {len(self.param_groups) - 1}")

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("exclude_bias_and_norm", True)
            group.setdefault("lars_exclude", None)

    @staticmethod
    def _excluded(group: dict[str, Any], p: torch.Tensor) -> bool:
        flag = group["lars_exclude"]
        if flag is None:
            return bool(group["exclude_bias_and_norm"]) and p.ndim <= 1
        return bool(flag)

    @torch.no_grad()
    def step(self, closure: Callable[[], T] | None = None) -> T | None:  # type: ignore[override]
        """Perform a single optimisation step.

        Args:
            closure: a closure that re-evaluates the model and returns the loss. Defaults to ``None``.

        Returns:
            the closure's loss, or ``None``.

        Raises:
            RuntimeError: for sparse gradients.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            wd, eta, eps = group["weight_decay"], group["trust_coefficient"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("LARS does not support sparse gradients.")
                g = p.grad
                if not self._excluded(group, p):
                    if wd != 0:
                        g = g.add(p, alpha=wd)
                    p_norm = torch.linalg.vector_norm(p)
                    g_norm = torch.linalg.vector_norm(g)
                    # torch.where keeps this free of host-device synchronisation.
                    ratio = torch.where(
                        (p_norm > 0) & (g_norm > 0), eta * p_norm / (g_norm + eps), torch.ones_like(p_norm)
                    )
                    g = g * ratio
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = torch.clone(g).detach()
                    else:
                        buf.mul_(momentum).add_(g)
                    g = buf
                p.add_(g, alpha=-lr)
        return loss


def _check_group(group: dict[str, Any], where: str) -> None:
    """Raise ``ValueError`` naming the first out-of-range hyper-parameter of ``group``."""
    if not group["lr"] >= 0.0:
        raise ValueError(f"{where}: learning rate must be >= 0, got lr={group['lr']}.")
    if not 0.0 <= group["momentum"] < 1.0:
        raise ValueError(f"{where}: momentum must be in [0, 1), got momentum={group['momentum']}.")
    if not group["weight_decay"] >= 0.0:
        raise ValueError(f"{where}: weight_decay must be >= 0, got weight_decay={group['weight_decay']}.")
    if not group["trust_coefficient"] >= 0.0:
        raise ValueError(
            f"{where}: trust_coefficient must be >= 0, got trust_coefficient={group['trust_coefficient']}."
        )
    if not group["eps"] >= 0.0:
        raise ValueError(f"{where}: eps must be >= 0, got eps={group['eps']}.")
    if group["lars_exclude"] is not None and not isinstance(group["lars_exclude"], bool):
        raise TypeError(f"{where}: lars_exclude must be None or a bool, got {group['lars_exclude']!r}.")


def is_bias_or_norm(name: str, param: torch.Tensor, module: torch.nn.Module | None = None) -> bool:
    """Whether a parameter is a bias or a normalisation-layer parameter (kept out of decay and LARS).

    Args:
        name: the parameter's name (as in ``named_parameters``).
        param: the parameter.
        module: the module that owns it, if known.

    Returns:
        ``True`` for 0-/1-D parameters, names ending in ``bias`` and parameters of normalisation layers.
    """
    return param.ndim <= 1 or name.endswith("bias") or isinstance(module, _NORM_TYPES)


def exclude_bias_and_norm_param_groups(
    model: torch.nn.Module, weight_decay: float, skip_names: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Split a model's parameters into a decayed/adapted group and a bias-and-norm group.

    The usual SimCLR/BYOL/VICReg practice: biases and normalisation parameters get neither weight
    decay nor the LARS trust ratio. The groups also work with other optimisers (``SGD``, ``AdamW``):
    ``lars_exclude`` is an extra key that they keep and ignore. Frozen parameters
    (``requires_grad=False``) are included, so a later unfreeze (e.g. ``FreezeEncoder``) trains them.

    Args:
        model: the network (a DDP wrapper works: names get a ``module.`` prefix).
        weight_decay: weight decay of the first group, >= 0.
        skip_names: extra substrings of parameter names to put in the excluded group
            (e.g. ``("pos_embed", "cls_token")``).

    Returns:
        ``[{"params": [...], "weight_decay": weight_decay, "lars_exclude": False},
        {"params": [...], "weight_decay": 0.0, "lars_exclude": True}]``; an empty group is left out.

    Raises:
        ValueError: when ``weight_decay`` is negative.
    """
    if not weight_decay >= 0.0:
        raise ValueError(f"weight_decay must be >= 0, got weight_decay={weight_decay}.")
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for local_name, param in module.named_parameters(recurse=False):
            if id(param) in seen:  # shared parameters are optimised once
                continue
            seen.add(id(param))
            name = f"{module_name}.{local_name}" if module_name else local_name
            if is_bias_or_norm(name, param, module) or any(s in name for s in skip_names):
                no_decay.append(param)
            else:
                decay.append(param)
    groups = [
        {"params": decay, "weight_decay": float(weight_decay), "lars_exclude": False},
        {"params": no_decay, "weight_decay": 0.0, "lars_exclude": True},
    ]
    return [g for g in groups if g["params"]]
