"""Data-efficiency study: pretrain once per method, fine-tune at several label fractions, plot the curves.

The protocol of Taleb et al., "3D Self-Supervised Methods for Medical Imaging" (NeurIPS 2020), Figures 3-4:
every pretext task is pretrained once on all (unlabelled) images; its encoder is then fine-tuned on 5, 10,
25, 50 and 100 % of the labelled training cases, with the same budget as a network trained from scratch,
and every fine-tuned network is scored on one fixed test split. Each (method, fraction) is repeated with
seeds 0, 1, ... (a different labelled subset, initialisation and augmentation each time) while
``split_seed`` keeps the train/validation/test split, hence the test set, the same for every run.

Everything runs through ``python -m monai.bundle run`` exactly as a user would run a bundle::

    <study>/pretrain/<method>/encoder.pt                       (+ pretrain.log; pretrain_root, if shared)
    <study>/finetune/<method>/f<percent>/r<repeat>/metrics.json (+ train.log, evaluate.log, train_done.json)
    <study>/results.csv, results.md, data_efficiency.png, study.json

An interrupted study continues where it stopped when run again with the same arguments: a pretraining
whose ``encoder.pt`` exists is not redone, a (method, fraction, repeat) already in ``results.csv`` is
skipped, a fine-tuning that finished training is only evaluated, and one that stopped mid-training is
continued from its checkpoints (``resume=True``) when the bundle has a ``resume`` key. ``study.json``
records the settings that make runs comparable (bundle, data, ``split_seed``, overrides); resuming with
different ones is refused, while adding methods, fractions or repeats is allowed.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import numbers
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medssl3d.utils.io import atomic_write, atomic_write_json

__all__ = [
    "DEFAULT_FRACTIONS",
    "HEADLINE_METRICS",
    "BundleRunError",
    "StudyJob",
    "StudyReport",
    "DataEfficiencyStudy",
    "available_methods",
    "flatten_metrics",
    "subprocess_launcher",
    "parse_override",
    "read_results",
    "resolve_metric",
    "summarise_results",
    "results_markdown",
    "plot_data_efficiency",
    "write_report",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike
Launcher = Callable[[Sequence[str], Path], int]
"""``launcher(command, log_path) -> exit code``: runs one command, its output going to ``log_path``."""

DEFAULT_FRACTIONS: tuple[float, ...] = (5.0, 10.0, 25.0, 50.0, 100.0)
"""Label fractions of Taleb et al. 2020, in percent."""

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

SCRATCH = "scratch"
KEY_COLUMNS: tuple[str, ...] = ("method", "fraction", "repeat")
RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
PLOT_PNG = "data_efficiency.png"
STUDY_JSON = "study.json"
PRETRAIN_JSON = "pretrain.json"
TRAIN_DONE = "train_done.json"
ENCODER = "encoder.pt"
METRICS = "metrics.json"
CHECKPOINT_DIR = "checkpoints"
# keys the runner sets itself: overriding them would break the study's bookkeeping
MANAGED_KEYS = frozenset(
    {"config_file", "bundle_root", "dataset_dir", "output_dir", "label_fraction", "seed", "split_seed"}
    | {"pretrained_encoder", "resume", "meta_file", "logging_file"}
)
# what the runner sets for a pretraining (label_fraction stays free: a label-using method such as the
# labelled triplet may be given the study's fraction with "<method>:label_fraction")
PRETRAIN_MANAGED_KEYS = frozenset(
    {"config_file", "bundle_root", "dataset_dir", "output_dir", "split_seed", "resume", "meta_file", "logging_file"}
)
# keys a fine-tuning config must read for the study to mean what it says
REQUIRED_FINETUNE_KEYS = ("dataset_dir", "output_dir", "label_fraction", "seed", "split_seed", "pretrained_encoder")
REQUIRED_PRETRAIN_KEYS = ("dataset_dir", "output_dir")
# bookkeeping numbers in metrics.json that are not scores
NOT_METRICS = frozenset({"num_classes", "label_fraction", "seed", "split_seed", "fold", "n_folds", "epoch"})
_TAIL_LINES = 40


class BundleRunError(RuntimeError):
    """A ``monai.bundle run`` command of the study failed; the message names the command and its log.

    Attributes:
        command: the command line (list of arguments).
        log_path: the file holding the command's output.
        returncode: its exit status.
    """

    def __init__(self, what: str, command: Sequence[str], log_path: Path, returncode: int, hint: str = "") -> None:
        self.command = list(command)
        self.log_path = Path(log_path)
        self.returncode = int(returncode)
        tail = _tail(self.log_path)
        super().__init__(
            f"{what} failed (exit code {returncode}){': ' + hint if hint else ''}.\n"
            f"Command: {_shell_join(self.command)}\nLog: {self.log_path}\n"
            f"Last lines of the log:\n{tail}\n"
            "Fix the cause and run the study again: finished runs are kept and skipped."
        )


def _tail(path: Path, lines: int = _TAIL_LINES) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log written)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"


@dataclass
class StudyJob:
    """One unit of a study: a pretraining (``fraction``/``repeat`` ``None``) or a fine-tuning + evaluation.

    Attributes:
        kind: ``"pretrain"`` or ``"finetune"``.
        method: ``"scratch"`` or a pretext task name.
        fraction: label fraction in percent (fine-tuning only).
        repeat: repeat index, also the fine-tuning ``seed``.
        output_dir: the run's ``output_dir``.
        action: what running the study does now: ``"done"`` (nothing), ``"collect"`` (read its
            ``metrics.json``), ``"evaluate"`` (training finished), ``"resume"`` (continue training from
            checkpoints, then evaluate), ``"run"`` (from the start).
        commands: ``(stage, command, log_path)`` for each command the action launches.
    """

    kind: str
    method: str
    fraction: float | None
    repeat: int | None
    output_dir: Path
    action: str
    commands: list[tuple[str, list[str], Path]] = field(default_factory=list)

    @property
    def name(self) -> str:
        if self.kind == "pretrain":
            return f"pretrain {self.method}"
        return f"fine-tune {self.method} at {self.fraction:g} % labels, repeat {self.repeat}"


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


# ----------------------------------------------------------------------------------------------- helpers


def _pct(fraction: float) -> str:
    """``5.0 -> "5"``, ``2.5 -> "2.5"``: how a fraction appears in folder names and ``results.csv``."""
    return f"{fraction:g}"


def _fraction_percent(value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"label fraction must be a number in (0, 100] percent, got {value!r}.") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"label fraction must be a number in (0, 100] percent, got {value!r}.")
    if not 0.0 < float(value) <= 100.0:
        raise ValueError(
            f"label fraction {value!r} is outside (0, 100]: fractions are in percent, e.g. 5 10 25 50 100."
        )
    return float(value)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse a command-line override ``key=value``; the value is JSON if it parses, else a string.

    Args:
        text: e.g. ``"epochs=2"``, ``"patch_size=[32,32,32]"``, ``"spacing=null"``, ``"device=cpu"``.

    Returns:
        ``(key, value)``, e.g. ``("patch_size", [32, 32, 32])``.

    Raises:
        ValueError: no ``=`` or an empty key.

    Example:
        >>> parse_override("learning_rate=3e-3")
        ('learning_rate', 0.003)
    """
    key, sep, raw = str(text).partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"override {text!r} is not key=value; e.g. epochs=2 or patch_size=[32,32,32].")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _cli_value(value: Any) -> str:
    """An override value as ``monai.bundle``'s command line (python-fire) reads it back unchanged.

    A string fire would read back as itself (a path, ``cpu``) is passed as it is; any other value is written
    as a Python literal, so ``"1"``, ``"True"`` or ``"a,b"`` stay strings and lists stay lists. ``None`` is
    written as the expression ``$None``: ``monai.bundle run`` silently drops command-line overrides that parse
    to ``None`` (``update_kwargs(ignore_none=True)``), so ``--spacing None`` would keep the config's default.
    """
    if value is None:
        return "$None"
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        from fire.parser import DefaultParseValue

        parsed = DefaultParseValue(value)
        if isinstance(parsed, str) and parsed == value:
            return value
    return repr(value)


_SHELL_SPECIAL = set('"$`\\!')


def _shell_join(command: Sequence[str]) -> str:
    """``command`` as a line to paste into bash: like ``shlex.join``, but ``"['a', 'b']"`` rather than
    ``shlex.join``'s unreadable escaping of single quotes."""
    parts = []
    for arg in command:
        quoted = shlex.quote(arg)
        parts.append(f'"{arg}"' if quoted != arg and "'" in arg and not _SHELL_SPECIAL & set(arg) else quoted)
    return " ".join(parts)


def _override_args(overrides: Mapping[str, Any]) -> list[str]:
    args: list[str] = []
    for key, value in overrides.items():
        args += [f"--{key}", _cli_value(value)]
    return args


def _check_overrides(
    name: str,
    overrides: Mapping[str, Any] | None,
    methods: Sequence[str] | None = None,
    managed: frozenset[str] = MANAGED_KEYS,
) -> dict[str, Any]:
    """Validated overrides; with ``methods``, a key may be scoped to one of them as ``"<method>:<key>"``."""
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ValueError(f"{name} must be a mapping of bundle keys to values, got {type(overrides).__name__}.")
    result: dict[str, Any] = {}
    for key, value in overrides.items():
        if not isinstance(key, str) or not key or key.startswith("-"):
            raise ValueError(f"{name} has an invalid key {key!r}; use bundle config keys such as 'epochs'.")
        full_key = key
        if ":" in key:
            scope, key = key.split(":", 1)
            if methods is None:
                raise ValueError(f"{name} cannot scope {full_key!r} to a method; pass a plain key such as 'epochs'.")
            if scope not in methods or scope == SCRATCH or not key:
                raise ValueError(
                    f"{name} has {full_key!r}: '<method>:<key>' needs one of the pretrained methods "
                    f"{[m for m in methods if m != SCRATCH]} and a key, e.g. 'triplet:epochs'."
                )
        if key in managed:
            raise ValueError(
                f"{name} sets {key!r}, which the study sets itself for every run; use the study's own arguments "
                "(dataset_dir, study_dir, fractions, repeats, split_seed, methods) instead."
            )
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name}[{full_key!r}] = {value!r} is not a plain JSON value ({e}).") from e
        result[full_key] = value
    return result


def _check_recorded_settings(
    path: Path,
    ours: Mapping[str, Any],
    unreadable: str,
    differs: str,
    advice: str,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Refuse to go on when ``path`` (a JSON file with ``"settings"``) recorded settings other than ``ours``."""
    if not path.is_file():
        return
    try:
        recorded = dict(json.loads(path.read_text(encoding="utf-8"))["settings"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path} is unreadable ({e}); {unreadable}.") from e
    recorded = {**(defaults or {}), **recorded}
    differ = {k: (recorded.get(k), v) for k, v in ours.items() if recorded.get(k) != v}
    if differ:
        listed = "; ".join(f"{k}: recorded {old!r}, now {new!r}" for k, (old, new) in differ.items())
        raise ValueError(f"{differs} ({listed}); {advice}")


def _method_overrides(overrides: Mapping[str, Any], method: str) -> dict[str, Any]:
    """The overrides one method's pretraining gets: the plain keys, then its ``"<method>:<key>"`` ones."""
    result = {k: v for k, v in overrides.items() if ":" not in k}
    prefix = f"{method}:"
    result.update({k[len(prefix):]: v for k, v in overrides.items() if k.startswith(prefix)})
    return result


def _config_keys(files: Sequence[Path]) -> set[str]:
    """Top-level keys of merged JSON bundle configs (``a#b`` override keys count as ``a``)."""
    keys: set[str] = set()
    for path in files:
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"bundle config {path} is not valid JSON ({e.msg} at line {e.lineno}).") from e
        if not isinstance(content, dict):
            raise ValueError(f"bundle config {path} must hold a JSON object, got {type(content).__name__}.")
        keys.update(k.split("#", 1)[0] for k in content)
    return keys


def _config_arg(files: Sequence[Path]) -> str:
    return _cli_value(str(files[0])) if len(files) == 1 else _cli_value([str(f) for f in files])


def _has_checkpoints(output_dir: Path) -> bool:
    folder = output_dir / CHECKPOINT_DIR
    return folder.is_dir() and any(folder.iterdir())


def available_methods(bundle_dir: PathLike) -> list[str]:
    """``"scratch"`` and every pretext task the bundle can pretrain (its ``configs/pretrain_<task>.json``).

    Args:
        bundle_dir: a bundle folder (with ``configs/``).

    Returns:
        ``["scratch", <task>, ...]`` (tasks sorted); tasks only when ``configs/pretrain_base.json`` exists.
    """
    configs = Path(os.fspath(bundle_dir)) / "configs"
    if not (configs / "pretrain_base.json").is_file():
        return [SCRATCH]
    tasks = sorted(p.stem[len("pretrain_") :] for p in configs.glob("pretrain_*.json") if p.stem != "pretrain_base")
    return [SCRATCH, *tasks]


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


def subprocess_launcher(command: Sequence[str], log_path: Path) -> int:
    """Run ``command`` with its standard output and error appended to ``log_path``; return its exit code.

    The log gets a header line with the time and the command, so a resumed run keeps the earlier attempts.
    ``PYTHONUNBUFFERED=1`` makes the log follow the run live (``tail -f``).
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "a", encoding="utf-8", errors="replace") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} $ {_shell_join(command)}\n")
        log.flush()
        return subprocess.run(list(command), stdout=log, stderr=subprocess.STDOUT, env=env, check=False).returncode


# ----------------------------------------------------------------------------------------------- results


def _write_results(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write rows atomically; columns: method, fraction, repeat, then every metric in first-seen order."""
    columns = list(KEY_COLUMNS)
    for row in rows:
        columns += [k for k in row if k not in columns]

    def cell(column: str, value: Any) -> Any:
        if column == "fraction":
            return _pct(float(value))
        if isinstance(value, float):
            return "" if math.isnan(value) else repr(value)
        return value

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: cell(c, row.get(c, math.nan)) for c in columns})
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


def _row_key(method: str, fraction: float, repeat: int) -> tuple[str, str, int]:
    return method, _pct(fraction), int(repeat)


def resolve_metric(rows: Sequence[Mapping[str, Any]], metric: str = "auto") -> str:
    """The headline metric: ``metric`` itself (checked), or with ``"auto"`` the first of :data:`HEADLINE_METRICS`
    present in the rows, else their first metric column.

    Raises:
        ValueError: no rows or no metric columns, or ``metric`` is not a column (the columns are listed).
    """
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in KEY_COLUMNS and k not in columns]
    if not columns:
        raise ValueError("no metric values to report: results.csv has no rows or no metric columns yet.")
    if metric == "auto":
        return next((m for m in HEADLINE_METRICS if m in columns), columns[0])
    if metric not in columns:
        raise ValueError(f"metric {metric!r} is not in the results; choose one of {columns} or 'auto'.")
    return metric


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
    summary: dict[str, dict[float, dict[str, float]]] = {}
    for method, by_fraction in values.items():
        summary[method] = {}
        for fraction in sorted(by_fraction):
            v = np.asarray(by_fraction[fraction], dtype=np.float64)
            v = v[~np.isnan(v)]
            n = int(v.size)
            summary[method][fraction] = {
                "mean": float(v.mean()) if n else math.nan,
                "std": float(v.std(ddof=1)) if n > 1 else (0.0 if n else math.nan),
                "min": float(v.min()) if n else math.nan,
                "max": float(v.max()) if n else math.nan,
                "n": n,
            }
    return summary


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
        "| method | " + " | ".join(f"{_pct(f)} %" for f in fractions) + " |",
        "|---|" + "---|" * len(fractions),
    ]
    for method, by_fraction in summary.items():
        cells = []
        for f in fractions:
            s = by_fraction.get(f)
            if s is None or s["n"] == 0:
                cells.append("–")
                continue
            text = f"{s['mean']:.{digits}f}"
            if s["n"] > 1:  # a single run has no spread to show
                text += f" ± {s['std']:.{digits}f}"
            cells.append(text + (f" (n={s['n']})" if s["n"] < n_max else ""))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_data_efficiency(
    rows: Sequence[Mapping[str, Any]],
    path: PathLike,
    metric: str = "auto",
    spread: str = "minmax",
    title: str = "",
) -> Path:
    """Plot ``metric`` against the label fraction (log axis, in percent), one line per method (PNG).

    Like Figures 3-4 of Taleb et al. 2020: the line is the mean over repeats, the band the spread.
    Uses matplotlib's Agg canvas directly (no pyplot, no global backend change).

    Args:
        rows: rows as from :func:`read_results`.
        path: output ``.png``; parent folders are created; written atomically.
        metric: the column to plot, or ``"auto"``.
        spread: ``"minmax"`` (band from min to max over repeats) or ``"std"`` (mean ± sample std).
        title: figure title (default: the metric name).

    Returns:
        the path written.

    Raises:
        ValueError: unknown ``spread`` or ``metric``.
    """
    if spread not in ("minmax", "std"):
        raise ValueError(f"spread must be 'minmax' or 'std', got {spread!r}.")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, NullLocator

    metric = resolve_metric(rows, metric)
    summary = summarise_results(rows, metric)
    fig = Figure(figsize=(6.4, 4.4), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    fractions = sorted({f for by_fraction in summary.values() for f in by_fraction})
    for method, by_fraction in summary.items():
        xs = [f for f in sorted(by_fraction) if by_fraction[f]["n"] > 0]
        if not xs:
            continue
        mean = np.array([by_fraction[f]["mean"] for f in xs])
        if spread == "minmax":
            low = np.array([by_fraction[f]["min"] for f in xs])
            high = np.array([by_fraction[f]["max"] for f in xs])
        else:
            std = np.array([by_fraction[f]["std"] for f in xs])
            low, high = mean - std, mean + std
        (line,) = ax.plot(xs, mean, marker="o", label=method)
        ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(fractions)
    ax.set_xticklabels([f"{_pct(f)} %" for f in fractions])
    ax.set_xlabel("labelled training cases")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} vs label fraction ({'min-max' if spread == 'minmax' else '± std'} over repeats)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return atomic_write(Path(os.fspath(path)), lambda f: fig.savefig(f, format="png"))


def write_report(
    study_dir: PathLike, metric: str = "auto", spread: str = "minmax", rows: Sequence[Mapping[str, Any]] | None = None
) -> StudyReport:
    """Write ``results.md`` and ``data_efficiency.png`` of a study from its ``results.csv``.

    Args:
        study_dir: the study folder.
        metric: headline metric, or ``"auto"`` (see :func:`resolve_metric`).
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


# ----------------------------------------------------------------------------------------------- the study


class DataEfficiencyStudy:
    """Pretrain every method once, fine-tune each at every label fraction and repeat, collect test metrics.

    Everything is validated when the study is created, before any run starts. :meth:`plan` tells what
    :meth:`run` will do (``--dry-run``), taking finished work in ``study_dir`` into account.

    Args:
        bundle_dir: bundle folder with ``configs/train.json``, ``configs/evaluate.json`` and, for each
            pretext method, ``configs/pretrain_base.json`` + ``configs/pretrain_<method>.json``.
        dataset_dir: the dataset folder passed to every run as ``dataset_dir``.
        study_dir: where everything goes (see the module docstring).
        methods: ``"scratch"`` and/or pretext task names (see :func:`available_methods`).
        fractions: label fractions in percent, each in (0, 100].
        repeats: runs per (method, fraction), with ``seed`` 0, 1, ... (labelled subset, initialisation,
            augmentation).
        split_seed: the seed of the train/validation/test split, the same for every run, so every run is
            scored on the same test cases.
        metric: headline metric of the table and the plot, or ``"auto"`` (``mean_dice_foreground`` for
            segmentation bundles, ``qwk`` for grading, see :data:`HEADLINE_METRICS`).
        spread: band of the plot: ``"minmax"`` or ``"std"``.
        pretrain_overrides: extra bundle keys for every pretraining (e.g. ``{"epochs": 100}``); a key
            ``"<method>:<key>"`` applies to that method only and wins over the plain key (e.g.
            ``{"epochs": 10, "triplet:epochs": 60}``).
        finetune_overrides: extra bundle keys for every fine-tuning and evaluation (e.g. ``{"epochs": 400}``).
        python: the Python executable that runs ``-m monai.bundle`` (default: this one).
        launcher: ``launcher(command, log_path) -> exit code`` (default :func:`subprocess_launcher`); tests
            pass a fake one.
        train_config, evaluate_config: the fine-tuning and evaluation config names in ``configs/``.
        progress: show a tqdm progress bar over the runs.
        equal_steps: give every label fraction about the same number of optimisation steps instead of the
            same number of epochs: fine-tuning at fraction ``f`` runs
            ``ceil(epochs * min(100 / f, max_epoch_factor))`` epochs, where ``epochs`` is the
            ``finetune_overrides`` value (required then); ``freeze_encoder_epochs`` and ``val_interval`` overrides are scaled alike. With equal epochs, a 5 % run takes 20x fewer
            steps than a 100 % run, which on a CPU budget leaves small fractions untrained for every method.
        max_epoch_factor: cap of the epoch multiplier of ``equal_steps``.
        pretrain_root: folder of the pretrained encoders (default ``<study_dir>/pretrain``). Two studies
            with the same bundle, data, ``split_seed`` and pretraining overrides may share it, e.g. a
            linear-probe study and a fine-tuning study of the same encoders; ``pretrain.json`` in it
            records those settings and a study with other ones is refused.

    Raises:
        ValueError: a missing folder or config, an unknown method (the available ones are listed), a
            fraction outside (0, 100], a config that does not read a key the study sets, an override of a
            key the study sets, or a ``study_dir`` recorded with different settings.

    Example::

        study = DataEfficiencyStudy("bundles/pancreas_ct_ssl", "data/Task07_Pancreas", "runs/study",
                                    methods=["scratch", "rotation"], repeats=3,
                                    finetune_overrides={"epochs": 100})
        report = study.run()
        update_markdown_section("docs/benchmarks.md", "data-efficiency", report.markdown)
    """

    def __init__(
        self,
        bundle_dir: PathLike,
        dataset_dir: PathLike,
        study_dir: PathLike,
        methods: Sequence[str] = (SCRATCH,),
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
        repeats: int = 3,
        split_seed: int = 0,
        metric: str = "auto",
        spread: str = "minmax",
        pretrain_overrides: Mapping[str, Any] | None = None,
        finetune_overrides: Mapping[str, Any] | None = None,
        python: PathLike | None = None,
        launcher: Launcher | None = None,
        train_config: str = "train.json",
        evaluate_config: str = "evaluate.json",
        progress: bool = True,
        equal_steps: bool = False,
        max_epoch_factor: float = 20.0,
        pretrain_root: PathLike | None = None,
    ) -> None:
        self.bundle_dir = Path(os.fspath(bundle_dir)).expanduser().resolve()
        self.configs = self.bundle_dir / "configs"
        if not self.configs.is_dir():
            raise ValueError(f"Cannot find bundle configs folder: {self.configs}; pass the bundle folder.")
        self.train_files = [self.configs / train_config]
        self.evaluate_files = [self.configs / train_config, self.configs / evaluate_config]
        for path in self.evaluate_files:
            if not path.is_file():
                raise ValueError(f"Cannot find bundle config {path}; every study fine-tunes and evaluates with it.")

        if isinstance(methods, str) or not isinstance(methods, Sequence) or not methods:
            raise ValueError(f"methods must be a non-empty list such as ['scratch', 'rotation'], got {methods!r}.")
        available = available_methods(self.bundle_dir)
        unknown = [m for m in methods if m not in available]
        if unknown:
            raise ValueError(
                f"unknown method(s) {unknown} for bundle {self.bundle_dir.name}; available: {available} "
                f"('scratch' plus one per configs/pretrain_<method>.json next to configs/pretrain_base.json)."
            )
        if len(set(methods)) != len(methods):
            raise ValueError(f"methods lists a method twice: {list(methods)}.")
        self.methods = list(methods)

        if isinstance(fractions, (str, numbers.Number)) or not isinstance(fractions, Sequence) or not fractions:
            raise ValueError(
                f"fractions must be a non-empty list of percentages, e.g. [5, 10, 25, 50, 100], got {fractions!r}."
            )
        values = [_fraction_percent(f) for f in fractions]
        if len({_pct(f) for f in values}) != len(values):
            raise ValueError(f"fractions lists a label fraction twice: {list(fractions)}.")
        self.fractions = sorted(values)
        self.repeats = _check_int("repeats", repeats, 1)
        self.split_seed = _check_int("split_seed", split_seed, 0)
        if spread not in ("minmax", "std"):
            raise ValueError(f"spread must be 'minmax' or 'std', got {spread!r}.")
        self.metric, self.spread = str(metric), spread
        self.pretrain_overrides = _check_overrides(
            "pretrain_overrides", pretrain_overrides, self.methods, PRETRAIN_MANAGED_KEYS
        )
        self.finetune_overrides = _check_overrides("finetune_overrides", finetune_overrides)

        self.dataset_dir = Path(os.fspath(dataset_dir)).expanduser().resolve()
        if not self.dataset_dir.is_dir():
            raise ValueError(f"Cannot find dataset directory: {self.dataset_dir}; pass the dataset folder.")
        self.study_dir = Path(os.fspath(study_dir)).expanduser().resolve()
        if self.study_dir.exists() and not self.study_dir.is_dir():
            raise ValueError(f"study_dir {self.study_dir} exists and is not a folder.")
        root = self.study_dir / "pretrain" if pretrain_root is None else Path(os.fspath(pretrain_root))
        self.pretrain_root = root.expanduser().resolve()
        if self.pretrain_root.exists() and not self.pretrain_root.is_dir():
            raise ValueError(f"pretrain_root {self.pretrain_root} exists and is not a folder.")
        python = sys.executable if python is None else os.fspath(python)
        if shutil.which(python) is None:
            raise ValueError(f"Cannot find the Python executable {python!r}; pass the one with medssl3d installed.")
        self.python = python
        self.launcher: Launcher = subprocess_launcher if launcher is None else launcher
        self.progress = bool(progress)
        self.equal_steps = bool(equal_steps)
        self.max_epoch_factor = float(max_epoch_factor)
        if self.equal_steps and not isinstance(self.finetune_overrides.get("epochs"), int):
            raise ValueError("equal_steps needs the fine-tuning epochs at 100 % labels: pass finetune_overrides "
                             "{'epochs': N} (--finetune-override epochs=N).")
        if self.max_epoch_factor < 1:
            raise ValueError(f"max_epoch_factor must be >= 1, got {max_epoch_factor!r}.")

        finetune_keys = _config_keys(self.evaluate_files)
        missing = [k for k in REQUIRED_FINETUNE_KEYS if k not in finetune_keys]
        if missing:
            raise ValueError(
                f"{self.train_files[0]} does not define {missing}; the study sets these keys for every run "
                "(without split_seed the test set would change with each repeat's seed)."
            )
        self.finetune_resume = "resume" in _config_keys(self.train_files)
        self.pretrain_keys: dict[str, set[str]] = {}
        for method in self.methods:
            if method == SCRATCH:
                continue
            keys = _config_keys(self._pretrain_files(method))
            missing = [k for k in REQUIRED_PRETRAIN_KEYS if k not in keys]
            if missing:
                raise ValueError(f"pretraining configs of {method!r} do not define {missing}; the study sets them.")
            self.pretrain_keys[method] = keys
        self._check_study_json()
        self._check_pretrain_json()

    # -- paths and commands

    def _pretrain_files(self, method: str) -> list[Path]:
        return [self.configs / "pretrain_base.json", self.configs / f"pretrain_{method}.json"]

    def pretrain_dir(self, method: str) -> Path:
        """``<pretrain_root>/<method>`` (``<study>/pretrain/<method>`` by default)."""
        return self.pretrain_root / method

    def encoder_path(self, method: str) -> Path:
        """``<pretrain_root>/<method>/encoder.pt``, the encoder a pretext method's fine-tunings start from."""
        return self.pretrain_dir(method) / ENCODER

    def finetune_dir(self, method: str, fraction: float, repeat: int) -> Path:
        """``<study>/finetune/<method>/f<percent>/r<repeat>``."""
        return self.study_dir / "finetune" / method / f"f{_pct(fraction)}" / f"r{repeat}"

    @property
    def csv_path(self) -> Path:
        return self.study_dir / RESULTS_CSV

    def _bundle_cmd(self, files: Sequence[Path], overrides: Mapping[str, Any]) -> list[str]:
        cmd = [self.python, "-m", "monai.bundle", "run", "--config_file", _config_arg(files)]
        cmd += ["--bundle_root", _cli_value(str(self.bundle_dir))]
        return cmd + _override_args(overrides)

    def _pretrain_commands(self, method: str, resume: bool) -> list[tuple[str, list[str], Path]]:
        out = self.pretrain_dir(method)
        keys = self.pretrain_keys[method]
        overrides: dict[str, Any] = {"dataset_dir": str(self.dataset_dir), "output_dir": str(out)}
        if "split_seed" in keys:  # lets pretraining leave out the fixed test cases when the bundle does that
            overrides["split_seed"] = self.split_seed
        if resume:
            overrides["resume"] = True
        overrides.update(_method_overrides(self.pretrain_overrides, method))
        return [("pretrain", self._bundle_cmd(self._pretrain_files(method), overrides), out / "pretrain.log")]

    def _finetune_overrides(self, method: str, fraction: float, repeat: int) -> dict[str, Any]:
        return {
            "dataset_dir": str(self.dataset_dir),
            "output_dir": str(self.finetune_dir(method, fraction, repeat)),
            "label_fraction": round(fraction / 100.0, 12),
            "seed": repeat,
            "split_seed": self.split_seed,
            "pretrained_encoder": "" if method == SCRATCH else str(self.encoder_path(method)),
        }

    def finetune_epochs(self, fraction: float) -> int | None:
        """Fine-tuning epochs at ``fraction`` percent under ``equal_steps`` (``None``: the overrides decide)."""
        if not self.equal_steps:
            return None
        factor = min(100.0 / float(fraction), self.max_epoch_factor)
        return int(math.ceil(self.finetune_overrides["epochs"] * factor - 1e-9))

    def _finetune_commands(
        self, method: str, fraction: float, repeat: int, action: str
    ) -> list[tuple[str, list[str], Path]]:
        out = self.finetune_dir(method, fraction, repeat)
        base = self._finetune_overrides(method, fraction, repeat)
        commands = []
        if action in ("run", "resume"):
            train = dict(base, **({"resume": True} if action == "resume" else {}), **self.finetune_overrides)
            epochs = self.finetune_epochs(fraction)
            if epochs is not None:
                train["epochs"] = epochs
                # the frozen warm-up and the validation interval keep their share of the run
                for key, minimum in (("freeze_encoder_epochs", 0), ("val_interval", 1)):
                    if isinstance(train.get(key), int):
                        share = train[key] / self.finetune_overrides["epochs"]
                        train[key] = max(minimum, int(round(share * epochs)))
            commands.append(("train", self._bundle_cmd(self.train_files, train), out / "train.log"))
        if action in ("run", "resume", "evaluate"):
            evaluate = dict(base, **self.finetune_overrides)
            commands.append(("evaluate", self._bundle_cmd(self.evaluate_files, evaluate), out / "evaluate.log"))
        return commands

    # -- bookkeeping

    def _settings(self) -> dict[str, Any]:
        """What must not change between a study and its resumption."""
        return {
            "bundle_dir": str(self.bundle_dir),
            "dataset_dir": str(self.dataset_dir),
            "split_seed": self.split_seed,
            "train_config": self.train_files[0].name,
            "evaluate_config": self.evaluate_files[1].name,
            "pretrain_overrides": self.pretrain_overrides,
            "finetune_overrides": self.finetune_overrides,
            "equal_steps": self.equal_steps,
            "max_epoch_factor": self.max_epoch_factor,
            "pretrain_root": str(self.pretrain_root),
        }

    def _pretrain_settings(self) -> dict[str, Any]:
        """What every study sharing ``pretrain_root`` must agree on."""
        return {
            "bundle_dir": str(self.bundle_dir),
            "dataset_dir": str(self.dataset_dir),
            "split_seed": self.split_seed,
            "pretrain_overrides": self.pretrain_overrides,
        }

    def _check_pretrain_json(self) -> None:
        _check_recorded_settings(
            self.pretrain_root / PRETRAIN_JSON,
            self._pretrain_settings(),
            unreadable="delete it only if the encoders in it match",
            differs=f"{self.pretrain_root} holds encoders pretrained with other settings",
            advice="use another pretrain_root, or the recorded settings.",
        )

    def _check_study_json(self) -> None:
        _check_recorded_settings(
            self.study_dir / STUDY_JSON,
            self._settings(),
            unreadable=f"delete it only if the runs in {self.study_dir} match",
            differs=f"{self.study_dir} holds a study run with other settings",
            advice="its results would not be comparable. Use a new study_dir, or the recorded settings to resume it.",
            # studies recorded before pretrain_root existed used <study>/pretrain
            defaults={"pretrain_root": str(self.study_dir / "pretrain")},
        )

    def _write_study_json(self) -> None:
        atomic_write_json(
            {
                "settings": self._settings(),
                "methods": self.methods,
                "fractions": self.fractions,
                "repeats": self.repeats,
                "python": self.python,
            },
            self.study_dir / STUDY_JSON,
        )

    def _existing_rows(self) -> list[dict[str, Any]]:
        return read_results(self.csv_path) if self.csv_path.is_file() else []

    # -- planning

    def plan(self) -> list[StudyJob]:
        """Every pretraining and fine-tuning of the study with what :meth:`run` would do now.

        Pretrainings come first; fine-tunings are ordered by repeat, then fraction, then method, so the
        first complete curve appears early.
        """
        jobs: list[StudyJob] = []
        for method in self.methods:
            if method == SCRATCH:
                continue
            out = self.pretrain_dir(method)
            if self.encoder_path(method).is_file():
                action = "done"
            else:
                action = "resume" if "resume" in self.pretrain_keys[method] and _has_checkpoints(out) else "run"
            commands = [] if action == "done" else self._pretrain_commands(method, action == "resume")
            jobs.append(StudyJob("pretrain", method, None, None, out, action, commands))
        finished = {_row_key(r["method"], r["fraction"], r["repeat"]) for r in self._existing_rows()}
        for repeat in range(self.repeats):
            for fraction in self.fractions:
                for method in self.methods:
                    out = self.finetune_dir(method, fraction, repeat)
                    if _row_key(method, fraction, repeat) in finished:
                        action = "done"
                    elif (out / TRAIN_DONE).is_file():
                        metrics = out / METRICS
                        fresh = metrics.is_file() and metrics.stat().st_mtime >= (out / TRAIN_DONE).stat().st_mtime
                        action = "collect" if fresh else "evaluate"
                    elif self.finetune_resume and _has_checkpoints(out):
                        action = "resume"
                    else:
                        action = "run"
                    commands = self._finetune_commands(method, fraction, repeat, action)
                    jobs.append(StudyJob("finetune", method, fraction, repeat, out, action, commands))
        return jobs

    def describe_plan(self, jobs: Sequence[StudyJob] | None = None) -> str:
        """The plan as text: one line per job with its action, then its commands (what ``--dry-run`` prints)."""
        jobs = self.plan() if jobs is None else jobs
        counts: dict[str, int] = {}
        for job in jobs:
            counts[job.action] = counts.get(job.action, 0) + 1
        lines = [
            f"Data-efficiency study in {self.study_dir}",
            f"  bundle {self.bundle_dir}, data {self.dataset_dir}, split_seed {self.split_seed}",
            f"  methods {self.methods}, fractions {[_pct(f) for f in self.fractions]} %, repeats {self.repeats}",
            "  jobs: " + ", ".join(f"{n} {a}" for a, n in counts.items()),
        ]
        for job in jobs:
            lines.append(f"[{job.action}] {job.name}")
            for stage, cmd, log in job.commands:
                lines.append(f"    {stage}: {_shell_join(cmd)}")
                lines.append(f"        log: {log}")
        return "\n".join(lines) + "\n"

    # -- running

    def _launch(self, job: StudyJob, stage: str, cmd: list[str], log: Path) -> None:
        logger.info("%s: %s (log %s)", job.name, _shell_join(cmd), log)
        log.parent.mkdir(parents=True, exist_ok=True)
        code = self.launcher(cmd, log)
        if code != 0:
            raise BundleRunError(f"{stage} of {job.name}", cmd, log, code)

    def _run_pretrain(self, job: StudyJob) -> None:
        for stage, cmd, log in job.commands:
            self._launch(job, stage, cmd, log)
        if not self.encoder_path(job.method).is_file():
            stage, cmd, log = job.commands[-1]
            raise BundleRunError(
                f"pretraining of {job.method}",
                cmd,
                log,
                0,
                hint=f"it exited normally but wrote no {self.encoder_path(job.method)}",
            )

    def _run_finetune(self, job: StudyJob) -> dict[str, Any]:
        out = job.output_dir
        for stage, cmd, log in job.commands:
            if stage == "train":
                (out / TRAIN_DONE).unlink(missing_ok=True)
                start = time.perf_counter()
                self._launch(job, stage, cmd, log)
                atomic_write_json({"command": cmd, "seconds": round(time.perf_counter() - start, 1)}, out / TRAIN_DONE)
            else:
                (out / METRICS).unlink(missing_ok=True)
                self._launch(job, stage, cmd, log)
        metrics_path = out / METRICS
        if not metrics_path.is_file():
            stage, cmd, log = job.commands[-1] if job.commands else ("evaluate", [], out / "evaluate.log")
            raise BundleRunError(f"evaluation of {job.name}", cmd, log, 0, hint=f"it wrote no {metrics_path}")
        try:
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{metrics_path} is not valid JSON ({e.msg}); delete it and run the study again.") from e
        if not isinstance(metrics, Mapping):
            raise ValueError(f"{metrics_path} must hold a JSON object, got {type(metrics).__name__}.")
        values = flatten_metrics(metrics)
        if not values:
            raise ValueError(f"{metrics_path} holds no numeric metric ({sorted(metrics)}); check the evaluate config.")
        return {"method": job.method, "fraction": job.fraction, "repeat": job.repeat, **values}

    def run(self) -> StudyReport:
        """Run (or continue) the study, then write ``results.md`` and the plot (see :meth:`describe_plan`
        for a dry run).

        ``results.csv`` is rewritten (atomically) after every finished fine-tuning, so an interrupted study
        loses at most the run in progress.

        Returns:
            the :class:`StudyReport`.

        Raises:
            BundleRunError: a command failed or did not write its output; the message names the command and
                its log and shows the log's last lines. Finished runs stay in ``results.csv``.
            ValueError: ``metric`` is not in the first ``metrics.json`` collected (raised after that run).
        """
        jobs = self.plan()
        self.study_dir.mkdir(parents=True, exist_ok=True)
        self._write_study_json()
        if any(job.kind == "pretrain" for job in jobs):
            atomic_write_json({"settings": self._pretrain_settings()}, self.pretrain_root / PRETRAIN_JSON)
        rows = self._existing_rows()
        todo = [job for job in jobs if job.action != "done"]
        logger.info("%d of %d jobs to do in %s", len(todo), len(jobs), self.study_dir)
        from tqdm.auto import tqdm

        with tqdm(total=len(todo), desc="data-efficiency study", unit="run", disable=not self.progress) as bar:
            for job in todo:
                bar.set_postfix_str(job.name)
                if job.kind == "pretrain":
                    self._run_pretrain(job)
                else:
                    rows.append(self._run_finetune(job))
                    _write_results(self.csv_path, rows)
                    resolve_metric(rows, self.metric)  # a wrong metric name fails after one run, not at the end
                bar.update(1)
        if not rows:
            raise ValueError("the study has no fine-tuning results to report.")
        if not self.csv_path.is_file():
            _write_results(self.csv_path, rows)
        return write_report(self.study_dir, metric=self.metric, spread=self.spread, rows=rows)
