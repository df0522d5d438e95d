"""The model report (``ctcmon report``): TRIPOD+AI items from the model's MLflow run."""

from reporting.api import ReportResult, build_model_report

__all__ = ["ReportResult", "build_model_report"]
