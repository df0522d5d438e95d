"""The packaged model's wrapper: models packaged before logging from code still load."""

from __future__ import annotations

import cloudpickle

from models.packaging import CtcmonRiskModel


def test_a_model_cloudpickled_before_logging_from_code_still_loads() -> None:
    # before, MLflow cloudpickled the wrapper whole, with the pipeline in ``pipeline``
    old = CtcmonRiskModel.__new__(CtcmonRiskModel)
    old.__dict__["pipeline"] = {"stands in for": "a RiskPipeline"}
    loaded = cloudpickle.loads(cloudpickle.dumps(old))
    assert loaded.pipeline == {"stands in for": "a RiskPipeline"}


def test_a_model_logged_from_code_keeps_its_pipeline_through_pickling() -> None:
    model = CtcmonRiskModel({"stands in for": "a RiskPipeline"})  # type: ignore[arg-type]
    assert cloudpickle.loads(cloudpickle.dumps(model)).pipeline == {
        "stands in for": "a RiskPipeline"
    }
