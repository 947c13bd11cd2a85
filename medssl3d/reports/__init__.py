"""Reports: benchmark timing and Markdown tables, data-efficiency studies, their results, comparisons and plots.

Modules, one concept each (the lower ones never import the higher ones, and none imports ``data``,
``transforms``, ``nets``, ``tasks``, ``engines`` or ``metrics``):

- ``benchmark``: timing loops and Markdown tables / sections for ``scripts/benchmark.py``;
- ``bundle_runs``: ``monai.bundle run`` command lines, override values, the subprocess launcher, failures;
- ``results``: a study's ``results.csv`` (read, write, metrics of ``metrics.json``), statistics, table;
- ``plots``: every figure (confusion matrix, ROC curves, data-efficiency curves, study comparison);
- ``study_settings``: the checked settings of a data-efficiency study (:class:`StudySettings`);
- ``study_records``: ``study.json`` / ``pretrain.json``, which refuse resuming with other settings;
- ``study_report``: a study's ``results.md`` and ``data_efficiency.png`` (:func:`write_report`);
- ``data_efficiency``: the study itself (:class:`DataEfficiencyStudy`: plan, run, resume);
- ``comparison``: several studies side by side at one label fraction.
"""

from __future__ import annotations


from medssl3d._lazy import lazy_exports

from medssl3d.reports.benchmark import markdown_table, time_steps, update_markdown_section

# loaded on first access: matplotlib and the study runner are not needed by every caller
_EXPORTS: dict[str, str] = {
    "DataEfficiencyStudy": "data_efficiency",
    "StudyJob": "data_efficiency",
    "StudySettings": "study_settings",
    "DEFAULT_FRACTIONS": "study_settings",
    "available_methods": "study_settings",
    "StudyReport": "study_report",
    "write_report": "study_report",
    "BundleRunError": "bundle_runs",
    "parse_override": "bundle_runs",
    "subprocess_launcher": "bundle_runs",
    "HEADLINE_METRICS": "results",
    "flatten_metrics": "results",
    "read_results": "results",
    "resolve_metric": "results",
    "results_markdown": "results",
    "summarise_results": "results",
    "StudyComparison": "comparison",
    "compare_studies": "comparison",
    "plot_comparison": "plots",
    "plot_confusion_matrix": "plots",
    "plot_data_efficiency": "plots",
    "plot_roc_curves": "plots",
}

__all__ = ["markdown_table", "time_steps", "update_markdown_section", *_EXPORTS]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
