"""Stateless risk: one patient's history in the body (JSON records or a FHIR Bundle)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Discriminator, Tag, ValidationError

from cohort.rules import DATE_JSON_SCHEMA
from serving import fhir, service
from serving.auth import ClinicianKey
from serving.deps import IdempotencyKey, ModelDep, SettingsDep, StoreDep, on_store
from serving.idempotency import Result
from serving.routes import (
    FHIR_JSON,
    CheckedBodyRequest,
    CheckedBodyRoute,
    errors,
    link,
    respond,
)
from serving.schemas import Assessment, PatientHistory


class HistoryFirstRequest(CheckedBodyRequest):
    """A request whose JSON body is read as a ``PatientHistory`` straight from its bytes.

    pydantic parses and validates a history in one pass over the bytes, in under half the
    time of ``json.loads`` plus validating the objects it made (0.13 ms against 0.33 ms for
    a patient with 20 draws). A body that is not a valid
    history (a FHIR Bundle, or any problem) is decoded as any JSON body is
    (``CheckedBodyRequest``), and FastAPI then validates it against ``RiskBody`` as it would
    have: same errors, same order of checks. A history instance passes that validation as
    it is (not validated again), so there is one set of rules, the models', whichever way a
    body came.
    """

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            raw = await self.body()
            try:
                self._json = PatientHistory.model_validate_json(raw)
            except ValidationError:
                self._json = self.decode(raw)
        return self._json


class HistoryFirstRoute(CheckedBodyRoute):
    request_class = HistoryFirstRequest


router = APIRouter(prefix="/v1", tags=["risk"], route_class=HistoryFirstRoute)

ERRORS = errors(401, 403, 404, 409, 422, 503)


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
DateQuery = Annotated[
    str | None,
    Query(
        max_length=32,
        description="ISO date YYYY-MM-DD, for a FHIR Bundle body",
        json_schema_extra=DATE_JSON_SCHEMA,
    ),
]


# the assessments of the patient assessed, when it is a registered one (else 404)
RISK_LINKS = {
    "ListAssessments": link(
        "GET", "/v1/patients/{patient_id}/assessments", patient_id="$response.body#/patient_id"
    )
}


@router.post(
    "/risk",
    response_model=Assessment,
    responses={
        **errors(401, 403, 409, 413, 415, 422, 503),
        200: {
            "links": RISK_LINKS,
            "content": {
                FHIR_JSON: {
                    "schema": {
                        "type": "object",
                        "description": "a FHIR R4 RiskAssessment (?format=fhir, or Accept)",
                        "properties": {"resourceType": {"const": "RiskAssessment"}},
                        "required": ["resourceType"],
                    }
                }
            },
        },
    },
)
async def risk(
    body: Annotated[RiskBody, Body()],
    key: ClinicianKey,
    store: StoreDep,
    model: ModelDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
    format: Format = "json",
    as_of: DateQuery = None,
    next_imaging_date: DateQuery = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> JSONResponse:
    """Assess one patient's history (later data ignored); the assessment is stored."""
    as_fhir = format == "fhir" or FHIR_JSON in (accept or "")
    limit = settings.max_days_before_index

    def assess_and_store() -> JSONResponse:
        if isinstance(body, FhirBundle):
            manifest = model.pipeline.manifest
            read = fhir.history_from_bundle(body.model_dump(), manifest, as_of, next_imaging_date)
            result = service.stateless_risk(
                store, model, key, read.history, idempotency_key, read.where, read.provenance, limit
            )
        else:
            result = service.stateless_risk(
                store, model, key, body, idempotency_key, max_days_before_index=limit
            )
        if as_fhir and result.status < 300:
            result = Result(result.status, fhir.risk_assessment(result.body), result.replayed)
            return respond(result, FHIR_JSON)
        return respond(result)

    return await on_store(store, assess_and_store)
