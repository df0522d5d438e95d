"""``POST /v1/risk`` (a posted history, assessed and stored) and ``POST /v1/patients``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select

from cohort.errors import Problem
from cohort.records import PatientHistory, PatientRecord
from cohort.vocabulary import (
    AS_OF,
    DATE,
    IMAGING_FILE,
    INDEX_DATE,
    MEASUREMENTS_FILE,
    PATIENT_ID,
    SITE_ID,
)
from serving import idempotency
from serving.auth import Principal
from serving.errors import Forbidden
from serving.idempotency import Result
from serving.model import LoadedModel
from serving.service.common import (
    ASSESSMENT_INSERT,
    assess,
    assessment_values,
    audit,
    parse_date,
    refuse,
    timing_problems,
    today,
    validate,
    window_start,
)
from serving.service.locations import BODY, ROW_OFFSET, Loc, Where, history_body
from serving.settings import DEFAULT_PRE_INDEX_DAYS
from serving.store import Base, Patient, Store, utcnow

# POST /v1/risk: the registered patient's key (NULL when the history is not a registered
# patient's), looked up inside the INSERT: one statement fewer per request
RISK_ASSESSMENT_INSERT = ASSESSMENT_INSERT.values(
    patient_pk=select(Patient.id)
    .where(
        Patient.site_id == bindparam("registered_site"),
        Patient.patient_id == bindparam("registered_patient"),
    )
    .scalar_subquery()
)
PATIENT_INSERT = insert(Base.metadata.tables[Patient.__tablename__])
PATIENTS = "patient"  # the file of a history's patient record in problems
PATIENT_BODY = Where(places={"patient": ([BODY], None)})


def stateless_risk(
    store: Store,
    model: LoadedModel,
    key: Principal,
    history: PatientHistory,
    idem: str | None,
    outer: Callable[[Loc], Loc] | None = None,
    provenance: Callable[[str], dict[str, Any]] | None = None,
    max_days_before_index: int = DEFAULT_PRE_INDEX_DAYS,
) -> Result:
    """Assess a posted history; the assessment is stored (for the site) like every other.

    ``outer`` maps history locations to the body's (a FHIR Bundle); ``provenance(as_of)``
    adds what the assessment was based on to it.
    """
    site = history.patient.site_id
    if site is not None and site != key.site_id:
        raise Forbidden(f"this key belongs to site {key.site_id!r}, not {site!r}")
    if site is None:  # the key's site: the patient is (site, id), as the model knows them
        patient = history.patient.model_copy(update={"site_id": key.site_id})
        history = history.model_copy(update={"patient": patient})
    where = history_body(outer)
    extra = _history_timing(history, max_days_before_index)
    if extra:
        refuse(extra, history, model.pipeline.manifest, where)
    # the request's fingerprint matters only to a retry, i.e. with an Idempotency-Key
    fp = (
        idempotency.fingerprint("POST", "/v1/risk", history.model_dump(mode="json")) if idem else ""
    )

    def attempt() -> idempotency.Attempt:
        doc = assess(model, history, where)
        if provenance is not None:
            doc.update(provenance(doc[AS_OF]))

        def write(conn: Connection) -> None:
            conn.execute(
                RISK_ASSESSMENT_INSERT,
                {
                    **assessment_values(doc, key, "risk"),
                    "draw_pk": None,
                    "registered_site": key.site_id,
                    "registered_patient": doc[PATIENT_ID],
                },
            )
            audit(conn, key, "write", "risk", doc[PATIENT_ID], doc["assessment_id"])

        return 200, doc, write

    return idempotency.run(store, key, idem, fp, attempt, "this request was already processed")


def _history_timing(history: PatientHistory, max_days_before_index: int) -> list[Problem]:
    """The dates of a posted history checked as ``/draws`` checks a draw's: none in the
    future, none before the pre-index window; ``as_of`` neither future nor before index."""
    index = parse_date(history.patient.index_date)
    if index is None:
        return []  # the contract reports it
    problems = []
    now = today()
    if index > now:
        msg = f"index date {index} is in the future"
        problems.append(Problem(PATIENTS, None, INDEX_DATE, msg))
    as_of = parse_date(history.as_of)
    if as_of is not None and as_of > now:
        problems.append(Problem(AS_OF, None, None, f"as_of {as_of} is in the future"))
    if as_of is not None and as_of < index:
        msg = f"as_of {as_of} is before the index date ({index})"
        problems.append(Problem(AS_OF, None, None, msg))
    dated: list[tuple[str, str, list[str | None]]] = [
        (MEASUREMENTS_FILE, "draw", [m.date for m in history.measurements]),
        (IMAGING_FILE, "scan", [i.date for i in history.imaging]),
    ]
    # a draw's many values share its date: each distinct date is parsed and placed once, and
    # only the rows of a date outside [index − window, today] get their problems written
    earliest = window_start(index, max_days_before_index)
    seen: dict[str, date | None] = {}
    for file, what, dates in dated:
        for row, text in enumerate(dates, start=ROW_OFFSET):
            if text is None:
                continue
            if text not in seen:
                seen[text] = parse_date(text)
            when = seen[text]
            if when is not None and not earliest <= when <= now:
                problems += timing_problems(
                    file, row, DATE, what, when, index, max_days_before_index
                )
    return problems


def register_patient(
    store: Store, model: LoadedModel, key: Principal, record: PatientRecord, idem: str | None
) -> Result:
    """Register a patient in the key's site after the contract's patient-row checks."""
    if record.site_id is not None and record.site_id != key.site_id:
        raise Forbidden(
            f"this key registers patients at site {key.site_id!r}, not {record.site_id!r}"
        )
    record = record.model_copy(update={"site_id": key.site_id})
    validate(PatientHistory(patient=record), model.pipeline.manifest, PATIENT_BODY)
    covariates = dict(record.model_extra or {})
    body = patient_record_dict(record, covariates)
    fp = idempotency.fingerprint("POST", "/v1/patients", body)

    def attempt() -> idempotency.Attempt:
        def write(conn: Connection) -> None:
            conn.execute(
                PATIENT_INSERT,
                {
                    "site_id": key.site_id,
                    "patient_id": record.patient_id,
                    "index_date": date.fromisoformat(record.index_date),
                    "covariates": covariates,
                    "revision": 0,
                    "created_at": utcnow(),
                },
            )
            audit(conn, key, "write", "patient", record.patient_id)

        return 201, body, write

    conflict = f"patient {record.patient_id!r} is already registered at site {key.site_id!r}"
    return idempotency.run(store, key, idem, fp, attempt, conflict)


def patient_record_dict(record: PatientRecord, covariates: dict[str, Any]) -> dict[str, Any]:
    return {
        PATIENT_ID: record.patient_id,
        SITE_ID: record.site_id,
        INDEX_DATE: record.index_date,
        **covariates,
    }
