#!/usr/bin/env python
"""Measure the data pipelines and training steps; write the tables into docs/benchmarks.md.

    python scripts/benchmark.py                       # every section (~10 min on 2 cores)
    python scripts/benchmark.py --section pretext     # pretext tasks only, 2D and 3D, default sizes
    python scripts/benchmark.py --section joint       # SimCLR, SiCoVa, labelled triplet pretraining
    python scripts/benchmark.py --quick               # smaller, for a smoke check

Each training case runs in a fresh process so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

ROOT = Path(__file__).resolve().parents[1]


def train_step_case(patch: int, batch: int, base_filters: int, levels: int, repeats: int, keep_freed: bool) -> dict:
    import torch
    from monai.losses import DiceCELoss

    from medssl3d.utils import keep_freed_memory

    keep_freed_memory(keep_freed)

    from medssl3d.nets import UNet
    from medssl3d.reports import time_steps
    from medssl3d.reports.benchmark import peak_rss_gb

    torch.manual_seed(0)
    net = UNet(spatial_dims=3, in_channels=1, out_channels=3, base_filters=base_filters, levels=levels)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loss_fn = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, batch=True)
    x = torch.randn(batch, 1, patch, patch, patch)
    y = torch.randint(0, 3, (batch, 1, patch, patch, patch)).float()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        opt.step()

    t = time_steps(step, repeats=repeats, warmup=2)
    return {
        "case": f"UNet 3D base {base_filters}, {levels} levels, batch {batch}, {patch}^3",
        "keep_freed_memory": keep_freed,
        "s/step (median)": t["median_s"],
        "min..max s": f"{t['min_s']:.2f}..{t['max_s']:.2f}",
        "CPU util": t["cpu_util"],
        "peak RSS GB": peak_rss_gb(),
        "params M": sum(p.numel() for p in net.parameters()) / 1e6,
    }


def data_pipeline_case(num_cases: int, shape: tuple[int, int, int], patch: int) -> dict:
    import torch
    from monai.data import CacheDataset, DataLoader

    from medssl3d.data import generate_phantom_dataset, load_decathlon
    from medssl3d.reports.benchmark import peak_rss_gb
    from medssl3d.transforms import segmentation_transforms

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder = generate_phantom_dataset(Path(tmp) / "phantoms", num_cases=num_cases, num_test=0, shape=shape)
        gen_s = time.perf_counter() - t0
        items = load_decathlon(folder)
        xform = segmentation_transforms("train", intensity="ct", patch_size=(patch,) * 3, num_samples=2)
        cpu0, t0 = time.process_time(), time.perf_counter()
        ds = CacheDataset(items, transform=xform, cache_rate=1.0, num_workers=0, progress=False)
        cache_wall = time.perf_counter() - t0
        cache_cpu = time.process_time() - cpu0
        loader = DataLoader(ds, batch_size=2, shuffle=True, num_workers=0)
        t0 = time.perf_counter()
        n = sum(b["image"].shape[0] for b in loader)
        epoch_s = time.perf_counter() - t0
    return {
        "case": f"{num_cases} phantom CT volumes {shape[0]}x{shape[1]}x{shape[2]}, crops {patch}^3 x2",
        "generate vol/s": num_cases / gen_s,
        "CacheDataset vol/s": num_cases / cache_wall,
        "cache CPU util": cache_cpu / cache_wall,
        "random crops samples/s": n / epoch_s,
        "peak RSS GB": peak_rss_gb(),
    }


def pretext_case(
    task_name: str,
    spatial_dims: int,
    batch: int,
    repeats: int,
    quick: bool,
    encoder_name: str | None = None,
    task_kwargs: dict | None = None,
    optimizer: str = "adamw",
    label: str = "",
    channels: int | None = None,
) -> dict:
    """One pretraining step of a task (default sizes unless ``task_kwargs``) and its transform throughput.

    ``encoder_name`` overrides the default encoder (the Taleb UNet in 3D, DenseNet-121 in 2D); ``optimizer``
    is the one the bundle config uses (``adamw``, ``lars`` with bias/norm exclusion, ``sgd``).
    """
    import numpy as np
    import torch

    from medssl3d.utils import keep_freed_memory

    keep_freed_memory(True)

    from medssl3d.reports import time_steps
    from medssl3d.reports.benchmark import peak_rss_gb
    from medssl3d.tasks import create_task

    torch.manual_seed(0)
    task = create_task(task_name, spatial_dims, **(task_kwargs or {}))
    encoder, channels = pretext_encoder(spatial_dims, quick, encoder_name, channels)
    net = task.network(encoder)
    loss_fn = task.loss()
    opt = pretext_optimizer(net, optimizer)
    xform = task.transform()
    if hasattr(xform, "set_random_state"):  # CPC's grid is deterministic
        xform.set_random_state(0)
    images = np.random.default_rng(0).random((batch, channels, *task.input_size), dtype=np.float32)

    def make_batch() -> tuple[torch.Tensor, torch.Tensor | None]:
        # the labelled triplet task reads a class label (4 classes here); the others ignore it
        items = [xform({"image": torch.as_tensor(img), "label": i % 4}) for i, img in enumerate(images)]
        x = torch.stack([torch.as_tensor(it["image"]) for it in items])
        y = torch.stack([torch.as_tensor(it["label"]) for it in items]) if task.has_label else None
        return x, y

    t_data = time_steps(make_batch, repeats=repeats, warmup=1)
    x, y = make_batch()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        opt.step()

    t = time_steps(step, repeats=repeats, warmup=2)
    return {
        "task": task_name + (f" ({label})" if label else ""),
        "dims": f"{spatial_dims}D",
        "encoder": encoder_name or type(encoder).__name__,
        "image size": "x".join(str(s) for s in task.input_size),
        "batch": batch,
        "network input per batch": "x".join(str(s) for s in x.shape),
        "s/step (median)": t["median_s"],
        "samples/s": batch / t["median_s"],
        "transform samples/s": batch / t_data["median_s"],
        "CPU util": t["cpu_util"],
        "peak RSS GB": peak_rss_gb(),
    }


def pretext_encoder(
    spatial_dims: int, quick: bool, encoder_name: str | None, channels: int | None
) -> tuple[torch.nn.Module, int]:
    """The encoder of :func:`pretext_case` and its input channels.

    3D: Taleb et al.'s UNet encoder (16 base filters, 4 levels; 8 with ``quick``) on 1 channel. 2D:
    ``encoder_name``, default DenseNet-121 (ResNet-18 with ``quick``), on ``channels`` (default 3, RGB fundus).
    """
    from medssl3d.nets import create_encoder

    if spatial_dims == 3:
        return create_encoder("unet", 3, 1, base_filters=8 if quick else 16, levels=4), 1
    channels = channels or 3
    return create_encoder(encoder_name or ("resnet18" if quick else "densenet121"), 2, channels), channels


def pretext_optimizer(net: torch.nn.Module, optimizer: str) -> torch.optim.Optimizer:
    """The optimiser a bundle config uses: ``lars`` (bias/norm excluded from weight decay), ``sgd`` or AdamW."""
    import torch

    from medssl3d.optimizers import LARS, exclude_bias_and_norm_param_groups

    if optimizer == "lars":
        return LARS(exclude_bias_and_norm_param_groups(net, 1e-4), lr=0.003)
    if optimizer == "sgd":
        return torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    return torch.optim.AdamW(net.parameters(), lr=1e-4)


def loss_case(name: str, batch: int, dim: int, method: str, repeats: int) -> dict:
    """Forward + backward time of one joint-embedding loss on random (batch, dim) embeddings."""
    import torch

    from medssl3d.losses import LabeledTripletLoss, NTXentLoss, VICRegLoss
    from medssl3d.reports import time_steps
    from medssl3d.reports.benchmark import peak_rss_gb

    torch.manual_seed(0)
    z1 = torch.randn(batch, dim, requires_grad=True)
    z2 = torch.randn(batch, dim, requires_grad=True)
    labels = torch.randint(0, 5, (batch,))
    if name == "NTXentLoss":
        fn = NTXentLoss(temperature=0.5)
        call = lambda: fn(z1, z2)  # noqa: E731
    elif name == "VICRegLoss (SiCoVa)":
        fn = VICRegLoss.sicova(cross_weight=1.0, method=method)
        call = lambda: fn(z1, z2)  # noqa: E731
    elif name == "LabeledTripletLoss":
        fn = LabeledTripletLoss(margin=1.0)
        call = lambda: fn(z1, labels)  # noqa: E731
    else:
        raise ValueError(name)

    def step() -> None:
        z1.grad = z2.grad = None
        call().backward()

    t = time_steps(step, repeats=repeats, warmup=1)
    return {
        "loss": name,
        "batch": batch,
        "dim": dim,
        "covariance path": method if name.startswith("VICReg") else "",
        "fwd+bwd s (median)": t["median_s"],
        "CPU util": t["cpu_util"],
        "peak RSS GB": peak_rss_gb(),
    }


def run_isolated(fn, *args) -> dict:
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(fn, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for checking the script works")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per training case (median reported)")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"), help="Markdown file to update")
    parser.add_argument(
        "--section",
        choices=("all", "foundation", "pretext", "losses", "joint"),
        default="all",
        help="what to measure",
    )
    args = parser.parse_args(argv)
    cmd = "python scripts/benchmark.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    if args.section in ("all", "losses"):
        losses_section(args, cmd)
    if args.section in ("all", "pretext"):
        pretext_section(args, cmd)
    if args.section in ("all", "joint"):
        joint_section(args, cmd)
    if args.section in ("all", "foundation"):
        foundation_section(args, cmd)
    return 0


def losses_section(args: argparse.Namespace, cmd: str) -> None:
    import torch

    from medssl3d.reports import markdown_table, update_markdown_section

    batch = 32 if args.quick else 256
    dims = (128, 512) if args.quick else (128, 2048, 8192)
    repeats = max(2, args.repeats)
    rows = []
    for dim in dims:
        rows.append(run_isolated(loss_case, "NTXentLoss", batch, dim, "auto", repeats))
        for method in ("direct", "gram"):  # side by side, same process settings
            rows.append(run_isolated(loss_case, "VICRegLoss (SiCoVa)", batch, dim, method, repeats))
        rows.append(run_isolated(loss_case, "LabeledTripletLoss", batch, dim, "auto", repeats))
    for row in rows:
        print(row)
    speedups = []
    for dim in dims:
        t = {r["covariance path"]: r["fwd+bwd s (median)"] for r in rows if r["dim"] == dim and r["covariance path"]}
        speedups.append(
            f"D = {dim}: direct {t['direct']:.3g} s, Gram {t['gram']:.3g} s, {t['direct'] / t['gram']:.1f}x"
        )
    body = (
        f"Command: `{cmd.strip()}` ({time.strftime('%Y-%m-%d')}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}).\n\n"
        f"Forward + backward of each loss on random float32 embeddings, batch {batch}; VICReg with the SiCoVa "
        "cross-correlation term switched on (`cross_weight=1`), once through the direct D x D covariance and "
        "cross-correlation matrices and once through the B x B Gram matrices (the `auto` default when B < D):\n\n"
        + markdown_table(rows)
        + "\nGram path against the direct one (VICReg + cross-correlation, forward + backward): "
        + "; ".join(speedups)
        + ".\n"
    )
    path = update_markdown_section(args.output, "benchmark-losses", body, title="Joint-embedding losses")
    print(f"wrote {path}")


def pretext_section(args: argparse.Namespace, cmd: str) -> None:
    import torch

    from medssl3d.reports import markdown_table, update_markdown_section

    tasks = ("jigsaw", "rotation", "rpl", "exemplar", "cpc")
    batches = {3: 2 if args.quick else 4, 2: 4 if args.quick else 16}
    rows = [
        run_isolated(
            pretext_case,
            name,
            dims,
            batches[dims],
            max(2, args.repeats // 2 if args.quick else args.repeats),
            args.quick,
        )
        for dims in (3, 2)
        for name in tasks
    ]
    for row in rows:
        print(row)
    body = (
        f"Command: `{cmd.strip()}` ({time.strftime('%Y-%m-%d')}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}).\n\n"
        "Each task at its default sizes (`create_task(name, spatial_dims)`): 3D on the Taleb UNet encoder "
        "(16 base filters, 4 levels), 2D on DenseNet-121 with RGB input. `s/step` is forward + backward + AdamW "
        "(median after 2 warm-ups; keep_freed_memory on); `samples/s` = images per second through the step; "
        "`transform samples/s` is the task's own dictionary transform alone (patch cutting, rotation, views), "
        "one image at a time as a DataLoader worker would run it:\n\n" + markdown_table(rows)
    )
    path = update_markdown_section(args.output, "benchmark-pretext", body, title="Pretext-task pretraining speed")
    print(f"wrote {path}")


# (label, task, spatial dims, encoder, task kwargs, optimiser, batch): the bundle configs' recipes at CPU sizes
JOINT_CASES = (
    ("fundus, 128 px", "simclr", 2, "resnet18", {"input_size": 128}, "adamw", 32),
    ("fundus, 128 px", "sicova", 2, "resnet50", {"input_size": 128}, "lars", 32),
    ("fundus, 128 px", "triplet", 2, "resnet50", {"input_size": 128}, "sgd", 32),
    ("chest study, 32 px", "simclr", 2, "resnet18", {"input_size": 32}, "adamw", 128),
    (
        "chest study, 32 px, 2048-d expander",
        "sicova",
        2,
        "resnet18",
        {"input_size": 32, "expander_dim": 2048},
        "lars",
        128,
    ),
    ("chest study, 32 px", "triplet", 2, "resnet18", {"input_size": 32}, "sgd", 128),
    ("pancreas, 64^3", "simclr", 3, None, {"input_size": 64}, "adamw", 4),
    ("pancreas, 64^3", "sicova", 3, None, {"input_size": 64}, "lars", 4),
)


def joint_section(args: argparse.Namespace, cmd: str) -> None:
    import torch

    from medssl3d.reports import markdown_table, update_markdown_section

    rows = []
    for label, task, dims, encoder, kwargs, opt, batch in JOINT_CASES:
        if args.quick:  # smoke check: tiny images and batches, ResNet-18
            kwargs = dict(
                kwargs, input_size=16 if dims == 3 else 32, **({"expander_dim": 256} if task == "sicova" else {})
            )
            encoder, batch = ("resnet18" if dims == 2 else None), min(batch, 8 if dims == 2 else 2)
        repeats = max(2, args.repeats // 2 if args.quick else args.repeats)
        channels = 1 if label.startswith("chest") else None  # grey-scale X-rays
        rows.append(
            run_isolated(pretext_case, task, dims, batch, repeats, args.quick, encoder, kwargs, opt, label, channels)
        )
    for row in rows:
        print(row)
    body = (
        f"Command: `{cmd.strip()}` ({time.strftime('%Y-%m-%d')}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}).\n\n"
        "One pretraining step of each joint-embedding method with its bundle recipe (encoder, head and "
        "optimiser: AdamW for SimCLR, LARS with bias/norm exclusion for SiCoVa, SGD for the labelled "
        "triplet) at CPU sizes: the fundus configs at 128 px (the bundles default to 224-256 px on a GPU), "
        "the settings of the PneumoniaMNIST study below, and the 3D UNet at 64^3. SiCoVa's expander is "
        "8192-d unless noted. All three encode two views per image (the triplet recipe's anchor-positive "
        "pairs), so `samples/s` counts images, each passed twice; `transform samples/s` is the view pipeline "
        "alone (crops, flips, rotation, intensity, blur; CLAHE and multi-stage jigsaw for SiCoVa and triplet), "
        "one image at a time:\n\n"
        + markdown_table(rows)
        + "\n\nAt 32 px the view pipeline (both views of an image, in the main process with the bundles' default "
        "`num_workers` 0) is the bottleneck: about 130 images/s against 320-400 for the network step, so the "
        "PneumoniaMNIST study spent most of its pretraining time making views. Where cores allow, `--num_workers` "
        "overlaps the two; on these 2 cores it would compete with the step for the same CPUs."
    )
    path = update_markdown_section(args.output, "benchmark-joint", body, title="Joint-embedding pretraining speed")
    print(f"wrote {path}")


def foundation_section(args: argparse.Namespace, cmd: str) -> None:
    from medssl3d.reports import markdown_table, update_markdown_section

    if args.quick:
        data_cases = [(4, (64, 64, 48), 32)]
        train_cases = [(32, 2, 8, 4)]
    else:
        data_cases = [(12, (128, 128, 96), 96)]
        train_cases = [(64, 2, 16, 4), (96, 2, 16, 4)]  # the bundle default is 96^3, batch 2, base 16
    data_rows = [run_isolated(data_pipeline_case, *c) for c in data_cases]
    # default glibc allocator vs keep_freed_memory, alternated so a noisy neighbour hits both alike
    train_rows = [run_isolated(train_step_case, *c, args.repeats, keep) for c in train_cases for keep in (False, True)]
    for row in data_rows + train_rows:
        print(row)

    import torch

    body = (
        f"Command: `{cmd.strip()}` ({time.strftime('%Y-%m-%d')}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}).\n\n"
        "Data pipeline (`segmentation_transforms('train')` of the pancreas bundle: RAS, spacing, HU window, "
        "foreground crop, pad, label-balanced crops):\n\n"
        + markdown_table(data_rows)
        + "\nTraining step (forward + backward + AdamW, Dice+CE loss), median of the timed repeats after 2 warm-ups; "
        "CPU util = process CPU time / wall time (about 2.0 on a quiet 2-core machine). `keep_freed_memory` "
        "(bundle key of the same name, on by default on CPU) stops glibc returning freed memory to the kernel "
        "after every step; each pair of rows ran back to back in fresh processes:\n\n" + markdown_table(train_rows)
    )
    path = update_markdown_section(
        args.output, "benchmark-foundation", body, title="Segmentation pipeline and 3D UNet step"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
