"""Tests of medssl3d.reports.benchmark: timing loop, Markdown tables and owned sections of a Markdown file."""

from __future__ import annotations

import time

import numpy as np
import pytest

from medssl3d.reports import markdown_table, time_steps, update_markdown_section
from medssl3d.reports.benchmark import peak_rss_gb

# ---------------------------------------------------------------- time_steps


class _Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


# (repeats, warmup, expected number of calls)
TIME_CASES = [(5, 2, 7), (1, 0, 1), (3, -4, 3), (4, 1, 5)]


@pytest.mark.parametrize("repeats,warmup,expected_calls", TIME_CASES)
def test_time_steps_call_counts(repeats, warmup, expected_calls):
    step = _Counter()
    result = time_steps(step, repeats=repeats, warmup=warmup)
    assert step.calls == expected_calls
    assert set(result) == {"median_s", "min_s", "max_s", "cpu_util"}
    assert 0.0 <= result["min_s"] <= result["median_s"] <= result["max_s"]
    assert result["cpu_util"] >= 0.0


def test_time_steps_defaults_and_warmup_untimed():
    calls = []

    def step():
        calls.append(time.perf_counter())
        time.sleep(0.2 if len(calls) <= 2 else 0.002)  # only the two warm-up calls are slow

    result = time_steps(step)
    assert len(calls) == 7  # warmup=2, repeats=5
    assert 0.002 <= result["min_s"] and result["max_s"] < 0.2  # the slow warm-up was not timed
    assert result["cpu_util"] < 1.0  # sleeping burns no CPU


@pytest.mark.parametrize("repeats", [0, -1])
def test_time_steps_bad_repeats(repeats):
    step = _Counter()
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        time_steps(step, repeats=repeats)
    assert step.calls == 0  # rejected before any warm-up


def test_peak_rss_positive():
    assert 0.0 < peak_rss_gb() < 1024.0


# ---------------------------------------------------------------- markdown_table


TABLE_CASES = [
    (
        [{"a": 1, "b": 0.12345}],
        None,
        "| a | b |\n|---|---|\n| 1 | 0.123 |\n",
    ),
    (
        [{"model": "unet", "time_s": 1234.5, "util": 2.0}, {"model": "vit", "time_s": 0.0004567, "util": 1.987}],
        None,
        "| model | time_s | util |\n|---|---|---|\n| unet | 1.23e+03 | 2 |\n| vit | 0.000457 | 1.99 |\n",
    ),
    (  # explicit column order, a missing key, and a column absent from the first row
        [{"a": 1, "b": 2}, {"a": 3, "c": "x"}],
        ["c", "a"],
        "| c | a |\n|---|---|\n|  | 1 |\n| x | 3 |\n",
    ),
    (  # ints, bools and None are printed as they are; numpy float64 is a float
        [{"n": 10, "ok": True, "v": None, "f": np.float64(3.14159)}],
        None,
        "| n | ok | v | f |\n|---|---|---|---|\n| 10 | True | None | 3.14 |\n",
    ),
]


@pytest.mark.parametrize("rows,columns,expected", TABLE_CASES)
def test_markdown_table(rows, columns, expected):
    assert markdown_table(rows, columns) == expected


@pytest.mark.parametrize("rows", [[], ()])
def test_markdown_table_empty(rows):
    assert markdown_table(rows) == "(no rows)\n"
    assert markdown_table(rows, ["a", "b"]) == "(no rows)\n"


def test_markdown_table_numpy_float32():
    assert markdown_table([{"t": np.float32(0.123456)}]) == "| t |\n|---|\n| 0.123 |\n"


# ---------------------------------------------------------------- update_markdown_section


def test_update_section_new_file(tmp_path):
    path = update_markdown_section(tmp_path / "docs" / "benchmarks.md", "ssl", "| a |\n|---|\n| 1 |\n", title="SSL")
    assert path == tmp_path / "docs" / "benchmarks.md"
    assert path.read_text() == (
        "# Benchmarks\n\n<!-- ssl:start -->\n## SSL\n\n| a |\n|---|\n| 1 |\n<!-- ssl:end -->\n"
    )


def test_update_section_without_title(tmp_path):
    path = update_markdown_section(tmp_path / "b.md", "x", "body\n\n\n")
    assert path.read_text() == "# Benchmarks\n\n<!-- x:start -->\nbody\n<!-- x:end -->\n"


def test_update_section_appends_when_absent(tmp_path):
    path = tmp_path / "b.md"
    path.write_text("# Results\n\nIntro text.\n\n")
    update_markdown_section(path, "seg", "new body")
    assert path.read_text() == "# Results\n\nIntro text.\n\n<!-- seg:start -->\nnew body\n<!-- seg:end -->\n"


ORIGINAL = (
    "# Benchmarks\n\nIntro.\n\n"
    "<!-- a:start -->\n## A\n\nold a\n<!-- a:end -->\n\n"
    "Between the sections.\n\n"
    "<!-- b:start -->\nold b\n<!-- b:end -->\n\n"
    "Footer.\n"
)


def test_update_section_replaces_in_place_and_keeps_others(tmp_path):
    path = tmp_path / "b.md"
    path.write_text(ORIGINAL)
    update_markdown_section(path, "a", "new a\nsecond line", title="A v2")
    expected = ORIGINAL.replace("## A\n\nold a\n", "## A v2\n\nnew a\nsecond line\n")
    assert path.read_text() == expected
    update_markdown_section(path, "b", "new b")
    assert path.read_text() == expected.replace("old b", "new b")


def test_update_section_idempotent(tmp_path):
    path = tmp_path / "b.md"
    path.write_text(ORIGINAL)
    update_markdown_section(path, "c", "c body", title="C")
    once = path.read_text()
    update_markdown_section(path, "c", "c body", title="C")
    update_markdown_section(path, "a", "old a", title="A")  # same content as already there
    assert path.read_text() == once
    assert once.count("<!-- c:start -->") == 1
    assert once.startswith(ORIGINAL.rstrip())


def test_update_section_body_is_literal(tmp_path):
    path = tmp_path / "b.md"
    path.write_text(ORIGINAL)
    body = r"path C:\new\1 \g<0> $1 (.*?)"  # regex replacement syntax must not be interpreted
    update_markdown_section(path, "b", body)
    assert f"<!-- b:start -->\n{body}\n<!-- b:end -->" in path.read_text()


def test_update_section_name_is_not_a_regex(tmp_path):
    path = tmp_path / "b.md"
    text = "# Benchmarks\n\n<!-- aXb:start -->\nkeep\n<!-- aXb:end -->\n"
    path.write_text(text)
    update_markdown_section(path, "a.b", "other")
    assert path.read_text() == text + "\n<!-- a.b:start -->\nother\n<!-- a.b:end -->\n"


def test_markdown_table_escapes_pipes():
    assert markdown_table([{"a": "x|y"}]) == "| a |\n|---|\n| x\\|y |\n"
