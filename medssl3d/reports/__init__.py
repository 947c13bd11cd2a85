"""Reports: benchmark timing helpers, Markdown table writers, data-efficiency studies and plots."""

from __future__ import annotations


from medssl3d._lazy import lazy_exports

from medssl3d.reports.benchmark import markdown_table, time_steps, update_markdown_section

# loaded on first access: matplotlib and the study runner are not needed by every caller
_EXPORTS: dict[str, str] = {
    "DataEfficiencyStudy": "data_efficiency",
    "BundleRunError": "data_efficiency",
    "StudyJob": "data_efficiency",
    "StudyReport": "data_efficiency",
    "DEFAULT_FRACTIONS": "data_efficiency",
    "HEADLINE_METRICS": "data_efficiency",
    "available_methods": "data_efficiency",
    "flatten_metrics": "data_efficiency",
    "parse_override": "data_efficiency",
    "plot_data_efficiency": "data_efficiency",
    "read_results": "data_efficiency",
    "resolve_metric": "data_efficiency",
    "results_markdown": "data_efficiency",
    "subprocess_launcher": "data_efficiency",
    "summarise_results": "data_efficiency",
    "write_report": "data_efficiency",
    "StudyComparison": "comparison",
    "compare_studies": "comparison",
    "plot_confusion_matrix": "plots",
    "plot_roc_curves": "plots",
}

__all__ = ["markdown_table", "time_steps", "update_markdown_section", *_EXPORTS]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
