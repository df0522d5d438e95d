"""What the routes do: check input against the data contract, assess with the live model, store.

One validation path: every body goes through ``cohort.records`` / ``cohort.load`` (the checks
cohort files get), plus the rules only a live service has (a draw too long before index,
after death, in the future, or already recorded). A draw and its assessment are written in
one transaction, computed outside it and retried if the patient's record moved meanwhile.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Integer, Row, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from cohort.errors import CohortError, Problem
from cohort.load import cohort_from_frames
from cohort.manifest import Manifest
from cohort.parsed import quick_parse
from cohort.records import (
    ImagingRecord,
    MeasurementRecord,
    PatientHistory,
    PatientRecord,
    history_frames,
    history_to_cohort,
    problem_loc,
)
from cohort.units import conversion_factor
from cohort.vocabulary import (
    AS_OF,
    DATE,
    INDEX_DATE,
    MEASUREMENTS_FILE,
    OUTCOME_DATES,
    OUTCOMES_FILE,
    PATIENT_ID,
    SITE_ID,
)
from serving import idempotency
from serving.auth import Principal
from serving.errors import Conflict, Forbidden, Invalid, NotFound
from serving.idempotency import Result, Stale
from serving.model import LoadedModel
from serving.schemas import DrawIn, OutcomeIn
from serving.store import (
    Assessment,
    AuditEvent,
    Base,
    Draw,
    Imaging,
    Measurement,
    Outcome,
    Patient,
    Store,
    utcnow,
)

FUTURE_TOLERANCE = timedelta(days=1)  # clocks and time zones: "today" somewhere


# ---- helpers shared by every operation ----
# The rows every write adds, as Core INSERTs: their SQL is compiled once and cached, and
# nothing goes through the ORM's unit of work (half the time of ``session.add`` for these).
AUDIT_INSERT = insert(Base.metadata.tables[AuditEvent.__tablename__])
ASSESSMENT_INSERT = insert(Base.metadata.tables[Assessment.__tablename__])
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


# A patient's record as read before every write to it (Core rows: attribute access like the
# ORM objects, without an identity map), and the claim on its revision.
PATIENTS = Base.metadata.tables[Patient.__tablename__]
PATIENT_IN_SITE = select(PATIENTS).where(
    PATIENTS.c.site_id == bindparam("site_id"), PATIENTS.c.patient_id == bindparam("patient_id")
)
OUTCOME_OF = select(Base.metadata.tables[Outcome.__tablename__]).where(
    Outcome.patient_pk == bindparam("patient_pk")
)
MEASUREMENTS_OF = (
    select(
        Measurement.date,
        Measurement.marker,
        Measurement.value,
        Measurement.unit,
        Measurement.qualifier,
        Draw.draw_id,
    )
    .join(Draw, Draw.id == Measurement.draw_pk)
    .where(Measurement.patient_pk == bindparam("patient_pk"))
    .order_by(Measurement.date, Measurement.id)
)
IMAGING_OF = (
    select(Imaging.date, Imaging.modality, Imaging.finding, Imaging.response, Imaging.criteria)
    .where(Imaging.patient_pk == bindparam("patient_pk"))
    .order_by(Imaging.date, Imaging.id)
)
CLAIM_REVISION = (
    update(PATIENTS)
    .where(PATIENTS.c.id == bindparam("pk"), PATIENTS.c.revision == bindparam("seen"))
    .values(revision=bindparam("seen", type_=Integer) + 1)
)
DRAW_INSERT = insert(Base.metadata.tables[Draw.__tablename__]).returning(Draw.id)
MEASUREMENT_INSERT = insert(Base.metadata.tables[Measurement.__tablename__])


def audit(
    session: Session,
    key: Principal,
    action: str,
    resource: str,
    patient_id: str | None = None,
    ref: str | None = None,
) -> None:
    session.execute(
        AUDIT_INSERT,
        {
            "at": utcnow(),
            "key_id": key.key_id,
            "site_id": key.site_id,
            "action": action,
            "resource": resource,
            "patient_id": patient_id,
            "ref": ref,
        },
    )


def find_patient(session: Session, key: Principal, patient_id: str) -> Patient:
    """The patient in the key's site; 404 otherwise (another site's patient is not revealed)."""
    patient = session.scalar(
        select(Patient).where(Patient.site_id == key.site_id, Patient.patient_id == patient_id)
    )
    if patient is None:
        raise NotFound(f"no patient {patient_id!r} at site {key.site_id!r}")
    return patient


def patient_record(patient: Patient | Row[Any]) -> dict[str, Any]:
    return {
        PATIENT_ID: patient.patient_id,
        SITE_ID: patient.site_id,
        INDEX_DATE: patient.index_date.isoformat(),
        **patient.covariates,
    }


def invalid(exc: CohortError, where: Callable[[Problem], list[str | int]]) -> Invalid:
    """Every problem of a contract error as ``{loc, msg}`` (duplicates merged)."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for p in exc.problems:
        loc = where(p)
        seen.setdefault((*loc, p.reason), {"loc": loc, "msg": p.reason})
    return Invalid(list(seen.values()))


def body_loc(problem: Problem) -> list[str | int]:
    return ["body", *problem_loc(problem)]


def assess(model: LoadedModel, history: PatientHistory, where: Callable[[Problem], list]) -> dict:
    """The pipeline's assessment with its provenance; contract problems become a 422."""
    try:
        raw = model.pipeline.assess(history)
    except CohortError as exc:
        raise invalid(exc, where) from None
    except (ValueError, TypeError) as exc:  # input the contract let through but features refuse
        raise Invalid([{"loc": ["body"], "msg": str(exc)}]) from None
    return {
        **raw,
        "model": model.ref(),
        "assessment_id": str(uuid.uuid4()),
        "issued_at": utcnow().isoformat().replace("+00:00", "Z"),
    }


def assessment_values(doc: dict[str, Any], key: Principal, source: str) -> dict[str, Any]:
    """The columns of the assessments row of ``doc`` but its patient's and draw's keys."""
    return {
        "assessment_id": doc["assessment_id"],
        "site_id": key.site_id,
        "patient_id": doc[PATIENT_ID],
        "source": source,
        "as_of": date.fromisoformat(doc[AS_OF]),
        "issued_at": datetime.fromisoformat(doc["issued_at"]),
        "model_name": doc["model"]["name"],
        "model_version": doc["model"]["version"],
        "risk_band": doc["risk_band"],
        "alarm": doc["alarm"],
        "alarm_threshold": doc["alarm_threshold"],
        "alarm_horizon_days": doc["alarm_horizon_days"],
        "body": doc,
        "key_id": key.key_id,
    }


def _bump(session: Session, patient_pk: int, revision: int) -> None:
    """Claim the patient's record for this write; Stale if someone wrote to it since we read."""
    done = session.execute(CLAIM_REVISION, {"pk": patient_pk, "seen": revision})
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Stale()


def _today() -> date:
    return (datetime.now(UTC) + FUTURE_TOLERANCE).date()


def _parse(text: str | None) -> date | None:
    try:
        return None if text is None else date.fromisoformat(text)
    except ValueError:
        return None  # the contract check reports it, with the same message as for files


# ---- POST /v1/risk ----
def stateless_risk(
    store: Store, model: LoadedModel, key: Principal, history: PatientHistory, idem: str | None
) -> Result:
    """Assess a posted history; the assessment is stored (for the site) like every other."""
    site = history.patient.site_id
    if site is not None and site != key.site_id:
        raise Forbidden(f"this key belongs to site {key.site_id!r}, not {site!r}")
    # the request's fingerprint matters only to a retry, i.e. with an Idempotency-Key
    fp = (
        idempotency.fingerprint("POST", "/v1/risk", history.model_dump(mode="json")) if idem else ""
    )

    def attempt() -> idempotency.Attempt:
        doc = assess(model, history, body_loc)

        def write(session: Session) -> None:
            session.execute(
                RISK_ASSESSMENT_INSERT,
                {
                    **assessment_values(doc, key, "risk"),
                    "draw_pk": None,
                    "registered_site": key.site_id,
                    "registered_patient": doc[PATIENT_ID],
                },
            )
            audit(session, key, "write", "risk", doc[PATIENT_ID], doc["assessment_id"])

        return 200, doc, write

    return idempotency.run(store, key, idem, fp, attempt, "this request was already processed")


# ---- POST /v1/patients ----
def register_patient(
    store: Store, model: LoadedModel, key: Principal, record: PatientRecord, idem: str | None
) -> Result:
    """Register a patient in the key's site after the contract's patient-row checks."""
    if record.site_id is not None and record.site_id != key.site_id:
        raise Forbidden(
            f"this key registers patients at site {key.site_id!r}, not {record.site_id!r}"
        )
    record = record.model_copy(update={"site_id": key.site_id})
    _validate(
        PatientHistory(patient=record),
        model.pipeline.manifest,
        lambda p: ["body", *problem_loc(p)[1:]],
    )
    covariates = dict(record.model_extra or {})
    body = patient_record_dict(record, covariates)
    fp = idempotency.fingerprint("POST", "/v1/patients", body)

    def attempt() -> idempotency.Attempt:
        def write(session: Session) -> None:
            session.add(
                Patient(
                    site_id=key.site_id,
                    patient_id=record.patient_id,
                    index_date=date.fromisoformat(record.index_date),
                    covariates=covariates,
                    revision=0,
                    created_at=utcnow(),
                )
            )
            audit(session, key, "write", "patient", record.patient_id)

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


# ---- the stored record of one patient ----
@dataclass
class Snapshot:
    """A patient's stored record as read at one revision.

    ``patient`` and ``outcome`` are rows with the columns of ``patients`` and ``outcomes``.
    """

    patient: Row[Any]
    measurements: list[MeasurementRecord] = field(default_factory=list)
    imaging: list[ImagingRecord] = field(default_factory=list)
    taken: set[tuple[date, str]] = field(default_factory=set)
    draw_ids: set[str] = field(default_factory=set)
    outcome: Row[Any] | None = None

    def history(self, **kw: Any) -> PatientHistory:
        return PatientHistory(
            patient=PatientRecord(**patient_record(self.patient)),
            measurements=self.measurements,
            imaging=self.imaging,
            **kw,
        )


def snapshot(conn: Connection, key: Principal, patient_id: str, manifest: Manifest) -> Snapshot:
    """The patient's record in canonical units (markers the model does not know are left out).

    Rows are read as plain tuples and the records built without re-validation: they were
    validated when stored, and a patient's record is read on every draw submitted.
    """
    patient = conn.execute(
        PATIENT_IN_SITE, {"site_id": key.site_id, "patient_id": patient_id}
    ).first()
    if patient is None:
        raise NotFound(f"no patient {patient_id!r} at site {key.site_id!r}")
    pk = {"patient_pk": patient.id}
    snap = Snapshot(patient=patient, outcome=conn.execute(OUTCOME_OF, pk).first())
    for when, marker, value, unit, qualifier, draw_id in conn.execute(MEASUREMENTS_OF, pk):
        snap.taken.add((when, marker))
        snap.draw_ids.add(draw_id)
        if marker in manifest.markers:
            snap.measurements.append(
                MeasurementRecord.model_construct(
                    date=when.isoformat(),
                    marker=marker,
                    value=value,
                    unit=unit,
                    qualifier=qualifier,
                    draw_id=draw_id,
                )
            )
    for when, modality, finding, response, criteria in conn.execute(IMAGING_OF, pk):
        snap.imaging.append(
            ImagingRecord.model_construct(
                date=when.isoformat(),
                modality=modality,
                finding=finding,
                response=response,
                criteria=criteria,
            )
        )
    return snap


def _read(store: Store, key: Principal, patient_id: str, manifest: Manifest) -> Snapshot:
    with store.connect() as conn:
        return snapshot(conn, key, patient_id, manifest)


# ---- POST /v1/patients/{id}/draws ----
def submit_draw(
    store: Store,
    model: LoadedModel,
    key: Principal,
    patient_id: str,
    body: DrawIn,
    idem: str | None,
    max_days_before_index: int,
) -> Result:
    """Store one draw together with the assessment it yields, or nothing."""
    manifest = model.pipeline.manifest
    path = f"/v1/patients/{patient_id}/draws"
    fp = idempotency.fingerprint("POST", path, body.model_dump(mode="json")) if idem else ""

    def attempt() -> idempotency.Attempt:
        snap = _read(store, key, patient_id, manifest)
        draw_id = body.draw_id or f"{body.date}-{uuid.uuid4().hex[:8]}"
        new = [
            m.model_copy(update={DATE: body.date, "draw_id": draw_id}) for m in body.measurements
        ]
        history = snap.history(as_of=body.date, next_imaging_date=body.next_imaging_date)
        history = history.model_copy(
            update={
                "measurements": [*snap.measurements, *new],
                "imaging": [i for i in snap.imaging if i.date <= body.date],
            }
        )
        where = _draw_loc(len(snap.measurements))
        extra = _draw_problems(snap, body, max_days_before_index)
        if extra:
            _raise_all(extra, history, manifest, where)
        _check_not_recorded(snap, body, draw_id)
        doc = assess(model, history, where)
        return 201, doc, _draw_writer(snap, body, draw_id, doc, key, manifest)

    return idempotency.run(
        store, key, idem, fp, attempt, "this draw is already recorded for the patient"
    )


def _draw_loc(n_stored: int) -> Callable[[Problem], list[str | int]]:
    def where(p: Problem) -> list[str | int]:
        loc = problem_loc(p)
        if p.file == MEASUREMENTS_FILE and len(loc) > 1 and isinstance(loc[1], int):
            if loc[2:] == [DATE]:
                return ["body", DATE]
            return ["body", MEASUREMENTS_FILE, loc[1] - n_stored, *loc[2:]]
        if p.file in (AS_OF, "draw"):
            return ["body", DATE]
        return ["body", *loc]

    return where


def _draw_problems(snap: Snapshot, body: DrawIn, max_days_before_index: int) -> list[Problem]:
    """The live service's own rules for a new draw (the contract's run in the pipeline)."""
    problems = [
        Problem("body", None, f"measurements.{i}.date", f"differs from the draw date {body.date}")
        for i, m in enumerate(body.measurements)
        if m.date is not None and m.date != body.date
    ]
    when = _parse(body.date)
    if when is None:
        return problems
    index = snap.patient.index_date
    if when < index - timedelta(days=max_days_before_index):
        problems.append(
            Problem(
                "draw",
                None,
                DATE,
                f"draw on {when} is more than {max_days_before_index} days before the index date ({index})",
            )
        )
    death = snap.outcome.death_date if snap.outcome else None
    if death is not None and when > death:
        problems.append(Problem("draw", None, DATE, f"draw on {when} after death"))
    if when > _today():
        problems.append(Problem("draw", None, DATE, f"draw on {when} is in the future"))
    return problems


def _raise_all(
    extra: list[Problem], history: PatientHistory, manifest: Manifest, where: Callable
) -> None:
    """422 listing the service's problems and the contract's together."""
    try:
        history_to_cohort(history, manifest)
        found: list[Problem] = []
    except CohortError as exc:
        found = exc.problems
    raise invalid(CohortError(extra + found), _fix_body_loc(where))


def _fix_body_loc(where: Callable) -> Callable[[Problem], list[str | int]]:
    def loc(p: Problem) -> list[str | int]:
        if p.file == "body":
            return ["body", *(int(x) if x.isdigit() else x for x in (p.column or "").split("."))]
        return list(where(p))

    return loc


def _check_not_recorded(snap: Snapshot, body: DrawIn, draw_id: str) -> None:
    when = _parse(body.date)
    clash = sorted(m.marker for m in body.measurements if (when, m.marker) in snap.taken)
    if clash:
        raise Conflict(f"the patient already has {', '.join(clash)} recorded on {body.date}")
    if draw_id in snap.draw_ids:
        raise Conflict(f"draw {draw_id!r} is already recorded for the patient")


def _draw_writer(
    snap: Snapshot, body: DrawIn, draw_id: str, doc: dict, key: Principal, manifest: Manifest
) -> Callable[[Session], None]:
    when = date.fromisoformat(body.date)

    def measurements(draw_pk: int) -> list[dict[str, Any]]:
        rows = []
        for m in body.measurements:
            spec = manifest.markers[m.marker]
            factor = conversion_factor(m.unit, spec.unit, spec.conversions)
            assert factor is not None  # the contract check refused unknown units
            rows.append(
                {
                    "draw_pk": draw_pk,
                    "patient_pk": snap.patient.id,
                    "date": when,
                    "marker": m.marker,
                    "value": m.value * factor,
                    "unit": spec.unit,
                    "original_value": m.value,
                    "original_unit": m.unit,
                    "qualifier": m.qualifier or None,
                }
            )
        return rows

    def write(session: Session) -> None:
        _bump(session, snap.patient.id, snap.patient.revision)
        draw_pk = session.execute(
            DRAW_INSERT,
            {
                "patient_pk": snap.patient.id,
                "draw_id": draw_id,
                "date": when,
                "created_at": utcnow(),
                "key_id": key.key_id,
            },
        ).scalar_one()
        session.execute(MEASUREMENT_INSERT, measurements(draw_pk))
        session.execute(
            ASSESSMENT_INSERT,
            {
                **assessment_values(doc, key, "draw"),
                "patient_pk": snap.patient.id,
                "draw_pk": draw_pk,
            },
        )
        audit(session, key, "write", "draw", snap.patient.patient_id, doc["assessment_id"])

    return write


# ---- POST /v1/patients/{id}/imaging ----
def add_imaging(
    store: Store,
    model: LoadedModel,
    key: Principal,
    patient_id: str,
    body: ImagingRecord,
    idem: str | None,
) -> Result:
    """Store an imaging exam after the contract's imaging checks."""
    manifest = model.pipeline.manifest
    fp = idempotency.fingerprint(
        "POST", f"/v1/patients/{patient_id}/imaging", body.model_dump(mode="json")
    )

    def attempt() -> idempotency.Attempt:
        snap = _read(store, key, patient_id, manifest)
        history = snap.history().model_copy(update={"measurements": [], "imaging": [body]})
        when = _parse(body.date)
        death = snap.outcome.death_date if snap.outcome else None
        extra = []
        if when is not None and death is not None and when > death:
            extra.append(Problem("imaging", ROW0, DATE, f"scan on {when} after death"))
        if when is not None and when > _today():
            extra.append(Problem("imaging", ROW0, DATE, f"scan on {when} is in the future"))
        if extra:
            _raise_all(extra, history, manifest, _imaging_loc)
        _validate(history, manifest, _imaging_loc)
        if any(i.date == body.date and i.modality == body.modality for i in snap.imaging):
            raise Conflict(f"a {body.modality} on {body.date} is already recorded for the patient")
        return 201, body.model_dump(), _imaging_writer(snap, body, key)

    return idempotency.run(
        store, key, idem, fp, attempt, "this exam is already recorded for the patient"
    )


ROW0 = 2  # the spreadsheet row of a body's only record (header is row 1)


def _imaging_loc(p: Problem) -> list[str | int]:
    return ["body", *problem_loc(p)[2:]]


def _validate(history: PatientHistory, manifest: Manifest, where: Callable) -> None:
    """The contract's checks: the quick parse when it vouches for the history, else in full."""
    if quick_parse(history, manifest) is not None:
        return
    try:
        history_to_cohort(history, manifest)
    except CohortError as exc:
        raise invalid(exc, where) from None


def _imaging_writer(
    snap: Snapshot, body: ImagingRecord, key: Principal
) -> Callable[[Session], None]:
    def write(session: Session) -> None:
        _bump(session, snap.patient.id, snap.patient.revision)
        session.add(
            Imaging(
                patient_pk=snap.patient.id,
                date=date.fromisoformat(body.date),
                modality=body.modality,
                finding=body.finding,
                response=body.response or None,
                criteria=body.criteria or None,
                created_at=utcnow(),
            )
        )
        audit(session, key, "write", "imaging", snap.patient.patient_id)

    return write


# ---- POST /v1/patients/{id}/outcome ----
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
        snap = _read(store, key, patient_id, manifest)
        frames = history_frames(snap.history(), manifest)
        frames[OUTCOMES_FILE] = _outcome_frame(snap.patient.patient_id, body)
        try:
            cohort_from_frames(frames, manifest)
        except CohortError as exc:
            raise invalid(exc, _outcome_loc) from None
        return 200, body.model_dump(), _outcome_writer(snap, body, key)

    return idempotency.run(store, key, idem, fp, attempt, "the outcome changed meanwhile; retry")


def _outcome_frame(patient_id: str, body: OutcomeIn) -> pd.DataFrame:
    values = body.model_dump()
    row = {PATIENT_ID: patient_id, **{c: values.get(c) or "" for c in OUTCOME_DATES}}
    frame = pd.DataFrame([row], dtype=str)
    frame.attrs["file"] = "outcome"
    return frame


def _outcome_loc(p: Problem) -> list[str | int]:
    if p.file == "outcome":
        return ["body", *([p.column] if p.column else [])]
    # a stored draw or scan falls after the new follow-up or death date
    return ["body", "last_followup_date"]


def _outcome_writer(snap: Snapshot, body: OutcomeIn, key: Principal) -> Callable[[Session], None]:
    def write(session: Session) -> None:
        _bump(session, snap.patient.id, snap.patient.revision)
        values = {c: _parse(getattr(body, c)) for c in OUTCOME_DATES}
        row = session.get(Outcome, snap.patient.id)
        if row is None:
            row = Outcome(patient_pk=snap.patient.id, updated_at=utcnow(), **values)
            session.add(row)
        else:
            for column, value in values.items():
                setattr(row, column, value)
            row.updated_at = utcnow()
        audit(session, key, "write", "outcome", snap.patient.patient_id)

    return write


# ---- reads ----
def read_patient(store: Store, key: Principal, patient_id: str) -> dict[str, Any]:
    """The patient's stored record; the read is audited."""
    with store.writing() as session:
        patient = find_patient(session, key, patient_id)
        draws: dict[int, dict[str, Any]] = {}
        for d in session.scalars(
            select(Draw).where(Draw.patient_pk == patient.id).order_by(Draw.date, Draw.id)
        ):
            draws[d.id] = {"draw_id": d.draw_id, DATE: d.date.isoformat(), "measurements": []}
        for m in session.scalars(select(Measurement).where(Measurement.patient_pk == patient.id)):
            draws[m.draw_pk]["measurements"].append(_measurement_out(m))
        imaging = session.scalars(
            select(Imaging).where(Imaging.patient_pk == patient.id).order_by(Imaging.date)
        )
        outcome = session.get(Outcome, patient.id)
        n = session.scalar(select(func.count()).where(Assessment.patient_pk == patient.id))
        audit(session, key, "read", "patient", patient_id)
        return {
            "patient": patient_record(patient),
            "draws": list(draws.values()),
            "imaging": [_imaging_out(i) for i in imaging],
            "outcome": _outcome_out(outcome),
            "assessments": n or 0,
        }


def _measurement_out(m: Measurement) -> dict[str, Any]:
    return {
        "marker": m.marker,
        "value": m.original_value,
        "unit": m.original_unit,
        "qualifier": m.qualifier,
        "canonical_value": m.value,
        "canonical_unit": m.unit,
    }


def _imaging_out(i: Imaging) -> dict[str, Any]:
    return {
        DATE: i.date.isoformat(),
        "modality": i.modality,
        "finding": i.finding,
        "response": i.response,
        "criteria": i.criteria,
    }


def _outcome_out(o: Outcome | None) -> dict[str, Any] | None:
    if o is None:
        return None
    return {c: (v.isoformat() if (v := getattr(o, c)) else None) for c in OUTCOME_DATES}


def list_assessments(store: Store, key: Principal, patient_id: str) -> list[dict[str, Any]]:
    """Every assessment issued for the patient, oldest first, as it was issued."""
    with store.writing() as session:
        patient = find_patient(session, key, patient_id)
        bodies = list(
            session.scalars(
                select(Assessment.body)
                .where(Assessment.patient_pk == patient.id)
                .order_by(Assessment.seq)
            )
        )
        audit(session, key, "read", "assessments", patient_id)
    return bodies
