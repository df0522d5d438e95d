"""Which model is live, and reloading it when the champion moves."""

from __future__ import annotations

from fastapi import APIRouter

from models.alarm import OperatingPoint
from serving.auth import AdminKey, KeyDep
from serving.deps import HolderDep, ModelDep
from serving.errors import Unavailable
from serving.model import LoadedModel
from serving.routes import errors
from serving.schemas import AlarmInfo, ModelInfo

router = APIRouter(prefix="/v1", tags=["model"])


def describe(model: LoadedModel) -> ModelInfo:
    p = model.pipeline
    return ModelInfo(
        name=model.name,
        version=model.version,
        alias=model.alias,
        algorithm=p.model_name,
        uri=model.uri,
        source=model.source,
        run_id=model.run_id,
        trained_at=p.trained_at,
        loaded_at=model.loaded_at.isoformat(),
        horizons=list(p.horizons),
        alarm=AlarmInfo(
            horizon_days=p.alarm.horizon_days,
            threshold=p.alarm.threshold,
            low_below=p.alarm.low_below,
            target_specificity=p.alarm.target_specificity,
            expected_lead_days=p.alarm.expected_lead_days,
            confirm=p.alarm.confirm,
            operating_point=(
                OperatingPoint.from_dict(p.alarm.operating_point)
                if p.alarm.operating_point
                else None
            ),
        ),
        metrics={k: (v if v == v else None) for k, v in p.metrics.items()},
        cohort=p.manifest.name,
        markers={m: spec.unit for m, spec in p.manifest.markers.items()},
        covariates=dict(p.manifest.covariates),
        covariate_ranges=dict(p.manifest.covariate_ranges),
        covariate_levels=dict(p.manifest.covariate_levels),
    )


@router.get("/model", responses=errors(401, 503))
def live_model(key: KeyDep, model: ModelDep) -> ModelInfo:
    """The live model: registered name, version, alias, training date, horizons, alarm, metrics."""
    return describe(model)


@router.post("/admin/reload", responses=errors(401, 403, 503))
def reload(key: AdminKey, holder: HolderDep) -> ModelInfo:
    """Ask the registry where the champion is now and swap it in if it moved."""
    holder.try_refresh()
    if holder.current is None:
        raise Unavailable(f"no model could be loaded from {holder.uri}: {holder.last_error}")
    return describe(holder.current)
