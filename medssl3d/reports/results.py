"""Results of a data-efficiency study: the rows of ``results.csv``, their statistics and their Markdown table.

One row per fine-tuned run: ``method``, ``fraction`` (label fraction in percent), ``repeat`` (the seed),
then every numeric entry of the run's ``metrics.json`` (:func:`read_metrics`). :func:`read_results` and
:func:`write_results` load and save the rows, :func:`resolve_metric` picks the headline metric,
:func:`summarise_results` gives its statistics over repeats and :func:`results_markdown` tabulates them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medssl3d.utils.io import atomic_write

__all__ = [
    "HEADLINE_METRICS",
    "KEY_COLUMNS",
    "RESULTS_CSV",
    "pct",
    "result_key",
    "flatten_metrics",
    "read_metrics",
    "write_results",
    "read_results",
    "resolve_metric",
    "summarise_results",
    "results_markdown",
]

PathLike = str | os.PathLike

HEADLINE_METRICS: tuple[str, ...] = (
    "mean_dice_foreground",
    "qwk",
    "quadratic_weighted_kappa",
    "auc",
    "accuracy",
    "mean_dice",
    "mean_dice_all_classes",
)
"""Preference order of ``metric="auto"``: the first of these found in ``metrics.json`` is plotted."""

KEY_COLUMNS: tuple[str, ...] = ("method", "fraction", "repeat")
"""The columns naming a run; every other column is a metric."""

RESULTS_CSV = "results.csv"

# bookkeeping numbers in metrics.json that are not scores
NOT_METRICS = frozenset({"num_classes", "label_fraction", "seed", "split_seed", "fold", "n_folds", "epoch"})


def pct(fraction: float) -> str:
    """How a label fraction appears in folder names, tables and ``results.csv``.

    Example:
        >>> pct(5.0), pct(2.5)
        ('5', '2.5')
    """
    return f"{fraction:g}"


def result_key(method: str, fraction: float, repeat: int) -> tuple[str, str, int]:
    """The identity of a run, the same for ``10``, ``10.0`` and a ``fraction`` read back from ``results.csv``."""
    return method, pct(fraction), int(repeat)


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric entries of a ``metrics.json``, nested dictionaries flattened with ``.``.

    Booleans, strings, lists and bookkeeping numbers (``num_classes``, ``label_fraction``, seeds) are left out;
    ``None`` (e.g. the Dice of a class absent from every test case) becomes NaN.

    Args:
        metrics: the loaded ``metrics.json``.
        prefix: prepended to every key (used for the recursion).

    Returns:
        ``{name: value}`` in file order, e.g. ``{"mean_dice_foreground": 0.71, "dice_per_class.pancreas": 0.8}``.

    Example:
        >>> flatten_metrics({"qwk": 0.8, "dice_per_class": {"a": 0.5, "b": None}, "num_classes": 2, "split": "test"})
        {'qwk': 0.8, 'dice_per_class.a': 0.5, 'dice_per_class.b': nan}
    """
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, prefix=name + "."))
        elif not prefix and key in NOT_METRICS:
            continue
        elif value is None and prefix:
            flat[name] = math.nan
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def read_metrics(path: Path) -> dict[str, float]:
    """The numeric metrics of a run's ``metrics.json``, flattened by :func:`flatten_metrics`.

    Raises:
        ValueError: the file is not a JSON object, or holds no numeric metric.
    """
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e.msg}); delete it and run the study again.") from e
    if not isinstance(metrics, Mapping):
        raise ValueError(f"{path} must hold a JSON object, got {type(metrics).__name__}.")
    values = flatten_metrics(metrics)
    if not values:
        raise ValueError(f"{path} holds no numeric metric ({sorted(metrics)}); check the evaluate config.")
    return values


def _metric_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every column but :data:`KEY_COLUMNS`, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in KEY_COLUMNS and k not in columns]
    return columns


def _csv_cell(column: str, value: Any) -> Any:
    if column == "fraction":
        return pct(float(value))
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


def write_results(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write rows atomically; columns: method, fraction, repeat, then every metric in first-seen order.

    Args:
        path: the CSV file.
        rows: rows as from :func:`read_results` (a missing or NaN value is written as an empty cell).

    Returns:
        the path written.
    """
    columns = [*KEY_COLUMNS, *_metric_columns(rows)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _csv_cell(c, row.get(c, math.nan)) for c in columns})
    return atomic_write(path, lambda f: f.write(buffer.getvalue()), mode="w")


def read_results(path: PathLike) -> list[dict[str, Any]]:
    """Read a study's ``results.csv``.

    Args:
        path: the CSV file (or a study folder holding ``results.csv``).

    Returns:
        rows with ``method`` (str), ``fraction`` (float, percent), ``repeat`` (int) and float metric values
        (NaN for an empty cell).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file lacks the ``method``/``fraction``/``repeat`` columns or has a bad value.
    """
    path = Path(os.fspath(path))
    if path.is_dir():
        path = path / RESULTS_CSV
    if not path.is_file():
        raise FileNotFoundError(f"Cannot find study results: {path}; run the study first (it writes results.csv).")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in KEY_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} lacks the column(s) {missing}; it is not a data-efficiency results file.")
        rows = []
        for line, raw in enumerate(reader, start=2):
            try:
                row: dict[str, Any] = {
                    "method": raw["method"],
                    "fraction": float(raw["fraction"]),
                    "repeat": int(raw["repeat"]),
                }
                row.update({k: float(v) if v not in ("", None) else math.nan for k, v in raw.items() if k not in row})
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path} line {line} has a bad value ({e}); fix or delete that line.") from e
            rows.append(row)
    return rows


def resolve_metric(rows: Sequence[Mapping[str, Any]], metric: str = "auto") -> str:
    """The headline metric: ``metric`` itself (checked), or with ``"auto"`` the first of :data:`HEADLINE_METRICS`
    present in the rows, else their first metric column.

    Raises:
        ValueError: no rows or no metric columns, or ``metric`` is not a column (the columns are listed).
    """
    columns = _metric_columns(rows)
    if not columns:
        raise ValueError("no metric values to report: results.csv has no rows or no metric columns yet.")
    if metric == "auto":
        return next((m for m in HEADLINE_METRICS if m in columns), columns[0])
    if metric not in columns:
        raise ValueError(f"metric {metric!r} is not in the results; choose one of {columns} or 'auto'.")
    return metric


def _statistics(values: Sequence[float]) -> dict[str, float]:
    """``mean``, sample ``std``, ``min``, ``max`` and ``n`` of the values that are not NaN."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    n = int(v.size)
    return {
        "mean": float(v.mean()) if n else math.nan,
        "std": float(v.std(ddof=1)) if n > 1 else (0.0 if n else math.nan),
        "min": float(v.min()) if n else math.nan,
        "max": float(v.max()) if n else math.nan,
        "n": n,
    }


def summarise_results(rows: Sequence[Mapping[str, Any]], metric: str) -> dict[str, dict[float, dict[str, float]]]:
    """Statistics of ``metric`` over repeats, for every method and label fraction.

    Args:
        rows: rows as from :func:`read_results`.
        metric: the column to summarise.

    Returns:
        ``{method: {fraction: {"mean", "std", "min", "max", "n"}}}``, methods in first-seen order, fractions
        ascending; ``std`` is the sample standard deviation (``ddof=1``; 0 for one repeat); NaN values are
        left out of every statistic (``n`` counts the rest; all-NaN gives NaN statistics and ``n = 0``).
    """
    values: dict[str, dict[float, list[float]]] = {}
    for row in rows:
        values.setdefault(row["method"], {}).setdefault(float(row["fraction"]), []).append(
            float(row.get(metric, math.nan))
        )
    return {
        method: {fraction: _statistics(by_fraction[fraction]) for fraction in sorted(by_fraction)}
        for method, by_fraction in values.items()
    }


def _markdown_cell(stats: Mapping[str, float] | None, n_max: int, digits: int) -> str:
    """``mean ± std`` (no spread for a single run), ``(n=k)`` when short of repeats, ``–`` when missing."""
    if stats is None or stats["n"] == 0:
        return "–"
    text = f"{stats['mean']:.{digits}f}"
    if stats["n"] > 1:  # a single run has no spread to show
        text += f" ± {stats['std']:.{digits}f}"
    return text + (f" (n={stats['n']})" if stats["n"] < n_max else "")


def results_markdown(rows: Sequence[Mapping[str, Any]], metric: str = "auto", digits: int = 3) -> str:
    """A Markdown table of ``metric``: one row per method, one column per label fraction, ``mean ± std``.

    A cell with fewer repeats than the most complete cell says ``(n=k)``; a missing cell is ``–``.

    Args:
        rows: rows as from :func:`read_results`.
        metric: the column to tabulate, or ``"auto"`` (see :func:`resolve_metric`).
        digits: decimals shown.

    Returns:
        a sentence naming the metric and the number of repeats, then the table.
    """
    metric = resolve_metric(rows, metric)
    summary = summarise_results(rows, metric)
    fractions = sorted({f for by_fraction in summary.values() for f in by_fraction})
    n_max = max((s["n"] for by_fraction in summary.values() for s in by_fraction.values()), default=0)
    lines = [
        (
            f"`{metric}` on the fixed test split, mean ± sample std over {n_max} repeats (seeds 0..{n_max - 1}) "
            "per label fraction."
            if n_max > 1
            else f"`{metric}` on the fixed test split, one run (seed 0) per method and label fraction."
        ),
        "",
        "| method | " + " | ".join(f"{pct(f)} %" for f in fractions) + " |",
        "|---|" + "---|" * len(fractions),
    ]
    for method, by_fraction in summary.items():
        cells = [_markdown_cell(by_fraction.get(f), n_max, digits) for f in fractions]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
