#!/usr/bin/env python
"""Data-efficiency study (Taleb et al. 2020, Figures 3-4): pretrain each method once, fine-tune it at several
label fractions with the same budget as training from scratch, and plot test scores against the fraction.

    python scripts/data_efficiency.py bundles/pancreas_ct_ssl DATA --study-dir runs/pancreas_study \\
        --methods scratch rotation jigsaw --fractions 5 10 25 50 100 --repeats 3 \\
        --pretrain-override epochs=100 --finetune-override epochs=100

Writes <study-dir>/results.csv (one row per method, fraction and repeat), results.md (mean ± std table)
and data_efficiency.png. Running the same command again continues an interrupted study; --dry-run prints
the plan (with what is already done) and launches nothing; --report-only redraws the table and the plot
from results.csv.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medssl3d.reports.data_efficiency import DataEfficiencyStudy


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle_dir", help="bundle folder, e.g. bundles/pancreas_ct_ssl")
    p.add_argument("dataset_dir", nargs="?", default=None, help="dataset folder (not needed with --report-only)")
    p.add_argument("--study-dir", required=True, help="output folder of the study (reused to resume)")
    p.add_argument(
        "--methods",
        nargs="+",
        default=["all"],
        help="'scratch' and/or pretext tasks; 'all' (default): every one the bundle has",
    )
    p.add_argument(
        "--fractions", nargs="+", type=float, default=None, help="label fractions in percent (default 5 10 25 50 100)"
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="runs per method and fraction, seeds 0..repeats-1 (default 3)"
    )
    p.add_argument(
        "--split-seed", type=int, default=0, help="seed of the fixed train/validation/test split (default 0)"
    )
    p.add_argument(
        "--metric",
        default="auto",
        help="headline metric of the table and plot; 'auto' picks mean_dice_foreground, qwk, ...",
    )
    p.add_argument("--spread", choices=["minmax", "std"], default="minmax", help="band around the mean in the plot")
    p.add_argument(
        "--pretrain-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="bundle key for every pretraining (JSON value), repeatable; METHOD:KEY=VALUE sets it for one "
        "method only (e.g. triplet:epochs=60)",
    )
    p.add_argument(
        "--pretrain-dir",
        default=None,
        help="folder of the pretrained encoders (default <study-dir>/pretrain); studies with the same bundle, "
        "data, split seed and pretraining overrides can share it (e.g. a linear-probe and a fine-tuning study)",
    )
    p.add_argument(
        "--finetune-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="bundle key for every fine-tuning and evaluation (JSON value), repeatable",
    )
    p.add_argument("--train-config", default="train.json", help="fine-tuning config in <bundle>/configs")
    p.add_argument(
        "--evaluate-config", default="evaluate.json", help="evaluation config merged over the fine-tuning one"
    )
    p.add_argument(
        "--python", default=sys.executable, help="Python executable running monai.bundle (default: this one)"
    )
    p.add_argument(
        "--equal-steps",
        action="store_true",
        help="scale fine-tuning epochs by 100/fraction (capped by --max-epoch-factor) so every fraction gets "
        "about as many steps as 100 %% labels; needs --finetune-override epochs=N",
    )
    p.add_argument("--max-epoch-factor", type=float, default=20.0, help="cap of the --equal-steps epoch multiplier")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    p.add_argument("--report-only", action="store_true", help="only rewrite results.md and the plot from results.csv")
    p.add_argument(
        "--benchmarks", default="", help="also put the table into this Markdown file (e.g. docs/benchmarks.md)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)

    from medssl3d.reports.study_report import write_report

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    bundle = Path(args.bundle_dir)
    if args.report_only:
        report = write_report(args.study_dir, metric=args.metric, spread=args.spread)
    else:
        if args.dataset_dir is None:
            p.error("dataset_dir is required (except with --report-only)")
        study = make_study(p, args, bundle)
        if args.dry_run:
            print(study.describe_plan(), end="")
            return 0
        report = study.run()
    print(report.markdown, end="")
    print(f"\nresults: {report.csv_path}\ntable:   {report.markdown_path}\nplot:    {report.plot_path}")
    if args.benchmarks:
        from medssl3d.reports import update_markdown_section

        body = (
            f"Study `{Path(args.study_dir).name}` of bundle `{bundle.name}` "
            f"(`python scripts/data_efficiency.py`, see {report.csv_path.name} for every run).\n\n" + report.markdown
        )
        update_markdown_section(
            args.benchmarks, f"data-efficiency-{bundle.name}", body, title=f"Data efficiency: {bundle.name}"
        )
    return 0


def make_study(p: argparse.ArgumentParser, args: argparse.Namespace, bundle: Path) -> DataEfficiencyStudy:
    """The :class:`~medssl3d.reports.data_efficiency.DataEfficiencyStudy` the arguments describe.

    A bad setting exits through ``p.error`` (usage and message, exit status 2).
    """
    from medssl3d.reports.bundle_runs import parse_override
    from medssl3d.reports.data_efficiency import DataEfficiencyStudy
    from medssl3d.reports.study_settings import DEFAULT_FRACTIONS, available_methods

    try:
        return DataEfficiencyStudy(
            bundle,
            args.dataset_dir,
            args.study_dir,
            methods=available_methods(bundle) if args.methods == ["all"] else args.methods,
            fractions=args.fractions or DEFAULT_FRACTIONS,
            repeats=args.repeats,
            split_seed=args.split_seed,
            metric=args.metric,
            spread=args.spread,
            pretrain_overrides=dict(parse_override(o) for o in args.pretrain_override),
            finetune_overrides=dict(parse_override(o) for o in args.finetune_override),
            python=args.python,
            train_config=args.train_config,
            evaluate_config=args.evaluate_config,
            progress=not args.no_progress,
            equal_steps=args.equal_steps,
            max_epoch_factor=args.max_epoch_factor,
            pretrain_root=args.pretrain_dir,
        )
    except ValueError as e:
        p.error(str(e))


if __name__ == "__main__":
    raise SystemExit(main())
