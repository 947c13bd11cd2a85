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

This module plans the study's runs and launches them. Its parts live beside it:
:mod:`~medssl3d.reports.study_settings` (the checked arguments), :mod:`~medssl3d.reports.study_records`
(``study.json``, ``pretrain.json``), :mod:`~medssl3d.reports.bundle_runs` (command lines, launcher, failures),
:mod:`~medssl3d.reports.results` (``results.csv``) and :mod:`~medssl3d.reports.study_report` (``results.md``
and the plot).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from medssl3d.reports.bundle_runs import (
    BundleRunError,
    Launcher,
    bundle_run_command,
    has_checkpoints,
    shell_join,
    subprocess_launcher,
)
from medssl3d.reports.results import (
    RESULTS_CSV,
    pct,
    read_metrics,
    read_results,
    resolve_metric,
    result_key,
    write_results,
)
from medssl3d.reports.study_records import check_study_records, write_study_records
from medssl3d.reports.study_report import StudyReport, write_report
from medssl3d.reports.study_settings import DEFAULT_FRACTIONS, SCRATCH, StudySettings
from medssl3d.utils.io import atomic_write_json

__all__ = ["StudyJob", "DataEfficiencyStudy"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike
Command = tuple[str, list[str], Path]
"""``(stage, command, log_path)``: one command a job launches."""

TRAIN_DONE = "train_done.json"
ENCODER = "encoder.pt"
METRICS = "metrics.json"

_SETTING_NAMES = frozenset(f.name for f in fields(StudySettings))


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
    commands: list[Command] = field(default_factory=list)

    @property
    def name(self) -> str:
        if self.kind == "pretrain":
            return f"pretrain {self.method}"
        return f"fine-tune {self.method} at {self.fraction:g} % labels, repeat {self.repeat}"


class DataEfficiencyStudy:
    """Pretrain every method once, fine-tune each at every label fraction and repeat, collect test metrics.

    Everything is validated when the study is created, before any run starts. :meth:`plan` tells what
    :meth:`run` will do (``--dry-run``), taking finished work in ``study_dir`` into account.

    Every argument but ``launcher`` is a setting, checked and held by
    :class:`~medssl3d.reports.study_settings.StudySettings` (whose attributes say more).

    Args:
        bundle_dir: bundle folder with ``configs/train.json``, ``configs/evaluate.json`` and, for each
            pretext method, ``configs/pretrain_base.json`` + ``configs/pretrain_<method>.json``.
        dataset_dir: the dataset folder passed to every run as ``dataset_dir``.
        study_dir: where everything goes (see the module docstring).
        methods: ``"scratch"`` and/or pretext task names (see :func:`~medssl3d.reports.available_methods`).
        fractions: label fractions in percent, each in (0, 100].
        repeats: runs per (method, fraction), with ``seed`` 0, 1, ...
        split_seed: the seed of the train/validation/test split, the same for every run.
        metric: headline metric of the table and the plot, or ``"auto"``.
        spread: band of the plot: ``"minmax"`` or ``"std"``.
        pretrain_overrides: extra bundle keys for every pretraining; ``"<method>:<key>"`` for one method.
        finetune_overrides: extra bundle keys for every fine-tuning and evaluation (e.g. ``{"epochs": 400}``).
        python: the Python executable that runs ``-m monai.bundle`` (default: this one).
        launcher: ``launcher(command, log_path) -> exit code`` (default
            :func:`~medssl3d.reports.bundle_runs.subprocess_launcher`); tests pass a fake one.
        train_config, evaluate_config: the fine-tuning and evaluation config names in ``configs/``.
        progress: show a tqdm progress bar over the runs.
        equal_steps: scale the fine-tuning epochs by ``100 / fraction`` (capped by ``max_epoch_factor``);
            needs ``finetune_overrides["epochs"]``.
        max_epoch_factor: cap of the epoch multiplier of ``equal_steps``.
        pretrain_root: folder of the pretrained encoders (default ``<study_dir>/pretrain``), shareable by
            studies with the same bundle, data, ``split_seed`` and pretraining overrides.

    Attributes:
        settings: the :class:`~medssl3d.reports.study_settings.StudySettings`; each of them also reads as an
            attribute of the study (``study.methods``, ``study.study_dir``, ...).
        launcher: the launcher of every command.

    Raises:
        ValueError: a setting :class:`~medssl3d.reports.study_settings.StudySettings` refuses, or a
            ``study_dir`` or ``pretrain_root`` recorded with different settings (``study.json``, ``pretrain.json``).

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
        self.settings = StudySettings(
            bundle_dir=bundle_dir,
            dataset_dir=dataset_dir,
            study_dir=study_dir,
            methods=methods,
            fractions=fractions,
            repeats=repeats,
            split_seed=split_seed,
            metric=metric,
            spread=spread,
            pretrain_overrides=pretrain_overrides,
            finetune_overrides=finetune_overrides,
            python=python,
            train_config=train_config,
            evaluate_config=evaluate_config,
            progress=progress,
            equal_steps=equal_steps,
            max_epoch_factor=max_epoch_factor,
            pretrain_root=pretrain_root,
        )
        self.launcher: Launcher = subprocess_launcher if launcher is None else launcher
        check_study_records(self.settings)

    def __getattr__(self, name: str) -> Any:
        """A setting read as an attribute of the study, e.g. ``study.study_dir`` for ``study.settings.study_dir``."""
        if name in _SETTING_NAMES and "settings" in self.__dict__:
            return getattr(self.settings, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- paths and commands

    def pretrain_dir(self, method: str) -> Path:
        """``<pretrain_root>/<method>`` (``<study>/pretrain/<method>`` by default)."""
        return self.settings.pretrain_root / method

    def encoder_path(self, method: str) -> Path:
        """``<pretrain_root>/<method>/encoder.pt``, the encoder a pretext method's fine-tunings start from."""
        return self.pretrain_dir(method) / ENCODER

    def finetune_dir(self, method: str, fraction: float, repeat: int) -> Path:
        """``<study>/finetune/<method>/f<percent>/r<repeat>``."""
        return self.settings.study_dir / "finetune" / method / f"f{pct(fraction)}" / f"r{repeat}"

    @property
    def csv_path(self) -> Path:
        return self.settings.study_dir / RESULTS_CSV

    def _bundle_cmd(self, files: Sequence[Path], overrides: Mapping[str, Any]) -> list[str]:
        return bundle_run_command(self.settings.python, files, self.settings.bundle_dir, overrides)

    def _pretrain_commands(self, method: str, resume: bool) -> list[Command]:
        out = self.pretrain_dir(method)
        overrides: dict[str, Any] = {"dataset_dir": str(self.settings.dataset_dir), "output_dir": str(out)}
        if "split_seed" in self.settings.pretrain_keys[method]:  # lets pretraining leave out the fixed test cases
            overrides["split_seed"] = self.settings.split_seed
        if resume:
            overrides["resume"] = True
        overrides.update(self.settings.pretrain_overrides_for(method))
        command = self._bundle_cmd(self.settings.pretrain_files(method), overrides)
        return [("pretrain", command, out / "pretrain.log")]

    def _finetune_overrides(self, method: str, fraction: float, repeat: int) -> dict[str, Any]:
        return {
            "dataset_dir": str(self.settings.dataset_dir),
            "output_dir": str(self.finetune_dir(method, fraction, repeat)),
            "label_fraction": round(fraction / 100.0, 12),
            "seed": repeat,
            "split_seed": self.settings.split_seed,
            "pretrained_encoder": "" if method == SCRATCH else str(self.encoder_path(method)),
        }

    def finetune_epochs(self, fraction: float) -> int | None:
        """Fine-tuning epochs at ``fraction`` percent under ``equal_steps`` (``None``: the overrides decide)."""
        if not self.settings.equal_steps:
            return None
        factor = min(100.0 / float(fraction), self.settings.max_epoch_factor)
        return int(math.ceil(self.settings.finetune_overrides["epochs"] * factor - 1e-9))

    def _train_overrides(self, base: Mapping[str, Any], fraction: float, resume: bool) -> dict[str, Any]:
        """A fine-tuning's overrides: ``base``, ``resume``, the user's, then the ``equal_steps`` epochs."""
        train = dict(base, **({"resume": True} if resume else {}), **self.settings.finetune_overrides)
        epochs = self.finetune_epochs(fraction)
        if epochs is not None:
            train["epochs"] = epochs
            # the frozen warm-up and the validation interval keep their share of the run
            for key, minimum in (("freeze_encoder_epochs", 0), ("val_interval", 1)):
                if isinstance(train.get(key), int):
                    share = train[key] / self.settings.finetune_overrides["epochs"]
                    train[key] = max(minimum, int(round(share * epochs)))
        return train

    def _finetune_commands(self, method: str, fraction: float, repeat: int, action: str) -> list[Command]:
        out = self.finetune_dir(method, fraction, repeat)
        base = self._finetune_overrides(method, fraction, repeat)
        commands = []
        if action in ("run", "resume"):
            train = self._train_overrides(base, fraction, resume=action == "resume")
            commands.append(("train", self._bundle_cmd(self.settings.train_files, train), out / "train.log"))
        if action in ("run", "resume", "evaluate"):
            evaluate = self._bundle_cmd(self.settings.evaluate_files, dict(base, **self.settings.finetune_overrides))
            commands.append(("evaluate", evaluate, out / "evaluate.log"))
        return commands

    # -- planning

    def _existing_rows(self) -> list[dict[str, Any]]:
        return read_results(self.csv_path) if self.csv_path.is_file() else []

    def plan(self) -> list[StudyJob]:
        """Every pretraining and fine-tuning of the study with what :meth:`run` would do now.

        Pretrainings come first; fine-tunings are ordered by repeat, then fraction, then method, so the
        first complete curve appears early.
        """
        return self._pretrain_jobs() + self._finetune_jobs()

    def _pretrain_jobs(self) -> list[StudyJob]:
        jobs: list[StudyJob] = []
        for method in self.settings.methods:
            if method == SCRATCH:
                continue
            out = self.pretrain_dir(method)
            if self.encoder_path(method).is_file():
                action = "done"
            else:
                resumable = "resume" in self.settings.pretrain_keys[method] and has_checkpoints(out)
                action = "resume" if resumable else "run"
            commands = [] if action == "done" else self._pretrain_commands(method, action == "resume")
            jobs.append(StudyJob("pretrain", method, None, None, out, action, commands))
        return jobs

    def _finetune_action(self, out: Path, in_results: bool) -> str:
        """What a fine-tuning in ``out`` needs now (see :attr:`StudyJob.action`)."""
        if in_results:
            return "done"
        if (out / TRAIN_DONE).is_file():
            metrics = out / METRICS
            fresh = metrics.is_file() and metrics.stat().st_mtime >= (out / TRAIN_DONE).stat().st_mtime
            return "collect" if fresh else "evaluate"
        if self.settings.finetune_resume and has_checkpoints(out):
            return "resume"
        return "run"

    def _finetune_jobs(self) -> list[StudyJob]:
        finished = {result_key(r["method"], r["fraction"], r["repeat"]) for r in self._existing_rows()}
        jobs: list[StudyJob] = []
        for repeat in range(self.settings.repeats):
            for fraction in self.settings.fractions:
                for method in self.settings.methods:
                    out = self.finetune_dir(method, fraction, repeat)
                    action = self._finetune_action(out, result_key(method, fraction, repeat) in finished)
                    commands = self._finetune_commands(method, fraction, repeat, action)
                    jobs.append(StudyJob("finetune", method, fraction, repeat, out, action, commands))
        return jobs

    def describe_plan(self, jobs: Sequence[StudyJob] | None = None) -> str:
        """The plan as text: one line per job with its action, then its commands (what ``--dry-run`` prints)."""
        jobs = self.plan() if jobs is None else jobs
        counts: dict[str, int] = {}
        for job in jobs:
            counts[job.action] = counts.get(job.action, 0) + 1
        s = self.settings
        lines = [
            f"Data-efficiency study in {s.study_dir}",
            f"  bundle {s.bundle_dir}, data {s.dataset_dir}, split_seed {s.split_seed}",
            f"  methods {s.methods}, fractions {[pct(f) for f in s.fractions]} %, repeats {s.repeats}",
            "  jobs: " + ", ".join(f"{n} {a}" for a, n in counts.items()),
        ]
        for job in jobs:
            lines.append(f"[{job.action}] {job.name}")
            for stage, cmd, log in job.commands:
                lines.append(f"    {stage}: {shell_join(cmd)}")
                lines.append(f"        log: {log}")
        return "\n".join(lines) + "\n"

    # -- running

    def _launch(self, job: StudyJob, stage: str, cmd: list[str], log: Path) -> None:
        logger.info("%s: %s (log %s)", job.name, shell_join(cmd), log)
        log.parent.mkdir(parents=True, exist_ok=True)
        code = self.launcher(cmd, log)
        if code != 0:
            raise BundleRunError(f"{stage} of {job.name}", cmd, log, code)

    def _run_pretrain(self, job: StudyJob) -> None:
        for stage, cmd, log in job.commands:
            self._launch(job, stage, cmd, log)
        encoder = self.encoder_path(job.method)
        if not encoder.is_file():
            stage, cmd, log = job.commands[-1]
            raise BundleRunError(
                f"pretraining of {job.method}", cmd, log, 0, hint=f"it exited normally but wrote no {encoder}"
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
        return {"method": job.method, "fraction": job.fraction, "repeat": job.repeat, **read_metrics(metrics_path)}

    def run(self) -> StudyReport:
        """Run (or continue) the study, then write ``results.md`` and the plot (see :meth:`describe_plan`
        for a dry run).

        ``results.csv`` is rewritten (atomically) after every finished fine-tuning, so an interrupted study
        loses at most the run in progress.

        Returns:
            the :class:`~medssl3d.reports.study_report.StudyReport`.

        Raises:
            BundleRunError: a command failed or did not write its output; the message names the command and
                its log and shows the log's last lines. Finished runs stay in ``results.csv``.
            ValueError: ``metric`` is not in the first ``metrics.json`` collected (raised after that run).
        """
        s = self.settings
        jobs = self.plan()
        write_study_records(s, pretraining=any(job.kind == "pretrain" for job in jobs))
        rows = self._existing_rows()
        todo = [job for job in jobs if job.action != "done"]
        logger.info("%d of %d jobs to do in %s", len(todo), len(jobs), s.study_dir)
        from tqdm.auto import tqdm

        with tqdm(total=len(todo), desc="data-efficiency study", unit="run", disable=not s.progress) as bar:
            for job in todo:
                bar.set_postfix_str(job.name)
                if job.kind == "pretrain":
                    self._run_pretrain(job)
                else:
                    rows.append(self._run_finetune(job))
                    write_results(self.csv_path, rows)
                    resolve_metric(rows, s.metric)  # a wrong metric name fails after one run, not at the end
                bar.update(1)
        if not rows:
            raise ValueError("the study has no fine-tuning results to report.")
        if not self.csv_path.is_file():
            write_results(self.csv_path, rows)
        return write_report(s.study_dir, metric=s.metric, spread=s.spread, rows=rows)
