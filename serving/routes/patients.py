"""Patients of the key's site, and what is recorded for them: draws, imaging, outcome."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator

from cohort.rules import PATIENT_ID_PATTERN, clean_field
from serving import service
from serving.auth import ClinicianKey
from serving.deps import IdempotencyKey, ModelDep, SettingsDep, StoreDep, on_store
from serving.routes import CheckedBodyRoute, errors, link, linked, respond
from serving.schemas import (
    Assessment,
    DrawIn,
    ImagingRecord,
    OutcomeIn,
    PatientOut,
    PatientRecord,
)

router = APIRouter(prefix="/v1/patients", tags=["patients"], route_class=CheckedBodyRoute)
WRITE = errors(401, 403, 404, 409, 413, 415, 422, 503)
READ = errors(401, 403, 404, 422, 503)

PATIENT = "/v1/patients/{patient_id}"
DRAWS = f"{PATIENT}/draws"
ASSESSMENTS = f"{PATIENT}/assessments"


def _patient_links(patient_id: str) -> dict[str, dict[str, Any]]:
    """What a client does next with a patient: the operations that take its id."""
    return {
        "ReadPatient": link("GET", PATIENT, patient_id=patient_id),
        "AddDraw": link("POST", DRAWS, patient_id=patient_id),
        "AddImaging": link("POST", f"{PATIENT}/imaging", patient_id=patient_id),
        "RecordOutcome": link("POST", f"{PATIENT}/outcome", patient_id=patient_id),
        "ListAssessments": link("GET", ASSESSMENTS, patient_id=patient_id),
    }


# the id in a response body (the stored, trimmed one), or in the path of the request
FROM_BODY = _patient_links("$response.body#/patient_id")
FROM_PATH = _patient_links("$request.path.patient_id")
# what follows a registration: a draw on the index date (the baseline), and an assessment
# of the patient as of the index date (covariates only); both with the stored id and date
AFTER_REGISTRATION = {
    **FROM_BODY,
    "AddDraw": link(
        "POST",
        DRAWS,
        patient_id="$response.body#/patient_id",
        requestBody={"date": "$response.body#/index_date"},
    ),
    "AssessRegistered": link(
        "POST",
        "/v1/risk",
        requestBody={
            "patient": {
                "patient_id": "$response.body#/patient_id",
                "index_date": "$response.body#/index_date",
            },
            "measurements": [],
            "as_of": "$response.body#/index_date",
        },
    ),
}

# trimmed as the contract trims a registered patient_id (cohort.rules.clean_text)
PatientId = Annotated[
    str,
    BeforeValidator(clean_field),
    Path(min_length=1, max_length=128, json_schema_extra={"pattern": PATIENT_ID_PATTERN}),
]


@router.post(
    "",
    status_code=201,
    response_model=PatientRecord,
    responses={
        **errors(401, 403, 409, 413, 415, 422, 503),
        **linked(201, AFTER_REGISTRATION),
    },
)
def register(
    body: PatientRecord,
    key: ClinicianKey,
    store: StoreDep,
    model: ModelDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Register a patient (contract patient fields) in the key's site."""
    return respond(service.register_patient(store, model, key, body, idempotency_key))


@router.get("/{patient_id}", responses=READ)
def read(patient_id: PatientId, key: ClinicianKey, store: StoreDep) -> PatientOut:
    """The patient's record: patient row, draws, imaging and outcome."""
    return PatientOut(**service.read_patient(store, key, patient_id))


@router.post(
    "/{patient_id}/draws",
    status_code=201,
    response_model=Assessment,
    responses={**WRITE, **linked(201, FROM_BODY)},
)
async def add_draw(
    patient_id: PatientId,
    body: DrawIn,
    key: ClinicianKey,
    store: StoreDep,
    model: ModelDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Store one blood draw and return the assessment it yields (both or neither are stored)."""
    limit = settings.max_days_before_index
    result = await on_store(
        store,
        lambda: service.submit_draw(store, model, key, patient_id, body, idempotency_key, limit),
    )
    return respond(result)


@router.post(
    "/{patient_id}/imaging",
    status_code=201,
    response_model=ImagingRecord,
    responses={**WRITE, **linked(201, FROM_PATH)},
)
def add_imaging(
    patient_id: PatientId,
    body: ImagingRecord,
    key: ClinicianKey,
    store: StoreDep,
    model: ModelDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Record an imaging exam."""
    limit = settings.max_days_before_index
    return respond(service.add_imaging(store, model, key, patient_id, body, idempotency_key, limit))


@router.post(
    "/{patient_id}/outcome",
    response_model=OutcomeIn,
    responses={**WRITE, **linked(200, FROM_PATH)},
)
def record_outcome(
    patient_id: PatientId,
    body: OutcomeIn,
    key: ClinicianKey,
    store: StoreDep,
    model: ModelDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Record recurrence, progression, death or last follow-up (replaces the previous one)."""
    return respond(service.record_outcome(store, model, key, patient_id, body, idempotency_key))


@router.get("/{patient_id}/assessments", response_model=list[Assessment], responses=READ)
def assessments(patient_id: PatientId, key: ClinicianKey, store: StoreDep) -> JSONResponse:
    """Every assessment issued for the patient, oldest first, with the model that issued it."""
    return JSONResponse(service.list_assessments(store, key, patient_id))
