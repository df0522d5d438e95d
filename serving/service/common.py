"""What every operation of the service shares: the audit row, the assessment row, the
patient's stored record as read before a write, the contract check with its locations.

One validation path: every body goes through ``cohort.records`` / ``cohort.load`` (the checks
cohort files get), plus the rules only a live service has (a date in the future, too long
before index, after death, or a day already recorded). A write and its assessment are one
transaction, computed outside it and retried if the patient's record moved meanwhile.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Integer, Row, bindparam, insert, select, update
from sqlalchemy.orm import Session

from cohort.errors import CohortError, Problem
from cohort.manifest import Manifest
from cohort.parsed import quick_parse
from cohort.records import (
    ImagingRecord,
    MeasurementRecord,
    PatientHistory,
    PatientRecord,
    history_to_cohort,
)
from cohort.vocabulary import AS_OF, INDEX_DATE, PATIENT_ID, SITE_ID
from serving.auth import Principal
from serving.errors import Invalid, NotFound
from serving.idempotency import Stale
from serving.model import LoadedModel
from serving.service.locations import Where
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


# The rows every write adds, as Core INSERTs: their SQL is compiled once and cached, and
# nothing goes through the ORM's unit of work (half the time of ``session.add`` for these).
AUDIT_INSERT = insert(Base.metadata.tables[AuditEvent.__tablename__])
ASSESSMENT_INSERT = insert(Base.metadata.tables[Assessment.__tablename__])
# A patient's record as read before every write to it (Core rows: attribute access like the
# ORM objects, without an identity map), and the claim on its revision.
PATIENTS = Base.metadata.tables[Patient.__tablename__]
# The patient's row with its outcome's columns (``outcome_<column>``, null without one) in
# one query: a round trip fewer on every write to the patient.
OUTCOMES = Base.metadata.tables[Outcome.__tablename__]
OUTCOME_COLUMNS = [c.name for c in OUTCOMES.c]
PATIENT_IN_SITE = (
    select(PATIENTS, *(OUTCOMES.c[name].label(f"outcome_{name}") for name in OUTCOME_COLUMNS))
    .outerjoin(OUTCOMES, OUTCOMES.c.patient_pk == PATIENTS.c.id)
    .where(
        PATIENTS.c.site_id == bindparam("site_id"),
        PATIENTS.c.patient_id == bindparam("patient_id"),
    )
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


def audit(
    session: Connection | Session,
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


def assess(model: LoadedModel, history: PatientHistory, where: Where) -> dict[str, Any]:
    """The pipeline's assessment with its provenance; contract problems become a 422."""
    try:
        raw = model.pipeline.assess(history)
    except CohortError as exc:
        raise where.invalid(exc) from None
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


def bump(session: Connection | Session, patient_pk: int, revision: int) -> None:
    """Claim the patient's record for this write; Stale if someone wrote to it since we read."""
    done = session.execute(CLAIM_REVISION, {"pk": patient_pk, "seen": revision})
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Stale()


def today() -> date:
    return (datetime.now(UTC) + FUTURE_TOLERANCE).date()


def parse_date(text: str | None) -> date | None:
    try:
        return None if text is None else date.fromisoformat(text)
    except ValueError:
        return None  # the contract check reports it, with the same message as for files


# ---- the stored record of one patient ----
@dataclass
class Snapshot:
    """A patient's stored record as read at one revision.

    ``patient`` is a row with the columns of ``patients`` (and ``outcome_*``), ``outcome`` an
    object with the columns of ``outcomes`` as attributes, None without one.
    """

    patient: Row[Any]
    measurements: list[MeasurementRecord] = field(default_factory=list)
    imaging: list[ImagingRecord] = field(default_factory=list)
    taken: set[tuple[date, str]] = field(default_factory=set)
    draw_ids: set[str] = field(default_factory=set)
    outcome: SimpleNamespace | None = None

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
    snap = Snapshot(patient=patient, outcome=_outcome(patient))
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


def _outcome(row: Row[Any]) -> SimpleNamespace | None:
    """The outcome's columns of a ``PATIENT_IN_SITE`` row, by their own names; None if none."""
    if row.outcome_patient_pk is None:
        return None
    return SimpleNamespace(**{name: getattr(row, f"outcome_{name}") for name in OUTCOME_COLUMNS})


def read_snapshot(store: Store, key: Principal, patient_id: str, manifest: Manifest) -> Snapshot:
    with store.connect() as conn:
        return snapshot(conn, key, patient_id, manifest)


def validate(history: PatientHistory, manifest: Manifest, where: Where) -> None:
    """The contract's checks: the quick parse when it vouches for the history, else in full."""
    if quick_parse(history, manifest) is not None:
        return
    try:
        history_to_cohort(history, manifest)
    except CohortError as exc:
        raise where.invalid(exc) from None


def refuse(extra: list[Problem], history: PatientHistory, manifest: Manifest, where: Where) -> None:
    """422 listing the service's own problems and the contract's together."""
    try:
        history_to_cohort(history, manifest)
        found: list[Problem] = []
    except CohortError as exc:
        found = exc.problems
    raise where.invalid(CohortError(extra + found))


def window_start(index: date, max_days_before_index: int) -> date:
    """The earliest date the pre-index window allows (``date.min`` near year 1)."""
    if index.toordinal() <= max_days_before_index:
        return date.min
    return index - timedelta(days=max_days_before_index)


def timing_problems(
    file: str,
    row: int | None,
    column: str,
    what: str,
    when: date,
    index: date,
    max_days_before_index: int,
    death: date | None = None,
) -> list[Problem]:
    """The live service's date rules, the same for every body: nothing in the future (beyond
    a day's tolerance), nothing longer before the index date than the pre-index window,
    nothing after death."""
    problems = []
    if when < window_start(index, max_days_before_index):
        problems.append(
            Problem(
                file,
                row,
                column,
                f"{what} on {when} is more than {max_days_before_index} days before the index date ({index})",
            )
        )
    if death is not None and when > death:
        problems.append(Problem(file, row, column, f"{what} on {when} after death"))
    if when > today():
        problems.append(Problem(file, row, column, f"{what} on {when} is in the future"))
    return problems
