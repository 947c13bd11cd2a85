"""The report of a data-efficiency study: ``results.md`` (the method x fraction table) and ``data_efficiency.png``.

Written by :meth:`medssl3d.reports.data_efficiency.DataEfficiencyStudy.run` when the study finishes, and by
:func:`write_report` from a study's ``results.csv`` (``scripts/data_efficiency.py --report-only``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medssl3d.reports.plots import plot_data_efficiency
from medssl3d.reports.results import RESULTS_CSV, read_results, resolve_metric, results_markdown
from medssl3d.utils.io import atomic_write

__all__ = ["RESULTS_MD", "PLOT_PNG", "StudyReport", "write_report"]

PathLike = str | os.PathLike

RESULTS_MD = "results.md"
PLOT_PNG = "data_efficiency.png"


@dataclass
class StudyReport:
    """Outputs of a study (or of :func:`write_report`).

    Attributes:
        rows: every row of ``results.csv`` (metric values as floats, NaN for a missing value).
        metric: the headline metric plotted and tabulated.
        markdown: the method x fraction table (mean ± std of ``metric``), also in ``results.md``.
        csv_path, markdown_path, plot_path: the files written.
    """

    rows: list[dict[str, Any]]
    metric: str
    markdown: str
    csv_path: Path
    markdown_path: Path
    plot_path: Path


def write_report(
    study_dir: PathLike, metric: str = "auto", spread: str = "minmax", rows: Sequence[Mapping[str, Any]] | None = None
) -> StudyReport:
    """Write ``results.md`` and ``data_efficiency.png`` of a study from its ``results.csv``.

    Args:
        study_dir: the study folder.
        metric: headline metric, or ``"auto"`` (see :func:`medssl3d.reports.results.resolve_metric`).
        spread: band of the plot, ``"minmax"`` or ``"std"``.
        rows: the rows, if already read (else ``results.csv`` is read).

    Returns:
        the :class:`StudyReport`; its ``markdown`` can go into ``docs/benchmarks.md`` with
        :func:`medssl3d.reports.update_markdown_section`.
    """
    study_dir = Path(os.fspath(study_dir))
    rows = list(read_results(study_dir) if rows is None else rows)
    metric = resolve_metric(rows, metric)
    markdown = results_markdown(rows, metric)
    md_path = study_dir / RESULTS_MD
    atomic_write(md_path, lambda f: f.write(markdown), mode="w")
    plot_path = plot_data_efficiency(rows, study_dir / PLOT_PNG, metric=metric, spread=spread)
    return StudyReport(rows, metric, markdown, study_dir / RESULTS_CSV, md_path, plot_path)
