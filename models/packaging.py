"""The packaged model: a RiskPipeline as an MLflow pyfunc whose input is patient histories.

The model is logged *from code* (MLflow's models-from-code): the artifact holds
``pyfunc_code.py``, which builds an empty ``CtcmonRiskModel``, and the fitted pipeline as a
joblib file that ``load_context`` reads back. The code is referenced by import (ctcmon must
be installed where the model is loaded); only the fitted pipeline is serialised. Serving
loads exactly this artifact (``load_pipeline``) and calls the pipeline directly; other MLflow
consumers (``mlflow models serve``, batch ``pyfunc.predict``) go through ``predict``, whose
signature MLflow derives from the typed records (``PatientHistory`` in, ``PipelineAssessment``
out).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import joblib
import mlflow
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo
from mlflow.pyfunc import PythonModel, PythonModelContext

from cohort.records import PatientHistory
from models.assessment import PipelineAssessment
from models.pipeline import RiskPipeline

MODEL_ARTIFACT = "model"
PIPELINE_ARTIFACT = "pipeline"  # the joblib file of the fitted RiskPipeline
MODEL_CODE = Path(__file__).with_name("pyfunc_code.py")


class CtcmonRiskModel(PythonModel):
    """pyfunc wrapper: list of patient histories in, list of assessments out."""

    def __init__(self, pipeline: RiskPipeline | None = None) -> None:
        self._pipeline = pipeline

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Models packaged before logging from code (cloudpickled whole) kept the pipeline in
        ``pipeline``: they load as they did."""
        if "pipeline" in state and "_pipeline" not in state:
            state = {**state, "_pipeline": state.pop("pipeline")}
        self.__dict__.update(state)

    def load_context(self, context: PythonModelContext) -> None:
        if self._pipeline is None:
            self._pipeline = joblib.load(context.artifacts[PIPELINE_ARTIFACT])
        self._pipeline.warm()  # at load, not in the first request

    @property
    def pipeline(self) -> RiskPipeline:
        if self._pipeline is None:
            raise ValueError("the packaged model's pipeline was not loaded (no load_context)")
        return self._pipeline

    # MLflow 3 lets ``predict`` omit the context argument and derives the signature from
    # these type hints; mypy only sees the older base signature.
    def predict(  # type: ignore[override]
        self, model_input: list[PatientHistory], params: dict[str, str] | None = None
    ) -> list[PipelineAssessment]:
        """One assessment per history, as of its ``as_of`` date."""
        return [PipelineAssessment.model_validate(self.pipeline.assess(h)) for h in model_input]


def log_pipeline(
    pipeline: RiskPipeline,
    input_example: list[dict[str, Any]] | None,
    pip_requirements: list[str],
) -> ModelInfo:
    """Log ``pipeline`` to the active run as ``model`` (models from code + a joblib file)."""
    with tempfile.TemporaryDirectory(prefix="ctcmon-model-") as tmp:
        path = Path(tmp) / "pipeline.joblib"
        joblib.dump(pipeline, path)
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=MODEL_CODE,
            artifacts={PIPELINE_ARTIFACT: str(path)},
            input_example=input_example,
            pip_requirements=pip_requirements,
        )


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
