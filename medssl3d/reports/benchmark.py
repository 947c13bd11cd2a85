"""Timing and reporting helpers for ``scripts/benchmark.py``.

Timings on a shared 2-core machine are noisy (see the project's performance notes), so every
measurement reports the median over repeats *and* the CPU utilisation (process CPU time divided by
wall time; about 2.0 for two busy threads on a quiet machine) next to it.
"""

from __future__ import annotations

import re
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["time_steps", "peak_rss_gb", "markdown_table", "update_markdown_section"]


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def time_steps(step: Callable[[], Any], repeats: int = 5, warmup: int = 2) -> dict[str, float]:
    """Run ``step`` ``warmup`` times untimed, then ``repeats`` times timed.

    Returns:
        ``{"median_s", "min_s", "max_s", "cpu_util"}`` where ``cpu_util`` is CPU seconds per wall second
        over the timed repeats.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")
    for _ in range(max(0, warmup)):
        step()
    walls = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        walls.append(time.perf_counter() - t)
    cpu_util = (time.process_time() - cpu0) / max(time.perf_counter() - wall0, 1e-9)
    return {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls), "cpu_util": cpu_util}


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Render ``rows`` (dicts) as a GitHub Markdown table; floats get 3 significant digits."""
    if not rows:
        return "(no rows)\n"
    columns = list(columns or rows[0].keys())

    def fmt(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def update_markdown_section(path: str | Path, name: str, body: str, title: str = "") -> Path:
    """Replace (or append) the block between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``.

    Lets several benchmark scripts own their own section of one ``docs/benchmarks.md``.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{('## ' + title + chr(10) + chr(10)) if title else ''}{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return path
