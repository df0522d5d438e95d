"""Stateless risk: one patient's history in the body (JSON records or a FHIR Bundle)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Discriminator, Tag

from serving import fhir, service
from serving.auth import ClinicianKey
from serving.deps import IdempotencyKey, ModelDep, StoreDep
from serving.idempotency import Result
from serving.routes import FHIR_JSON, respond
from serving.schemas import Assessment, ErrorOut, PatientHistory

router = APIRouter(prefix="/v1", tags=["risk"])

ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorOut} for s in (401, 403, 404, 409, 422, 503)
}


class FhirBundle(BaseModel):
    """A FHIR R4 Bundle with one Patient and its Observations (see serving/fhir.py)."""

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["Bundle"]
    entry: list[dict[str, Any]] = []


def _kind(value: Any) -> str:
    return "fhir" if fhir.is_bundle(value) else "history"


RiskBody = Annotated[
    Annotated[PatientHistory, Tag("history")] | Annotated[FhirBundle, Tag("fhir")],
    Discriminator(_kind),
]
Format = Annotated[Literal["json", "fhir"], Query(description="fhir: a RiskAssessment resource")]
DateQuery = Annotated[str | None, Query(max_length=32, description="for a FHIR Bundle body")]


@router.post("/risk", response_model=Assessment, responses=ERRORS)
def risk(
    body: Annotated[RiskBody, Body()],
    key: ClinicianKey,
    store: StoreDep,
    model: ModelDep,
    idempotency_key: IdempotencyKey = None,
    format: Format = "json",
    as_of: DateQuery = None,
    next_imaging_date: DateQuery = None,
) -> JSONResponse:
    """Assess one patient's history (later data ignored); the assessment is stored."""
    if isinstance(body, FhirBundle):
        raw = body.model_dump()
        history = fhir.history_from_bundle(raw, model.pipeline.manifest, as_of, next_imaging_date)
    else:
        history = body
    result = service.stateless_risk(store, model, key, history, idempotency_key)
    if format == "fhir" and result.status < 300:
        result = Result(result.status, fhir.risk_assessment(result.body), result.replayed)
        return respond(result, FHIR_JSON)
    return respond(result)
