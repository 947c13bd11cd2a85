"""Tests of medssl3d.reports.data_efficiency and scripts/data_efficiency.py.

Most tests drive the study with an in-process fake launcher on a fake bundle (JSON configs only); one test
runs the same fake bundle through the real ``python -m monai.bundle run`` end to end.
"""

from __future__ import annotations

import csv
import json
import math
import os
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medssl3d.reports.bundle_runs import BundleRunError, parse_override, subprocess_launcher
from medssl3d.reports.bundle_runs import cli_value as _cli_value
from medssl3d.reports.bundle_runs import shell_join as _shell_join
from medssl3d.reports.data_efficiency import DataEfficiencyStudy
from medssl3d.reports.results import flatten_metrics, read_results, results_markdown, summarise_results
from medssl3d.reports.study_report import write_report
from medssl3d.reports.study_settings import available_methods

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Fake bundle: every config runs in a blink under `python -m monai.bundle run` and writes what the real
# bundles write (encoder.pt, model.pt, metrics.json). Scores: label_fraction + 0.2 with an encoder file + 0.01 * seed.
FAKE_CONFIGS = {
    "metadata.json": {"version": "0.1.0"},
    "pretrain_base.json": {
        "imports": ["$import json", "$import pathlib"],
        "dataset_dir": "",
        "output_dir": "",
        "split_seed": 0,
        "epochs": 1,
        "task": "",
        "run": [
            "$pathlib.Path(@output_dir).mkdir(parents=True, exist_ok=True)",
            "$pathlib.Path(@output_dir, 'encoder.pt').write_text(json.dumps({'task': @task, 'split_seed': @split_seed, "
            "'epochs': @epochs, 'dataset_dir': @dataset_dir}))",
        ],
    },
    "pretrain_rotation.json": {"task": "rotation"},
    "pretrain_jigsaw.json": {"task": "jigsaw"},
    "train.json": {
        "imports": ["$import json", "$import pathlib"],
        "dataset_dir": "",
        "output_dir": "",
        "label_fraction": 1.0,
        "seed": 0,
        "split_seed": 0,
        "pretrained_encoder": "",
        "resume": False,
        "epochs": 1,
        "run": [
            "$pathlib.Path(@output_dir).mkdir(parents=True, exist_ok=True)",
            "$pathlib.Path(@output_dir, 'model.pt').write_text(json.dumps({'label_fraction': @label_fraction, "
            "'seed': @seed, 'split_seed': @split_seed, 'encoder': @pretrained_encoder, 'epochs': @epochs, "
            "'resume': @resume}))",
        ],
    },
    "evaluate.json": {
        "run": [
            "$pathlib.Path(@output_dir, 'model.pt').read_text()",
            "$pathlib.Path(@output_dir, 'metrics.json').write_text(json.dumps({'dice_per_class': {'background': 0.9, "
            "'organ': @label_fraction, 'tumour': None}, 'mean_dice_foreground': @label_fraction + "
            "(0.2 if pathlib.Path(@pretrained_encoder).is_file() else 0.0) + 0.01 * @seed, 'num_classes': 3, "
            "'checkpoint': @output_dir + '/model.pt', 'label_fraction': @label_fraction}))",
        ]
    },
}


def make_bundle(root: Path, drop: tuple[str, ...] = (), edit: dict | None = None) -> Path:
    (root / "configs").mkdir(parents=True)
    for name, content in FAKE_CONFIGS.items():
        if name in drop:
            continue
        content = dict(content, **(edit or {}).get(name, {}))
        (root / "configs" / name).write_text(json.dumps(content, indent=2))
    return root


def score(fraction_pct: float, method: str, repeat: int) -> float:
    return fraction_pct / 100 + (0.0 if method == "scratch" else 0.2) + 0.01 * repeat


def cli_args(cmd: list[str]) -> dict:
    """The ``--key value`` pairs of a monai.bundle command, values read back as python-fire would."""
    from fire.parser import DefaultParseValue

    start = cmd.index("run") + 1
    return {cmd[i][2:]: DefaultParseValue(cmd[i + 1]) for i in range(start, len(cmd), 2)}


class FakeLauncher:
    """Does in-process what the fake bundle's configs do; records every command; can fail or stop."""

    def __init__(self, fail_at: int | None = None, interrupt_at: int | None = None, fail_stage: str | None = None):
        self.calls: list[dict] = []
        self.fail_at, self.interrupt_at, self.fail_stage = fail_at, interrupt_at, fail_stage

    def stages(self) -> list[str]:
        return [c["stage"] for c in self.calls]

    def __call__(self, cmd, log_path: Path) -> int:
        args = cli_args(list(cmd))
        files = args["config_file"] if isinstance(args["config_file"], list) else [args["config_file"]]
        names = [Path(f).name for f in files]
        stage = "pretrain" if "pretrain_base.json" in names else "evaluate" if "evaluate.json" in names else "train"
        self.calls.append({"stage": stage, "args": args, "cmd": list(cmd), "log": Path(log_path)})
        n = len(self.calls)
        if n == self.interrupt_at:
            raise KeyboardInterrupt
        Path(log_path).write_text(f"start {stage}\n" + "".join(f"line {i}\n" for i in range(60)))
        if n == self.fail_at or stage == self.fail_stage:
            with open(log_path, "a") as f:
                f.write("RuntimeError: out of memory\n")
            return 3
        out = Path(args["output_dir"])
        out.mkdir(parents=True, exist_ok=True)
        if stage == "pretrain":
            (out / "encoder.pt").write_text(names[-1])
        elif stage == "train":
            (out / "checkpoints").mkdir(exist_ok=True)
            (out / "checkpoints" / "checkpoint_epoch=1.pt").write_text("x")
            (out / "model.pt").write_text("model")
        else:
            encoder = args["pretrained_encoder"]
            value = args["label_fraction"] + (0.2 if encoder and Path(encoder).is_file() else 0.0) + 0.01 * args["seed"]
            metrics = {
                "dice_per_class": {"background": 0.9, "organ": args["label_fraction"], "tumour": None},
                "mean_dice_foreground": value,
                "num_classes": 3,
                "checkpoint": str(out / "model.pt"),
            }
            (out / "metrics.json").write_text(json.dumps(metrics))
        return 0


@pytest.fixture
def bundle(tmp_path) -> Path:
    return make_bundle(tmp_path / "fake_bundle")


@pytest.fixture
def data(tmp_path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


def make_study(bundle, data, study, launcher, **kw) -> DataEfficiencyStudy:
    kw.setdefault("methods", ["scratch", "rotation", "jigsaw"])
    kw.setdefault("fractions", [10, 50, 100])
    kw.setdefault("repeats", 2)
    return DataEfficiencyStudy(bundle, data, study, launcher=launcher, progress=False, **kw)


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_full_study(bundle, data, tmp_path):
    launcher = FakeLauncher()
    study = make_study(bundle, data, tmp_path / "study", launcher, split_seed=7, finetune_overrides={"epochs": 3})
    report = study.run()

    # every pretext task pretrained exactly once, before any fine-tuning; then train + evaluate per run
    stages = launcher.stages()
    assert stages[:2] == ["pretrain", "pretrain"] and stages[2:] == ["train", "evaluate"] * 18
    assert sorted(Path(c["args"]["output_dir"]).name for c in launcher.calls[:2]) == ["jigsaw", "rotation"]
    for call in launcher.calls[2:]:
        args = call["args"]
        out = Path(args["output_dir"])
        method, repeat, fraction = out.parents[1].name, int(out.name[1:]), float(out.parent.name[1:])
        assert args["seed"] == repeat and args["split_seed"] == 7 and args["epochs"] == 3
        assert args["label_fraction"] == pytest.approx(fraction / 100)
        expected = "" if method == "scratch" else str(tmp_path / "study" / "pretrain" / method / "encoder.pt")
        assert args["pretrained_encoder"] == expected and "resume" not in args
        assert call["log"] == out / f"{call['stage']}.log"
        assert args["bundle_root"] == str(bundle.resolve())

    rows = csv_rows(tmp_path / "study" / "results.csv")
    assert list(rows[0])[:4] == ["method", "fraction", "repeat", "dice_per_class.background"]
    assert "num_classes" not in rows[0] and "checkpoint" not in rows[0] and rows[0]["dice_per_class.tumour"] == ""
    combos = {(r["method"], r["fraction"], r["repeat"]) for r in rows}
    assert combos == {
        (m, f, str(r)) for m in ("scratch", "rotation", "jigsaw") for f in ("10", "50", "100") for r in (0, 1)
    }
    for r in rows:
        assert float(r["mean_dice_foreground"]) == pytest.approx(
            score(float(r["fraction"]), r["method"], int(r["repeat"]))
        )

    assert report.metric == "mean_dice_foreground"
    assert report.plot_path.read_bytes()[:8] == PNG_SIGNATURE and report.plot_path.stat().st_size > 10_000
    assert report.markdown == (tmp_path / "study" / "results.md").read_text(encoding="utf-8")
    lines = report.markdown.splitlines()
    assert lines[2] == "| method | 10 % | 50 % | 100 % |"
    # scratch at 10 %: 0.10 and 0.11 -> mean 0.105, sample std 0.00707
    assert lines[4] == "| scratch | 0.105 ± 0.007 | 0.505 ± 0.007 | 1.005 ± 0.007 |"
    assert lines[5].startswith("| rotation | 0.305 ± 0.007 |")
    settings = json.loads((tmp_path / "study" / "study.json").read_text())["settings"]
    assert settings["split_seed"] == 7 and settings["finetune_overrides"] == {"epochs": 3}


def test_resume_after_interruption(bundle, data, tmp_path):
    study_dir = tmp_path / "study"
    first = FakeLauncher(interrupt_at=9)  # 2 pretrainings, 3 finished runs, then stopped in a training
    with pytest.raises(KeyboardInterrupt):
        make_study(bundle, data, study_dir, first).run()
    assert len(csv_rows(study_dir / "results.csv")) == 3

    second = FakeLauncher()
    make_study(bundle, data, study_dir, second).run()
    assert "pretrain" not in second.stages()  # encoder.pt exists
    assert len(second.calls) == 2 * (18 - 3)
    rows = csv_rows(study_dir / "results.csv")
    assert len(rows) == 18 and len({(r["method"], r["fraction"], r["repeat"]) for r in rows}) == 18

    third = FakeLauncher()  # everything done: nothing launched, report rewritten
    report = make_study(bundle, data, study_dir, third).run()
    assert third.calls == [] and len(report.rows) == 18


def test_resume_partial_finetunes(bundle, data, tmp_path):
    study_dir = tmp_path / "study"
    kw = {"methods": ["scratch"], "fractions": [50, 100], "repeats": 1}
    # stop in the evaluation of the second run: its training finished (train_done.json)
    first = FakeLauncher(interrupt_at=4)
    with pytest.raises(KeyboardInterrupt):
        make_study(bundle, data, study_dir, first, **kw).run()
    assert (study_dir / "finetune/scratch/f100/r0/train_done.json").is_file()
    second = FakeLauncher()
    plan = make_study(bundle, data, study_dir, second, **kw).plan()
    assert [job.action for job in plan] == ["done", "evaluate"]
    make_study(bundle, data, study_dir, second, **kw).run()
    assert second.stages() == ["evaluate"]

    # a training stopped mid-way (checkpoints, no train_done.json) continues with resume=True
    out = study_dir / "finetune/scratch/f25/r0"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint_epoch=3.pt").write_text("x")
    third = FakeLauncher()
    make_study(bundle, data, study_dir, third, **{**kw, "fractions": [25, 50, 100]}).run()
    assert third.stages() == ["train", "evaluate"] and third.calls[0]["args"]["resume"] is True
    assert "resume" not in third.calls[1]["args"]

    # metrics.json written after training but the row never saved: collected without launching anything;
    # a metrics.json older than the finished training is stale: evaluated again
    out = study_dir / "finetune/scratch/f10/r0"
    out.mkdir(parents=True)
    (out / "metrics.json").write_text(json.dumps({"mean_dice_foreground": 0.1}))
    os.utime(out / "metrics.json", (1, 1))
    (out / "train_done.json").write_text("{}")
    fourth = FakeLauncher()
    study = make_study(bundle, data, study_dir, fourth, **{**kw, "fractions": [10]})
    assert [job.action for job in study.plan()] == ["evaluate"]
    (out / "metrics.json").write_text(json.dumps({"mean_dice_foreground": 0.42, "dice_per_class": {"a": 0.5}}))
    assert [job.action for job in study.plan()] == ["collect"]
    study.run()
    assert fourth.calls == []
    assert {r["fraction"]: r["mean_dice_foreground"] for r in read_results(study_dir)}[10.0] == 0.42


def test_no_resume_key_means_rerun(tmp_path, data):
    bundle = make_bundle(tmp_path / "b", edit={"train.json": {"resume": None}})
    content = json.loads((bundle / "configs/train.json").read_text())
    del content["resume"]
    (bundle / "configs/train.json").write_text(json.dumps(content))
    out = tmp_path / "study/finetune/scratch/f100/r0/checkpoints"
    out.mkdir(parents=True)
    (out / "checkpoint_epoch=1.pt").write_text("x")
    study = make_study(
        bundle, data, tmp_path / "study", FakeLauncher(), methods=["scratch"], fractions=[100], repeats=1
    )
    assert [job.action for job in study.plan()] == ["run"]


def test_failure_names_command_and_log(bundle, data, tmp_path):
    launcher = FakeLauncher(fail_at=6)  # the evaluation of the second fine-tuning
    study = make_study(bundle, data, tmp_path / "study", launcher)
    with pytest.raises(BundleRunError) as info:
        study.run()
    err = info.value
    log = tmp_path / "study/finetune/rotation/f10/r0/evaluate.log"
    assert err.log_path == log and err.returncode == 3 and err.command == launcher.calls[-1]["cmd"]
    message = str(err)
    assert f"Log: {log}" in message and "exit code 3" in message and "evaluate of fine-tune rotation at 10 %" in message
    assert "RuntimeError: out of memory" in message and "line 59" in message and "line 5\n" not in message  # tail only
    assert "-m monai.bundle run --config_file" in message
    assert len(csv_rows(tmp_path / "study/results.csv")) == 1  # finished runs are kept


def test_pretraining_without_encoder_is_an_error(tmp_path, data):
    bundle = make_bundle(tmp_path / "b")
    study = make_study(bundle, data, tmp_path / "study", lambda cmd, log: 0, methods=["rotation"])
    with pytest.raises(BundleRunError, match=r"wrote no .*pretrain/rotation/encoder\.pt"):
        study.run()


def test_dry_run_launches_and_writes_nothing(bundle, data, tmp_path):
    launcher = FakeLauncher()
    study = make_study(bundle, data, tmp_path / "study", launcher)
    text = study.describe_plan()
    assert launcher.calls == [] and not (tmp_path / "study").exists()
    assert text.count("[run] ") == 20 and "jobs: 20 run" in text
    assert "[run] pretrain rotation" in text and "[run] fine-tune jigsaw at 100 % labels, repeat 1" in text
    assert text.count("-m monai.bundle run") == 2 + 36 and "--split_seed 0" in text
    configs = bundle.resolve() / "configs"
    # the commands as printed paste into bash
    assert f"""--config_file "['{configs}/train.json', '{configs}/evaluate.json']" """ in text
    assert "--pretrained_encoder ''" in text
    for job in study.plan():
        for _, cmd, _ in job.commands:
            assert shlex.split(_shell_join(cmd)) == cmd
    assert shlex.split(_shell_join(["a b", "it's", "['x', 'y']", '$"q"'])) == ["a b", "it's", "['x', 'y']", '$"q"']


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"methods": ["scratch", "simclr"]}, r"unknown method\(s\) \['simclr'\].*\['scratch', 'jigsaw', 'rotation'\]"),
        ({"methods": []}, r"methods must be a non-empty list"),
        ({"methods": ["scratch", "scratch"]}, r"lists a method twice"),
        ({"fractions": [0, 50]}, r"label fraction 0 is outside \(0, 100\]"),
        ({"fractions": [150]}, r"outside \(0, 100\]: fractions are in percent"),
        ({"fractions": [10, 10.0]}, r"lists a label fraction twice"),
        ({"fractions": [float("nan")]}, r"must be a number"),
        ({"repeats": 0}, r"repeats must be an integer >= 1"),
        ({"split_seed": -1}, r"split_seed must be an integer >= 0"),
        ({"finetune_overrides": {"seed": 3}}, r"finetune_overrides sets 'seed', which the study sets itself"),
        ({"pretrain_overrides": {"output_dir": "x"}}, r"pretrain_overrides sets 'output_dir'"),
        ({"finetune_overrides": {"x": object()}}, r"not a plain JSON value"),
        ({"spread": "iqr"}, r"spread must be 'minmax' or 'std'"),
        ({"python": "/nonexistent/python3"}, r"Cannot find the Python executable"),
    ],
)
def test_ill_arguments(bundle, data, tmp_path, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_study(bundle, data, tmp_path / "study", FakeLauncher(), **kwargs)


def test_ill_folders_and_configs(tmp_path, data):
    with pytest.raises(ValueError, match=r"Cannot find dataset directory: .*nope"):
        make_study(make_bundle(tmp_path / "b1"), tmp_path / "nope", tmp_path / "s", FakeLauncher())
    with pytest.raises(ValueError, match=r"Cannot find bundle configs folder"):
        make_study(tmp_path / "empty", data, tmp_path / "s", FakeLauncher())
    with pytest.raises(ValueError, match=r"Cannot find bundle config .*evaluate\.json"):
        make_study(make_bundle(tmp_path / "b2", drop=("evaluate.json",)), data, tmp_path / "s", FakeLauncher())
    # without pretrain_base.json only scratch is available
    b3 = make_bundle(tmp_path / "b3", drop=("pretrain_base.json",))
    assert available_methods(b3) == ["scratch"]
    with pytest.raises(
        ValueError, match=r"unknown method\(s\) \['rotation', 'jigsaw'\] for bundle b3; available: \['scratch'\]"
    ):
        make_study(b3, data, tmp_path / "s", FakeLauncher())
    # a fine-tuning config that does not read split_seed would change the test set with every seed
    b4 = make_bundle(tmp_path / "b4")
    content = json.loads((b4 / "configs/train.json").read_text())
    del content["split_seed"]
    (b4 / "configs/train.json").write_text(json.dumps(content))
    with pytest.raises(ValueError, match=r"does not define \['split_seed'\]"):
        make_study(b4, data, tmp_path / "s", FakeLauncher())


def test_resume_with_other_settings_is_refused(bundle, data, tmp_path):
    kw = {"methods": ["scratch"], "fractions": [100], "repeats": 1}
    make_study(bundle, data, tmp_path / "study", FakeLauncher(), **kw).run()
    with pytest.raises(ValueError, match=r"split_seed: recorded 0, now 1"):
        make_study(bundle, data, tmp_path / "study", FakeLauncher(), split_seed=1, **kw)
    # more methods, fractions and repeats extend the same study
    launcher = FakeLauncher()
    make_study(bundle, data, tmp_path / "study", launcher, methods=["scratch"], fractions=[50, 100], repeats=2).run()
    assert len(launcher.calls) == 2 * 3 and len(read_results(tmp_path / "study")) == 4


def test_wrong_metric_fails_after_first_run(bundle, data, tmp_path):
    launcher = FakeLauncher()
    with pytest.raises(ValueError, match=r"metric 'qwk' is not in the results; choose one of \['dice_per_class"):
        make_study(bundle, data, tmp_path / "study", launcher, methods=["scratch"], metric="qwk").run()
    assert len(launcher.calls) == 2
    report = write_report(tmp_path / "study", metric="dice_per_class.organ", spread="std")
    assert report.metric == "dice_per_class.organ" and "`dice_per_class.organ`" in report.markdown


def test_summary_markdown_and_plot_by_hand(tmp_path):
    rows = [
        {"method": "scratch", "fraction": 5.0, "repeat": 0, "qwk": 0.2},
        {"method": "scratch", "fraction": 5.0, "repeat": 1, "qwk": 0.4},
        {"method": "scratch", "fraction": 5.0, "repeat": 2, "qwk": 0.9},
        {"method": "scratch", "fraction": 100.0, "repeat": 0, "qwk": 0.8},
        {"method": "cpc", "fraction": 100.0, "repeat": 0, "qwk": 0.85},
        {"method": "cpc", "fraction": 100.0, "repeat": 1, "qwk": math.nan},
    ]
    summary = summarise_results(rows, "qwk")
    s = summary["scratch"][5.0]
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.5) and s["min"] == 0.2 and s["max"] == 0.9
    assert s["std"] == pytest.approx(np.std([0.2, 0.4, 0.9], ddof=1))
    assert summary["cpc"][100.0] == {"mean": 0.85, "std": 0.0, "min": 0.85, "max": 0.85, "n": 1}
    table = results_markdown(rows, "auto", digits=2).splitlines()
    assert table[0].startswith("`qwk` on the fixed test split") and "3 repeats (seeds 0..2)" in table[0]
    assert table[4] == "| scratch | 0.50 ± 0.36 | 0.80 (n=1) |"
    assert table[5] == "| cpc | – | 0.85 (n=1) |"
    write_report(tmp_path, rows=rows)  # writes results.md and the plot from the given rows
    assert (tmp_path / "data_efficiency.png").read_bytes()[:8] == PNG_SIGNATURE


def test_flatten_parse_and_cli_values():
    metrics = {
        "dice_per_class": {"bg": 0.9, "organ": None},
        "mean_dice_foreground": 0.7,
        "num_classes": 2,
        "metrics": {"val_mean_dice": 0.6},
        "checkpoint": "m.pt",
        "ok": True,
        "qwk": 1,
    }
    assert flatten_metrics(metrics) == {
        "dice_per_class.bg": 0.9,
        "dice_per_class.organ": pytest.approx(math.nan, nan_ok=True),
        "mean_dice_foreground": 0.7,
        "metrics.val_mean_dice": 0.6,
        "qwk": 1.0,
    }
    assert parse_override("patch_size=[32, 32, 32]") == ("patch_size", [32, 32, 32])
    assert parse_override("device=cpu") == ("device", "cpu")
    assert parse_override("spacing=null") == ("spacing", None)
    assert parse_override("group_pattern=(Patient\\d+)") == ("group_pattern", "(Patient\\d+)")
    with pytest.raises(ValueError, match="is not key=value"):
        parse_override("epochs")
    # every value reaches the bundle unchanged through python-fire's parsing of the command line
    from fire.parser import DefaultParseValue

    for value in ["", "1", "True", "/data/Task 07", "it's", 0.05, 3, True, [96, 96, 96], {"a": [1.5, "b"]}]:
        assert DefaultParseValue(_cli_value(value)) == value
    assert _cli_value(None) == "$None"  # fire would read "None" as None, which monai.bundle drops


def test_override_values_reach_a_real_bundle_run_unchanged(tmp_path):
    """Through ``python -m monai.bundle run``: a None override replaces the default (a plain ``None`` is dropped)."""
    from medssl3d.reports.bundle_runs import override_args as _override_args

    values = {"spacing": None, "patch": [32, 48, 32], "name": "1", "path": "/data/Task 07", "flag": True, "lr": 0.05}
    refs = ", ".join(f"@{k}" for k in values)
    config = {**{k: "default" for k in values}, "run": [f"$print('GOT', repr([{refs}]))"]}
    (tmp_path / "c.json").write_text(json.dumps(config), encoding="utf-8")
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(tmp_path / "c.json")]
    got = subprocess.run(cmd + _override_args(values), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    line = next(x for x in got.stdout.splitlines() if x.startswith("GOT "))
    assert line == "GOT " + repr(list(values.values())), got.stdout + got.stderr
    plain = subprocess.run(cmd + ["--spacing", "None"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert next(x for x in plain.stdout.splitlines() if x.startswith("GOT ")).startswith("GOT ['default'")


def test_subprocess_launcher_appends_log(tmp_path):
    log = tmp_path / "run" / "x.log"
    code = subprocess_launcher([sys.executable, "-c", "import sys; print('hello'); sys.exit(4)"], log)
    code2 = subprocess_launcher([sys.executable, "-c", "print('ünïcode')"], log)
    text = log.read_text(encoding="utf-8")
    assert (code, code2) == (4, 0) and text.count("==== ") == 2 and "hello" in text and "ünïcode" in text


def test_cli_dry_run_and_report(bundle, data, tmp_path, capsys):
    main = runpy.run_path(str(ROOT / "scripts" / "data_efficiency.py"))["main"]
    study_dir = tmp_path / "study"
    args = [str(bundle), str(data), "--study-dir", str(study_dir), "--fractions", "10", "100", "--repeats", "1"]
    assert main(args + ["--dry-run", "--finetune-override", "epochs=2"]) == 0
    out = capsys.readouterr().out
    assert "methods ['scratch', 'jigsaw', 'rotation']" in out and "--epochs 2" in out and not study_dir.exists()
    with pytest.raises(SystemExit):
        main(args + ["--methods", "moco", "--dry-run"])
    assert "unknown method(s) ['moco']" in capsys.readouterr().err
    make_study(bundle, data, study_dir, FakeLauncher(), methods=["scratch"], fractions=[10, 100], repeats=1).run()
    bench = tmp_path / "benchmarks.md"
    assert main([str(bundle), "--study-dir", str(study_dir), "--report-only", "--benchmarks", str(bench)]) == 0
    assert "| scratch | 0.100 | 1.000 |" in capsys.readouterr().out  # one repeat: no spread shown
    assert "<!-- data-efficiency-fake_bundle:start -->" in bench.read_text(encoding="utf-8")


def test_end_to_end_with_monai_bundle_run(bundle, data, tmp_path):
    """The real launcher and `python -m monai.bundle run` on the fake bundle: pretrain, fine-tune, evaluate."""
    study = DataEfficiencyStudy(
        bundle,
        data,
        tmp_path / "study",
        methods=["rotation"],
        fractions=[50],
        repeats=1,
        split_seed=3,
        pretrain_overrides={"epochs": 5},
        finetune_overrides={"epochs": 2},
        progress=False,
    )
    report = study.run()
    encoder = json.loads((tmp_path / "study/pretrain/rotation/encoder.pt").read_text())
    assert encoder == {"task": "rotation", "split_seed": 3, "epochs": 5, "dataset_dir": str(data.resolve())}
    out = tmp_path / "study/finetune/rotation/f50/r0"
    model = json.loads((out / "model.pt").read_text())
    assert model == {
        "label_fraction": 0.5,
        "seed": 0,
        "split_seed": 3,
        "encoder": str(tmp_path / "study/pretrain/rotation/encoder.pt"),
        "epochs": 2,
        "resume": False,
    }
    assert (out / "train.log").read_text().startswith("\n==== ") and (out / "evaluate.log").is_file()
    assert report.rows[0]["mean_dice_foreground"] == pytest.approx(0.7)
    assert report.rows[0]["dice_per_class.organ"] == pytest.approx(0.5) and math.isnan(
        report.rows[0]["dice_per_class.tumour"]
    )


def test_equal_steps_scales_finetune_epochs(bundle, data, tmp_path):
    """--equal-steps: a 10 % run gets 10x the epochs of a 100 % run, capped by max_epoch_factor."""
    launcher = FakeLauncher()
    study = make_study(
        bundle,
        data,
        tmp_path / "study",
        launcher,
        methods=["scratch"],
        fractions=[5, 10, 100],
        repeats=1,
        finetune_overrides={"epochs": 3, "freeze_encoder_epochs": 1, "val_interval": 1},
        equal_steps=True,
        max_epoch_factor=15,
    )
    study.run()
    epochs = {
        float(Path(c["args"]["output_dir"]).parent.name[1:]): tuple(
            c["args"][k] for k in ("epochs", "freeze_encoder_epochs", "val_interval")
        )
        for c in launcher.calls
        if c["stage"] == "train"
    }
    # 5 %: 20x capped at 15x; warm-up and validation interval keep 1/3 of the run
    assert epochs == {5.0: (45, 15, 15), 10.0: (30, 10, 10), 100.0: (3, 1, 1)}
    with pytest.raises(ValueError, match="equal_steps needs"):
        make_study(bundle, data, tmp_path / "s2", FakeLauncher(), equal_steps=True)


def test_method_scoped_pretrain_overrides(bundle, data, tmp_path):
    launcher = FakeLauncher()
    overrides = {"epochs": 4, "rotation:epochs": 9, "jigsaw:label_fraction": 0.1}
    make_study(
        bundle, data, tmp_path / "study", launcher, fractions=[100], repeats=1, pretrain_overrides=overrides
    ).run()
    pretrain = {Path(c["args"]["output_dir"]).name: c["args"] for c in launcher.calls if c["stage"] == "pretrain"}
    # the scoped key wins for its method only; label_fraction is free in pretraining (a label-using method)
    assert pretrain["rotation"]["epochs"] == 9 and "label_fraction" not in pretrain["rotation"]
    assert pretrain["jigsaw"]["epochs"] == 4 and pretrain["jigsaw"]["label_fraction"] == 0.1
    assert not any(":" in key for args in pretrain.values() for key in args)
    for c in launcher.calls:
        if c["stage"] != "pretrain":
            assert c["args"]["label_fraction"] == 1.0 and "epochs" not in c["args"]


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        ({"cpc:epochs": 3}, r"'cpc:epochs': '<method>:<key>' needs one of the pretrained methods \['rotation'\]"),
        ({"scratch:epochs": 3}, r"'scratch:epochs'"),
        ({"rotation:": 3}, r"'rotation:'"),
        ({"rotation:output_dir": "x"}, r"pretrain_overrides sets 'output_dir'"),
    ],
)
def test_ill_scoped_overrides(bundle, data, tmp_path, overrides, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_study(
            bundle, data, tmp_path / "s", FakeLauncher(), methods=["scratch", "rotation"], pretrain_overrides=overrides
        )
    with pytest.raises(ValueError, match=r"cannot scope 'rotation:epochs' to a method"):
        make_study(bundle, data, tmp_path / "s", FakeLauncher(), finetune_overrides={"rotation:epochs": 3})


def test_shared_pretrain_root(bundle, data, tmp_path):
    shared = tmp_path / "encoders"
    kw = {"methods": ["scratch", "rotation"], "fractions": [10], "repeats": 1, "pretrain_root": shared}
    first = FakeLauncher()
    make_study(bundle, data, tmp_path / "finetune", first, pretrain_overrides={"epochs": 2}, **kw).run()
    assert first.stages() == ["pretrain", "train", "evaluate", "train", "evaluate"]
    assert (shared / "rotation" / "encoder.pt").is_file() and not (tmp_path / "finetune" / "pretrain").exists()

    # a second study (e.g. a linear probe) reuses the encoders instead of pretraining again
    second = FakeLauncher()
    make_study(
        bundle,
        data,
        tmp_path / "probe",
        second,
        pretrain_overrides={"epochs": 2},
        finetune_overrides={"linear_probe": True},
        **kw,
    ).run()
    assert second.stages() == ["train", "evaluate"] * 2
    assert second.calls[2]["args"]["pretrained_encoder"] == str(shared.resolve() / "rotation" / "encoder.pt")
    # encoders pretrained with other settings are not mixed up
    with pytest.raises(ValueError, match=r"holds encoders pretrained with other settings \(pretrain_overrides"):
        make_study(bundle, data, tmp_path / "other", FakeLauncher(), pretrain_overrides={"epochs": 5}, **kw)
    # nor can a study switch its encoder folder on resumption
    with pytest.raises(ValueError, match=r"pretrain_root: recorded"):
        make_study(bundle, data, tmp_path / "probe", FakeLauncher(), **dict(kw, pretrain_root=tmp_path / "x"))
