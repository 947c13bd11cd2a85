#!/usr/bin/env python
"""Compare data-efficiency studies at one label fraction: a table (mean ± std, difference to scratch) and a PNG.

    python scripts/compare_studies.py --study "linear probe=runs/probe" --study "fine-tuning=runs/finetune" \\
        --metric roc_auc_ovr --plot runs/probe_vs_finetune.png \\
        --benchmarks docs/benchmarks.md --section je-pneumoniamnist --title "PneumoniaMNIST, 10 % labels"

Typical use: two studies of the same encoders (scripts/data_efficiency.py ... --pretrain-dir SHARED), one with
--finetune-override linear_probe=true and one without.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", action="append", required=True, metavar="LABEL=DIR", help="a study, repeatable")
    p.add_argument("--metric", default="auto", help="metric column (default: the study's headline metric)")
    p.add_argument("--fraction", type=float, default=None, help="label fraction in percent (default: smallest shared)")
    p.add_argument("--plot", default=None, help="PNG to write")
    p.add_argument("--title", default="", help="plot title and Markdown section title")
    p.add_argument("--benchmarks", default="", help="also put the table into this Markdown file")
    p.add_argument("--section", default="study-comparison", help="section name in --benchmarks")
    p.add_argument("--note", default="", help="text put before the table in --benchmarks (settings, caveats)")
    args = p.parse_args(argv)

    import os

    from medssl3d.reports import update_markdown_section
    from medssl3d.reports.comparison import compare_studies

    studies = {}
    for spec in args.study:
        label, sep, path = spec.partition("=")
        if not sep or not label.strip() or not path.strip():
            p.error(f"--study {spec!r} is not LABEL=DIR, e.g. --study 'linear probe=runs/probe'.")
        studies[label.strip()] = path.strip()
    try:
        result = compare_studies(
            studies, metric=args.metric, fraction=args.fraction, plot_path=args.plot, title=args.title
        )
    except (ValueError, FileNotFoundError) as e:
        p.error(str(e))
    print(result.markdown, end="")
    if result.plot_path:
        print(f"\nplot: {result.plot_path}")
    if args.benchmarks:
        body = (args.note.strip() + "\n\n" if args.note.strip() else "") + result.markdown
        if result.plot_path:
            link = os.path.relpath(result.plot_path, os.path.dirname(os.path.abspath(args.benchmarks)))
            body += f"\n![{args.title or args.section}]({Path(link).as_posix()})\n"
        update_markdown_section(args.benchmarks, args.section, body, title=args.title or args.section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
