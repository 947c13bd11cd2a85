"""The records that let a data-efficiency study resume safely: ``study.json`` and ``pretrain.json``.

A study's results are only comparable when every run had the same bundle, data, ``split_seed`` and
overrides. ``<study>/study.json`` records those settings when a study starts, and ``<pretrain_root>/pretrain.json``
records what the pretrained encoders depend on (several studies may share them). A study created on a folder
recorded with other settings is refused (:func:`check_study_records`); adding methods, fractions or
repeats is not a change of settings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medssl3d.reports.study_settings import StudySettings
from medssl3d.utils.io import atomic_write_json

__all__ = [
    "STUDY_JSON",
    "PRETRAIN_JSON",
    "study_record",
    "pretrain_record",
    "check_recorded_settings",
    "check_study_records",
    "write_study_records",
]

STUDY_JSON = "study.json"
PRETRAIN_JSON = "pretrain.json"


def study_record(settings: StudySettings) -> dict[str, Any]:
    """What must not change between a study and its resumption (``"settings"`` of ``study.json``)."""
    return {
        "bundle_dir": str(settings.bundle_dir),
        "dataset_dir": str(settings.dataset_dir),
        "split_seed": settings.split_seed,
        "train_config": settings.train_files[0].name,
        "evaluate_config": settings.evaluate_files[1].name,
        "pretrain_overrides": settings.pretrain_overrides,
        "finetune_overrides": settings.finetune_overrides,
        "equal_steps": settings.equal_steps,
        "max_epoch_factor": settings.max_epoch_factor,
        "pretrain_root": str(settings.pretrain_root),
    }


def pretrain_record(settings: StudySettings) -> dict[str, Any]:
    """What every study sharing ``pretrain_root`` must agree on (``"settings"`` of ``pretrain.json``)."""
    return {
        "bundle_dir": str(settings.bundle_dir),
        "dataset_dir": str(settings.dataset_dir),
        "split_seed": settings.split_seed,
        "pretrain_overrides": settings.pretrain_overrides,
    }


def check_recorded_settings(
    path: Path,
    ours: Mapping[str, Any],
    unreadable: str,
    differs: str,
    advice: str,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Refuse to go on when ``path`` (a JSON file with ``"settings"``) recorded settings other than ``ours``.

    Resuming a study, or sharing pretrained encoders, is only meaningful with the settings its runs had.

    Args:
        path: the record (nothing is checked when it does not exist yet).
        ours: the settings now, e.g. :meth:`StudySettings.recorded`.
        unreadable: advice when the record cannot be read.
        differs: what a difference means, the start of the message.
        advice: what to do about a difference, the end of the message.
        defaults: values of settings that older records lack.

    Raises:
        ValueError: the record is unreadable, or a setting differs (each one is listed, recorded and now).
    """
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


def check_study_records(settings: StudySettings) -> None:
    """Refuse a ``study_dir`` or a ``pretrain_root`` whose record holds other settings than ``settings``.

    Raises:
        ValueError: an unreadable record, or the settings that differ (recorded and now).
    """
    study_dir = settings.study_dir
    check_recorded_settings(
        study_dir / STUDY_JSON,
        study_record(settings),
        unreadable=f"delete it only if the runs in {study_dir} match",
        differs=f"{study_dir} holds a study run with other settings",
        advice="its results would not be comparable. Use a new study_dir, or the recorded settings to resume it.",
        # studies recorded before pretrain_root existed used <study>/pretrain
        defaults={"pretrain_root": str(study_dir / "pretrain")},
    )
    check_recorded_settings(
        settings.pretrain_root / PRETRAIN_JSON,
        pretrain_record(settings),
        unreadable="delete it only if the encoders in it match",
        differs=f"{settings.pretrain_root} holds encoders pretrained with other settings",
        advice="use another pretrain_root, or the recorded settings.",
    )


def write_study_records(settings: StudySettings, pretraining: bool) -> None:
    """Create ``study_dir`` and write ``study.json`` (with the methods, fractions and repeats of this run), and
    ``pretrain.json`` in ``pretrain_root`` when this run pretrains."""
    settings.study_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        {
            "settings": study_record(settings),
            "methods": settings.methods,
            "fractions": settings.fractions,
            "repeats": settings.repeats,
            "python": settings.python,
        },
        settings.study_dir / STUDY_JSON,
    )
    if pretraining:
        atomic_write_json({"settings": pretrain_record(settings)}, settings.pretrain_root / PRETRAIN_JSON)
