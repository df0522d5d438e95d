"""Every report, rendered from what study, evaluation and training computed.

- ``reporting.study``: the study report (``ctcmon describe --out``);
- ``reporting.leadtime``: the lead-time report and its MLflow run (``ctcmon leadtime``);
- ``build_model_report``: the model report (``ctcmon report``), TRIPOD+AI items from the
  model's MLflow run.

One jinja environment (``reporting.environment``), template files in ``templates/``, one
stylesheet and one set of number formats (``reporting.filters``).
"""

from reporting.api import ReportResult, build_model_report

__all__ = ["ReportResult", "build_model_report"]
