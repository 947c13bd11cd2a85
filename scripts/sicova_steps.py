#!/usr/bin/env python
"""How far SiCoVa gets in a few hundred steps: its loss terms and held-out view retrieval, per optimiser and views.

    python scripts/sicova_steps.py ../shared/data/pneumoniamnist/pneumoniamnist.npz --optimizer lars --steps 300
    python scripts/sicova_steps.py ../shared/data/pneumoniamnist/pneumoniamnist.npz --optimizer adamw \\
        --jigsaw-grid-sizes 1 --steps 150

Trains a ResNet-18 with SiCoVa's expander on the first ``--images`` training images of a MedMNIST ``.npz``
(resized to ``--size``), with a warm-up of 10 % of the steps then cosine, and every ``--every`` steps prints
the unweighted VICReg terms of the last batch and the top-1 retrieval of each held-out image's other view
among the ``2N - 1`` other views (``N`` = 128 validation images per batch; chance 1/255). LARS runs at the
VICReg rule ``0.2 x batch / 256``; AdamW at ``--adamw-lr``. A diagnostic for the budget notes in the bundles'
READMEs, not a training entry point (use the bundles' ``pretrain_sicova.json`` for that).
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("npz", help="MedMNIST archive with train_images and val_images, e.g. pneumoniamnist.npz")
    p.add_argument("--optimizer", choices=("lars", "adamw"), default="lars")
    p.add_argument("--adamw-lr", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--every", type=int, default=50, help="report interval in steps")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--images", type=int, default=2048, help="training images used (from the start)")
    p.add_argument("--size", type=int, default=32, help="image side after resizing")
    p.add_argument("--expander-dim", type=int, default=2048)
    p.add_argument("--jigsaw-grid-sizes", type=int, nargs="+", default=[4, 2, 1], help="'1' for no jigsaw")
    p.add_argument("--clahe", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.steps < 1 or args.every < 1 or args.batch_size < 2:
        p.error("--steps and --every must be >= 1 and --batch-size >= 2")

    import torch

    from medssl3d.nets import create_encoder
    from medssl3d.tasks import create_task

    torch.manual_seed(args.seed)
    train, held = load_images(p, args)
    task = create_task(
        "sicova", 2, input_size=args.size, expander_dim=args.expander_dim,
        jigsaw_grid_sizes=args.jigsaw_grid_sizes, clahe=args.clahe,
    )
    views = task.transform()
    views.set_random_state(args.seed)
    net = task.network(create_encoder("resnet18", 2, 1))
    loss_fn = task.loss()
    opt, schedule = make_optimizer(args, net)

    def two_views(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.as_tensor(views({"image": image})["image"]) for image in x])

    def retrieval() -> float:
        net.eval()
        right = judged = 0
        with torch.no_grad():
            for i in range(0, len(held), 128):
                r, n = task.correct(net(two_views(held[i : i + 128])))
                right, judged = right + r, judged + n
        net.train()
        return right / max(judged, 1)

    label = f"{args.optimizer} jigsaw={args.jigsaw_grid_sizes}"
    print(f"{label} step 0: retrieval {retrieval():.4f}", flush=True)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        batch = train[torch.randint(0, len(train), (args.batch_size,), generator=generator)]
        loss = loss_fn(net(two_views(batch)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        if step % args.every == 0 or step == args.steps:
            terms = {k: round(v, 4) for k, v in loss_fn.loss.last_terms.items()}
            elapsed = time.perf_counter() - start
            print(f"{label} step {step}: {terms} retrieval {retrieval():.4f} ({elapsed:.0f} s)", flush=True)
    return 0


def load_images(p: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """The training and held-out images of the archive as (N, 1, size, size) floats in [0, 1].

    A missing array or colour images exit through ``p.error``.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    with np.load(args.npz) as archive:
        if "train_images" not in archive or "val_images" not in archive:
            p.error(f"{args.npz} has no train_images/val_images arrays (a MedMNIST .npz is expected)")
        train_np, held_np = archive["train_images"][: args.images], archive["val_images"][:256]
    if train_np.ndim != 3:
        p.error(f"{args.npz}: expected grey-level (N, H, W) images, got shape {train_np.shape}")

    def prepare(a: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(a[:, None], dtype=torch.float32) / 255.0
        return F.interpolate(x, size=args.size, mode="bilinear", align_corners=False)

    return prepare(train_np), prepare(held_np)


def make_optimizer(args: argparse.Namespace, net: torch.nn.Module) -> tuple[torch.optim.Optimizer, Any]:
    """The optimiser (LARS at ``0.2 x batch / 256``, or AdamW) and its warm-up + cosine schedule."""
    import torch

    from medssl3d.optimizers import LARS, exclude_bias_and_norm_param_groups, warmup_cosine_schedule

    if args.optimizer == "lars":
        opt = LARS(exclude_bias_and_norm_param_groups(net, 1e-4), lr=0.2 * args.batch_size / 256)
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=args.adamw_lr, weight_decay=1e-4)
    return opt, warmup_cosine_schedule(opt, warmup_steps=args.steps // 10, total_steps=args.steps)


if __name__ == "__main__":
    raise SystemExit(main())
