"""The packaged model: a RiskPipeline as an MLflow pyfunc whose input is patient histories.

Serving loads exactly this artifact (``load_pipeline``) and calls the pipeline directly;
other MLflow consumers (``mlflow models serve``, batch ``pyfunc.predict``) go through
``predict``, whose typed signature MLflow derives from the pydantic records. The code is
referenced by import: ctcmon must be installed where the model is loaded.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel

from cohort.records import PatientHistory
from models.pipeline import RiskPipeline

MODEL_ARTIFACT = "model"


class CtcmonRiskModel(PythonModel):
    """pyfunc wrapper: list of patient histories in, list of assessments out."""

    def __init__(self, pipeline: RiskPipeline) -> None:
        self.pipeline = pipeline

    # MLflow 3 lets ``predict`` omit the context argument and derives the signature from
    # these type hints; mypy only sees the older base signature.
    def predict(  # type: ignore[override]
        self, model_input: list[PatientHistory], params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """One assessment per history, as of its ``as_of`` date."""
        return [self.pipeline.assess(h) for h in model_input]


def load_pipeline(model_uri: str) -> RiskPipeline:
    """The RiskPipeline inside a packaged ctcmon model (``models:/name@alias``, ``runs:/…``)."""
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except (MlflowException, OSError) as exc:
        raise ValueError(
            f"cannot load model {model_uri!r} from {mlflow.get_tracking_uri()}: {exc}"
        ) from exc
    inner = model.unwrap_python_model()
    if not isinstance(inner, CtcmonRiskModel):
        raise ValueError(f"{model_uri!r} is not a ctcmon risk model (found {type(inner).__name__})")
    return inner.pipeline
