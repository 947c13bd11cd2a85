"""Settings of a data-efficiency study, checked before any run starts.

:class:`StudySettings` holds what :class:`medssl3d.reports.data_efficiency.DataEfficiencyStudy` is given
(bundle, data and study folders, methods, label fractions, repeats, seeds, bundle overrides, ...) in
normalised form, and refuses anything the study could not run or whose results would not mean what they say:
a missing folder or config, an unknown method, a fraction outside (0, 100] percent, an override of a key the
study sets itself, or a bundle whose configs do not read the keys the study sets.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medssl3d.reports.bundle_runs import config_keys
from medssl3d.reports.plots import check_spread
from medssl3d.reports.results import pct
from medssl3d.utils.checks import check_int, check_number

__all__ = [
    "SCRATCH",
    "DEFAULT_FRACTIONS",
    "MANAGED_KEYS",
    "PRETRAIN_MANAGED_KEYS",
    "StudySettings",
    "available_methods",
    "label_fraction_percent",
    "check_overrides",
]

PathLike = str | os.PathLike

SCRATCH = "scratch"
"""The method without pretraining: the encoder is fine-tuned from its random initialisation."""

DEFAULT_FRACTIONS: tuple[float, ...] = (5.0, 10.0, 25.0, 50.0, 100.0)
"""Label fractions of Taleb et al. 2020, in percent."""

MANAGED_KEYS = frozenset(
    {"config_file", "bundle_root", "dataset_dir", "output_dir", "label_fraction", "seed", "split_seed"}
    | {"pretrained_encoder", "resume", "meta_file", "logging_file"}
)
"""Bundle keys the study sets itself for a fine-tuning: overriding them would break its bookkeeping."""

PRETRAIN_MANAGED_KEYS = frozenset(
    {"config_file", "bundle_root", "dataset_dir", "output_dir", "split_seed", "resume", "meta_file", "logging_file"}
)
"""What the study sets for a pretraining (``label_fraction`` stays free: a label-using method such as the
labelled triplet may be given the study's fraction with ``"<method>:label_fraction"``)."""

# keys a fine-tuning config must read for the study to mean what it says
REQUIRED_FINETUNE_KEYS = ("dataset_dir", "output_dir", "label_fraction", "seed", "split_seed", "pretrained_encoder")
REQUIRED_PRETRAIN_KEYS = ("dataset_dir", "output_dir")

FRACTION_ADVICE = "fractions are in percent, e.g. 5 10 25 50 100"


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


def label_fraction_percent(value: Any) -> float:
    """A label fraction in percent, in (0, 100]; a numeric string (from a command line) is read as a number.

    Raises:
        ValueError: not a finite number, or outside (0, 100]; the message reminds that fractions are in
            percent (``0.05`` is 0.05 %, not 5 %).
    """
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    try:
        return check_number("label fraction (in percent)", value, minimum=0.0, maximum=100.0, open_min=True)
    except ValueError:
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
            raise ValueError(f"label fraction {value!r} is outside (0, 100]: {FRACTION_ADVICE}.") from None
        raise


def _scoped_key(name: str, key: str, methods: Sequence[str] | None) -> str:
    """The bundle key of an override key, ``"<method>:<key>"`` checked against ``methods``."""
    if ":" not in key:
        return key
    scope, bare = key.split(":", 1)
    if methods is None:
        raise ValueError(f"{name} cannot scope {key!r} to a method; pass a plain key such as 'epochs'.")
    if scope not in methods or scope == SCRATCH or not bare:
        raise ValueError(
            f"{name} has {key!r}: '<method>:<key>' needs one of the pretrained methods "
            f"{[m for m in methods if m != SCRATCH]} and a key, e.g. 'triplet:epochs'."
        )
    return bare


def check_overrides(
    name: str,
    overrides: Mapping[str, Any] | None,
    methods: Sequence[str] | None = None,
    managed: frozenset[str] = MANAGED_KEYS,
) -> dict[str, Any]:
    """Validated bundle overrides of a study.

    Args:
        name: the argument's name, for the messages.
        overrides: bundle keys and JSON values, or ``None`` (none).
        methods: with these, a key may be scoped to one of them as ``"<method>:<key>"``.
        managed: keys the study sets itself, refused.

    Returns:
        the overrides as a new ``dict``.

    Raises:
        ValueError: not a mapping, a key that is not a config key, a bad scope, a managed key, or a value
            that is not plain JSON (it could not be recorded in ``study.json``).
    """
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ValueError(f"{name} must be a mapping of bundle keys to values, got {type(overrides).__name__}.")
    result: dict[str, Any] = {}
    for full_key, value in overrides.items():
        if not isinstance(full_key, str) or not full_key or full_key.startswith("-"):
            raise ValueError(f"{name} has an invalid key {full_key!r}; use bundle config keys such as 'epochs'.")
        key = _scoped_key(name, full_key, methods)
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


@dataclass
class StudySettings:
    """The checked settings of a data-efficiency study; creating one checks them all.

    Paths are given as anything path-like and held resolved; sequences and mappings are held as lists and
    dicts; ``python=None`` is held as this interpreter. The fields after ``pretrain_root`` are read from the
    bundle by the checks.

    Attributes:
        bundle_dir: bundle folder with ``configs/train.json``, ``configs/evaluate.json`` and, for each
            pretext method, ``configs/pretrain_base.json`` + ``configs/pretrain_<method>.json``.
        dataset_dir: the dataset folder passed to every run as ``dataset_dir``.
        study_dir: where everything goes (see :mod:`medssl3d.reports.data_efficiency`).
        methods: ``"scratch"`` and/or pretext task names (see :func:`available_methods`).
        fractions: label fractions in percent, each in (0, 100]; held sorted.
        repeats: runs per (method, fraction), with ``seed`` 0, 1, ... (labelled subset, initialisation,
            augmentation).
        split_seed: the seed of the train/validation/test split, the same for every run, so every run is
            scored on the same test cases.
        metric: headline metric of the table and the plot, or ``"auto"`` (``mean_dice_foreground`` for
            segmentation bundles, ``qwk`` for grading, see :data:`medssl3d.reports.results.HEADLINE_METRICS`).
        spread: band of the plot: ``"minmax"`` or ``"std"``.
        pretrain_overrides: extra bundle keys for every pretraining (e.g. ``{"epochs": 100}``); a key
            ``"<method>:<key>"`` applies to that method only and wins over the plain key (e.g.
            ``{"epochs": 10, "triplet:epochs": 60}``).
        finetune_overrides: extra bundle keys for every fine-tuning and evaluation (e.g. ``{"epochs": 400}``).
        python: the Python executable that runs ``-m monai.bundle`` (default: this one).
        train_config, evaluate_config: the fine-tuning and evaluation config names in ``configs/``.
        progress: show a tqdm progress bar over the runs.
        equal_steps: give every label fraction about the same number of optimisation steps instead of the
            same number of epochs: fine-tuning at fraction ``f`` runs
            ``ceil(epochs * min(100 / f, max_epoch_factor))`` epochs, where ``epochs`` is the
            ``finetune_overrides`` value (required then); ``freeze_encoder_epochs`` and ``val_interval``
            overrides are scaled alike. With equal epochs, a 5 % run takes 20x fewer steps than a 100 % run,
            which on a CPU budget leaves small fractions untrained for every method.
        max_epoch_factor: cap of the epoch multiplier of ``equal_steps`` (>= 1).
        pretrain_root: folder of the pretrained encoders (default ``<study_dir>/pretrain``). Two studies
            with the same bundle, data, ``split_seed`` and pretraining overrides may share it, e.g. a
            linear-probe study and a fine-tuning study of the same encoders.
        configs: ``<bundle_dir>/configs``.
        train_files, evaluate_files: the configs of a fine-tuning (``[train]``) and of its evaluation
            (``[train, evaluate]``, merged in order).
        finetune_resume: whether the fine-tuning config has a ``resume`` key (a stopped training continues).
        pretrain_keys: ``{method: keys its pretraining configs define}`` for every pretext method.

    Raises:
        ValueError: a missing folder or config, an unknown method (the available ones are listed), a
            fraction outside (0, 100], a config that does not read a key the study sets, or an override of
            a key the study sets.
    """

    bundle_dir: Path
    dataset_dir: Path
    study_dir: Path
    methods: list[str] = field(default_factory=lambda: [SCRATCH])
    fractions: list[float] = field(default_factory=lambda: list(DEFAULT_FRACTIONS))
    repeats: int = 3
    split_seed: int = 0
    metric: str = "auto"
    spread: str = "minmax"
    pretrain_overrides: dict[str, Any] = field(default_factory=dict)
    finetune_overrides: dict[str, Any] = field(default_factory=dict)
    python: str | None = None
    train_config: str = "train.json"
    evaluate_config: str = "evaluate.json"
    progress: bool = True
    equal_steps: bool = False
    max_epoch_factor: float = 20.0
    pretrain_root: Path | None = None
    configs: Path = field(init=False)
    train_files: list[Path] = field(init=False)
    evaluate_files: list[Path] = field(init=False)
    finetune_resume: bool = field(init=False)
    pretrain_keys: dict[str, set[str]] = field(init=False)

    def __post_init__(self) -> None:
        self._check_bundle()
        self._check_methods()
        self._check_fractions()
        self.repeats = check_int("repeats", self.repeats, minimum=1)
        self.split_seed = check_int("split_seed", self.split_seed, minimum=0)
        self.metric, self.spread = str(self.metric), check_spread(self.spread)
        self.pretrain_overrides = check_overrides(
            "pretrain_overrides", self.pretrain_overrides, self.methods, PRETRAIN_MANAGED_KEYS
        )
        self.finetune_overrides = check_overrides("finetune_overrides", self.finetune_overrides)
        self._check_folders()
        self._check_python()
        self.progress, self.equal_steps = bool(self.progress), bool(self.equal_steps)
        if self.equal_steps and not isinstance(self.finetune_overrides.get("epochs"), int):
            raise ValueError(
                "equal_steps needs the fine-tuning epochs at 100 % labels: pass finetune_overrides "
                "{'epochs': N} (--finetune-override epochs=N)."
            )
        self.max_epoch_factor = check_number("max_epoch_factor", self.max_epoch_factor, minimum=1)
        self._read_config_keys()

    def _check_bundle(self) -> None:
        self.bundle_dir = Path(os.fspath(self.bundle_dir)).expanduser().resolve()
        self.configs = self.bundle_dir / "configs"
        if not self.configs.is_dir():
            raise ValueError(f"Cannot find bundle configs folder: {self.configs}; pass the bundle folder.")
        self.train_files = [self.configs / self.train_config]
        self.evaluate_files = [self.configs / self.train_config, self.configs / self.evaluate_config]
        for path in self.evaluate_files:
            if not path.is_file():
                raise ValueError(f"Cannot find bundle config {path}; every study fine-tunes and evaluates with it.")

    def _check_methods(self) -> None:
        methods = self.methods
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

    def _check_fractions(self) -> None:
        fractions = self.fractions
        if isinstance(fractions, (str, numbers.Number)) or not isinstance(fractions, Sequence) or not fractions:
            raise ValueError(
                f"fractions must be a non-empty list of percentages, e.g. [5, 10, 25, 50, 100], got {fractions!r}."
            )
        values = [label_fraction_percent(f) for f in fractions]
        if len({pct(f) for f in values}) != len(values):
            raise ValueError(f"fractions lists a label fraction twice: {list(fractions)}.")
        self.fractions = sorted(values)

    def _check_folders(self) -> None:
        self.dataset_dir = Path(os.fspath(self.dataset_dir)).expanduser().resolve()
        if not self.dataset_dir.is_dir():
            raise ValueError(f"Cannot find dataset directory: {self.dataset_dir}; pass the dataset folder.")
        self.study_dir = Path(os.fspath(self.study_dir)).expanduser().resolve()
        if self.study_dir.exists() and not self.study_dir.is_dir():
            raise ValueError(f"study_dir {self.study_dir} exists and is not a folder.")
        root = self.study_dir / "pretrain" if self.pretrain_root is None else Path(os.fspath(self.pretrain_root))
        self.pretrain_root = root.expanduser().resolve()
        if self.pretrain_root.exists() and not self.pretrain_root.is_dir():
            raise ValueError(f"pretrain_root {self.pretrain_root} exists and is not a folder.")

    def _check_python(self) -> None:
        python = sys.executable if self.python is None else os.fspath(self.python)
        if shutil.which(python) is None:
            raise ValueError(f"Cannot find the Python executable {python!r}; pass the one with medssl3d installed.")
        self.python = python

    def _read_config_keys(self) -> None:
        """The keys the bundle's configs define: those the study sets must be read by every config."""
        finetune_keys = config_keys(self.evaluate_files)
        missing = [k for k in REQUIRED_FINETUNE_KEYS if k not in finetune_keys]
        if missing:
            raise ValueError(
                f"{self.train_files[0]} does not define {missing}; the study sets these keys for every run "
                "(without split_seed the test set would change with each repeat's seed)."
            )
        self.finetune_resume = "resume" in config_keys(self.train_files)
        self.pretrain_keys = {}
        for method in self.methods:
            if method == SCRATCH:
                continue
            keys = config_keys(self.pretrain_files(method))
            missing = [k for k in REQUIRED_PRETRAIN_KEYS if k not in keys]
            if missing:
                raise ValueError(f"pretraining configs of {method!r} do not define {missing}; the study sets them.")
            self.pretrain_keys[method] = keys

    def pretrain_files(self, method: str) -> list[Path]:
        """``method``'s pretraining configs, merged in order: ``pretrain_base.json``, ``pretrain_<method>.json``."""
        return [self.configs / "pretrain_base.json", self.configs / f"pretrain_{method}.json"]

    def pretrain_overrides_for(self, method: str) -> dict[str, Any]:
        """The overrides ``method``'s pretraining gets: the plain keys, then its ``"<method>:<key>"`` ones."""
        result = {k: v for k, v in self.pretrain_overrides.items() if ":" not in k}
        prefix = f"{method}:"
        result.update({k[len(prefix) :]: v for k, v in self.pretrain_overrides.items() if k.startswith(prefix)})
        return result
