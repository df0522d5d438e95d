"""The code MLflow runs to rebuild a packaged ctcmon model (models from code).

Logged by ``models.packaging.log_pipeline`` and never imported by ctcmon itself: MLflow
executes it when the model is loaded, then calls ``load_context`` with the pipeline file.
"""

import mlflow

from models.packaging import CtcmonRiskModel

mlflow.models.set_model(CtcmonRiskModel())
