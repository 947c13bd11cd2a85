#!/usr/bin/env python
"""Train and evaluate the pancreas_ct_ssl bundle on a real Decathlon task; record Dice and time.

    python scripts/real_data_check.py ../shared/data/msd_task04_hippocampus --epochs 10

Runs `python -m monai.bundle run` (train.json, then train.json + evaluate.json) exactly as a user
would, then appends the result to the `real-data` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "pancreas_ct_ssl"


def bundle_run(configs: list[str], overrides: dict[str, str]) -> float:
    files = [str(BUNDLE / "configs" / c) for c in configs]
    config_arg = files[0] if len(files) == 1 else "[" + ",".join(f"'{f}'" for f in files) + "]"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", config_arg, "--bundle_root", str(BUNDLE)]
    cmd += ["--meta_file", str(BUNDLE / "configs" / "metadata.json"), "--logging_file", str(BUNDLE / "configs" / "logging.conf")]
    for k, v in overrides.items():
        # monai.bundle drops overrides that parse to None; the expression "$None" gets through
        cmd += [f"--{k}", "$None" if v in ("None", "null") else v]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset_dir", help="Decathlon task folder, e.g. ../shared/data/msd_task04_hippocampus")
    p.add_argument("--output_dir", default=str(ROOT / "runs" / "real_data_check"))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--label_fraction", type=float, default=1.0)
    p.add_argument("--patch_size", default="[32,48,32]", help="divisible by 16 (4 levels)")
    p.add_argument("--spacing", default="None", help="'None' keeps the native spacing (passed to the bundle as $None)")
    p.add_argument("--base_filters", type=int, default=16)
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--num_samples", type=int, default=1)
    p.add_argument("--learning_rate", type=float, default=0.003)
    p.add_argument("--val_interval", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--benchmarks", default=str(ROOT / "docs" / "benchmarks.md"), help="'' to skip writing")
    args = p.parse_args(argv)

    from medssl3d.reports import markdown_table, update_markdown_section

    out = Path(args.output_dir)
    common = {
        "output_dir": str(out),
        "patch_size": args.patch_size,
        "spacing": args.spacing,
        "base_filters": str(args.base_filters),
        "seed": str(args.seed),
    }
    train_s = bundle_run(
        ["train.json"],
        {
            **common,
            "dataset_dir": str(Path(args.dataset_dir).resolve()),
            "epochs": str(args.epochs),
            "label_fraction": str(args.label_fraction),
            "batch_size": str(args.batch_size),
            "num_samples": str(args.num_samples),
            "learning_rate": str(args.learning_rate),
            "val_interval": str(args.val_interval),
        },
    )
    eval_s = bundle_run(["train.json", "evaluate.json"], common)
    metrics = json.loads((out / "metrics.json").read_text())
    split = json.loads((out / "split.json").read_text())
    row = {
        "dataset": Path(args.dataset_dir).name,
        "epochs": args.epochs,
        "label fraction": args.label_fraction,
        "train/val/test cases": f"{len(split['train'])}/{len(split['validation'])}/{len(split['test'])}",
        **{f"Dice {k}": v for k, v in metrics["dice_per_class"].items() if k != "background"},
        "mean Dice fg": metrics["mean_dice_foreground"],
        "mean Dice all": metrics["mean_dice_all_classes"],
        "train s": round(train_s),
        "eval s": round(eval_s),
    }
    print(json.dumps(row, indent=2))
    if args.benchmarks:
        cmd = "python scripts/real_data_check.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        body = (
            f"Command: `{cmd}` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, no GPU). "
            "Dice on the fixed test split (20 % of the cases), from the best-validation checkpoint; "
            "times are wall-clock for the whole `monai.bundle run` process (including start-up and caching).\n\n"
            + markdown_table([row])
        )
        update_markdown_section(args.benchmarks, "real-data", body, title="Real data: 3D UNet fine-tuning on MSD Task04 Hippocampus")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
