"""``POST /v1/patients/{id}/imaging`` and ``/outcome``: what happened to the patient."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pandas as pd
from sqlalchemy import Connection, insert, update

from cohort.errors import CohortError
from cohort.load import cohort_from_frames
from cohort.records import ImagingRecord, history_frames
from cohort.vocabulary import DATE, IMAGING_FILE, OUTCOME_DATES, OUTCOMES_FILE, PATIENT_ID
from serving import idempotency
from serving.auth import Principal
from serving.errors import Conflict
from serving.idempotency import Result
from serving.model import LoadedModel
from serving.schemas import OutcomeIn
from serving.service.common import (
    Snapshot,
    audit,
    bump,
    parse_date,
    read_snapshot,
    refuse,
    timing_problems,
    validate,
)
from serving.service.locations import BODY, Where
from serving.settings import DEFAULT_PRE_INDEX_DAYS
from serving.store import Base, Imaging, Outcome, Store, utcnow

IMAGING_INSERT = insert(Base.metadata.tables[Imaging.__tablename__])
OUTCOMES = Base.metadata.tables[Outcome.__tablename__]
OUTCOME = "outcome"  # the file name of the posted outcome in problems
ROW0 = 2  # the spreadsheet row of a body's only record (header is row 1)
IMAGING_BODY = Where(places={IMAGING_FILE: ([BODY], None)})
# a stored draw or scan that falls after the new follow-up or death date
OUTCOME_BODY = Where(places={OUTCOME: ([BODY], None)}, stored=[BODY, "last_followup_date"])


def add_imaging(
    store: Store,
    model: LoadedModel,
    key: Principal,
    patient_id: str,
    body: ImagingRecord,
    idem: str | None,
    max_days_before_index: int = DEFAULT_PRE_INDEX_DAYS,
) -> Result:
    """Store an imaging exam after the contract's imaging checks and the service's dates."""
    manifest = model.pipeline.manifest
    fp = idempotency.fingerprint(
        "POST", f"/v1/patients/{patient_id}/imaging", body.model_dump(mode="json")
    )

    def attempt() -> idempotency.Attempt:
        snap = read_snapshot(store, key, patient_id, manifest)
        history = snap.history().model_copy(update={"measurements": [], "imaging": [body]})
        when = parse_date(body.date)
        death = snap.outcome.death_date if snap.outcome else None
        index = snap.patient.index_date
        extra = (
            []
            if when is None
            else timing_problems(
                IMAGING_FILE, ROW0, DATE, "scan", when, index, max_days_before_index, death
            )
        )
        if extra:
            refuse(extra, history, manifest, IMAGING_BODY)
        validate(history, manifest, IMAGING_BODY)
        if any(i.date == body.date and i.modality == body.modality for i in snap.imaging):
            raise Conflict(f"a {body.modality} on {body.date} is already recorded for the patient")
        return 201, body.model_dump(), _imaging_writer(snap, body, key)

    return idempotency.run(
        store, key, idem, fp, attempt, "this exam is already recorded for the patient"
    )


def _imaging_writer(
    snap: Snapshot, body: ImagingRecord, key: Principal
) -> Callable[[Connection], None]:
    def write(conn: Connection) -> None:
        bump(conn, snap.patient.id, snap.patient.revision)
        conn.execute(
            IMAGING_INSERT,
            {
                "patient_pk": snap.patient.id,
                "date": date.fromisoformat(body.date),
                "modality": body.modality,
                "finding": body.finding,
                "response": body.response or None,
                "criteria": body.criteria or None,
                "created_at": utcnow(),
            },
        )
        audit(conn, key, "write", "imaging", snap.patient.patient_id)

    return write


def record_outcome(
    store: Store,
    model: LoadedModel,
    key: Principal,
    patient_id: str,
    body: OutcomeIn,
    idem: str | None,
) -> Result:
    """Record (or update) the patient's outcome, checked with the whole record as a cohort."""
    manifest = model.pipeline.manifest
    fp = idempotency.fingerprint(
        "POST", f"/v1/patients/{patient_id}/outcome", body.model_dump(mode="json")
    )

    def attempt() -> idempotency.Attempt:
        snap = read_snapshot(store, key, patient_id, manifest)
        frames = history_frames(snap.history(), manifest)
        frames[OUTCOMES_FILE] = _outcome_frame(snap.patient.patient_id, body)
        try:
            cohort_from_frames(frames, manifest)
        except CohortError as exc:
            raise OUTCOME_BODY.invalid(exc) from None
        return 200, body.model_dump(), _outcome_writer(snap, body, key)

    return idempotency.run(store, key, idem, fp, attempt, "the outcome changed meanwhile; retry")


def _outcome_frame(patient_id: str, body: OutcomeIn) -> pd.DataFrame:
    values = body.model_dump()
    row = {PATIENT_ID: patient_id, **{c: values.get(c) or "" for c in OUTCOME_DATES}}
    frame = pd.DataFrame([row], dtype=str)
    frame.attrs["file"] = OUTCOME
    return frame


def _outcome_writer(
    snap: Snapshot, body: OutcomeIn, key: Principal
) -> Callable[[Connection], None]:
    def write(conn: Connection) -> None:
        # the claim on the patient's revision orders this patient's writers: an update that
        # finds no outcome row is followed by an insert no one else can make meanwhile
        bump(conn, snap.patient.id, snap.patient.revision)
        pk = snap.patient.id
        values = {c: parse_date(getattr(body, c)) for c in OUTCOME_DATES} | {"updated_at": utcnow()}
        changed = conn.execute(update(OUTCOMES).where(OUTCOMES.c.patient_pk == pk), values)
        if changed.rowcount == 0:
            conn.execute(insert(OUTCOMES), values | {"patient_pk": pk})
        audit(conn, key, "write", "outcome", snap.patient.patient_id)

    return write
