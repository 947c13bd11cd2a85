"""Reports: benchmark timing helpers and Markdown table writers (data-efficiency studies come later)."""

from __future__ import annotations

from medssl3d.reports.benchmark import markdown_table, time_steps, update_markdown_section

__all__ = ["markdown_table", "time_steps", "update_markdown_section"]
