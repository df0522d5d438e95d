"""``POST /v1/patients/{id}/draws``: one blood draw and the assessment it yields, or nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import Connection, insert, text

from cohort.errors import Problem
from cohort.manifest import Manifest
from cohort.units import conversion_factor
from cohort.vocabulary import AS_OF, DATE, MEASUREMENTS_FILE
from serving import idempotency
from serving.auth import Principal
from serving.errors import Conflict
from serving.idempotency import Result, Stale
from serving.model import LoadedModel
from serving.schemas import DrawIn
from serving.service.common import (
    ASSESSMENT_INSERT,
    Snapshot,
    assess,
    assessment_values,
    audit,
    bump,
    parse_date,
    read_snapshot,
    refuse,
    timing_problems,
)
from serving.service.locations import BODY, Where
from serving.store import Base, Draw, Measurement, Store, utcnow

DRAW_INSERT = insert(Base.metadata.tables[Draw.__tablename__]).returning(Draw.id)
MEASUREMENT_INSERT = insert(Base.metadata.tables[Measurement.__tablename__])
DRAW = "draw"  # the file of a problem with the draw's date


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
        snap = read_snapshot(store, key, patient_id, manifest)
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
        where = _draw_body(len(snap.measurements))
        extra = _draw_problems(snap, body, max_days_before_index)
        if extra:
            refuse(extra, history, manifest, where)
        _check_not_recorded(snap, body, draw_id)
        doc = assess(model, history, where)
        return 201, doc, _draw_writer(snap, body, draw_id, doc, key, manifest)

    return idempotency.run(
        store, key, idem, fp, attempt, "this draw is already recorded for the patient"
    )


def _draw_body(n_stored: int) -> Where:
    """A draw's body: its measurements follow the ``n_stored`` of the patient's record, and
    its one date stands for theirs, for ``as_of`` and for the draw."""
    date_loc: list[str | int] = [BODY, DATE]
    return Where(
        places={MEASUREMENTS_FILE: ([BODY, MEASUREMENTS_FILE], n_stored)},
        lifted={(MEASUREMENTS_FILE, DATE): date_loc, (AS_OF, ""): date_loc, (DRAW, DATE): date_loc},
    )


def _draw_problems(snap: Snapshot, body: DrawIn, max_days_before_index: int) -> list[Problem]:
    """The live service's own rules for a new draw (the contract's run in the pipeline)."""
    problems = [
        Problem(BODY, None, f"measurements.{i}.date", f"differs from the draw date {body.date}")
        for i, m in enumerate(body.measurements)
        if m.date is not None and m.date != body.date
    ]
    when = parse_date(body.date)
    if when is None:
        return problems
    death = snap.outcome.death_date if snap.outcome else None
    return problems + timing_problems(
        DRAW, None, DATE, "draw", when, snap.patient.index_date, max_days_before_index, death
    )


def _check_not_recorded(snap: Snapshot, body: DrawIn, draw_id: str) -> None:
    when = parse_date(body.date)
    clash = sorted(m.marker for m in body.measurements if (when, m.marker) in snap.taken)
    if clash:
        raise Conflict(f"the patient already has {', '.join(clash)} recorded on {body.date}")
    if draw_id in snap.draw_ids:
        raise Conflict(f"draw {draw_id!r} is already recorded for the patient")


def _draw_writer(
    snap: Snapshot, body: DrawIn, draw_id: str, doc: dict, key: Principal, manifest: Manifest
) -> Callable[[Connection], None]:
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

    def write(session: Connection) -> None:
        if session.dialect.name == "postgresql":
            _write_in_one_statement(session, snap, draw_id, when, measurements(0), doc, key)
            return
        bump(session, snap.patient.id, snap.patient.revision)
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


# PostgreSQL: the whole write of a draw as one statement (data-modifying CTEs), one round
# trip instead of six: the revision claim, the draw, its measurements, the assessment, the
# audit row and the idempotency record. Every insert reads from the claim, so a patient
# whose record moved since it was read gets nothing written (no row claimed: Stale, as
# ``bump``); a unique key violated fails the statement as a whole (IntegrityError, as the
# separate statements did). Same rows, same transaction as the SQLite path above.
_T = {name: table.name for name, table in Base.metadata.tables.items()}
_CLAIM_AND_WRITE = f"""
WITH claim AS (
  UPDATE {_T["patients"]} SET revision = revision + 1
  WHERE id = :patient_pk AND revision = :seen RETURNING id
), d AS (
  INSERT INTO {_T["draws"]} (patient_pk, draw_id, date, created_at, key_id)
  SELECT id, :draw_id, CAST(:date AS date), CAST(:created_at AS timestamptz), :key_id FROM claim
  RETURNING id
), m AS (
  INSERT INTO {_T["measurements"]} (draw_pk, patient_pk, date, marker, value, unit,
    original_value, original_unit, qualifier)
  SELECT d.id, :patient_pk, CAST(:date AS date), v.marker, v.value, v.unit,
    v.original_value, v.original_unit, v.qualifier
  FROM d, unnest(CAST(:markers AS text[]), CAST(:values AS float8[]), CAST(:units AS text[]),
    CAST(:original_values AS float8[]), CAST(:original_units AS text[]),
    CAST(:qualifiers AS text[]))
    AS v(marker, value, unit, original_value, original_unit, qualifier)
), a AS (
  INSERT INTO {_T["assessments"]} (assessment_id, site_id, patient_id, patient_pk, draw_pk,
    source, as_of, issued_at, model_name, model_version, risk_band, alarm, alarm_threshold,
    alarm_horizon_days, body, key_id)
  SELECT :assessment_id, :site_id, :patient_id, :patient_pk, d.id, :source,
    CAST(:as_of AS date), CAST(:issued_at AS timestamptz), :model_name, :model_version,
    :risk_band, :alarm, :alarm_threshold, :alarm_horizon_days, CAST(:body AS jsonb), :key_id
  FROM d
), au AS (
  INSERT INTO {_T["audit_log"]} (at, key_id, site_id, action, resource, patient_id, ref)
  SELECT CAST(:created_at AS timestamptz), :key_id, :site_id, 'write', 'draw',
    :audit_patient_id, :assessment_id FROM claim
){{record}}
SELECT count(*) FROM claim
"""
_RECORD = f""", i AS (
  INSERT INTO {_T["idempotency_keys"]} (key_id, idempotency_key, fingerprint, status_code,
    response, created_at)
  SELECT :key_id, :idempotency_key, :fingerprint, :status_code, CAST(:response AS jsonb),
    CAST(:created_at AS timestamptz) FROM claim
)"""
WRITE_DRAW = text(_CLAIM_AND_WRITE.format(record=""))
WRITE_DRAW_WITH_RECORD = text(_CLAIM_AND_WRITE.format(record=_RECORD))


def _write_in_one_statement(
    session: Connection,
    snap: Snapshot,
    draw_id: str,
    when: date,
    rows: list[dict[str, Any]],
    doc: dict[str, Any],
    key: Principal,
) -> None:
    record = idempotency.take_record(session)
    params = {
        **assessment_values(doc, key, "draw"),
        "body": json.dumps(doc),
        "patient_pk": snap.patient.id,
        "seen": snap.patient.revision,
        "draw_id": draw_id,
        "date": when,
        "created_at": utcnow(),
        "audit_patient_id": snap.patient.patient_id,
        **{f"{column}s": [r[column] for r in rows] for column in MEASUREMENT_COLUMNS},
    }
    for column in ("values", "original_values"):  # one array type: counts come as ints
        params[column] = [float(v) for v in params[column]]
    statement = WRITE_DRAW
    if record is not None:
        statement = WRITE_DRAW_WITH_RECORD
        params |= {
            "idempotency_key": record["idempotency_key"],
            "fingerprint": record["fingerprint"],
            "status_code": record["status_code"],
            "response": (
                params["body"] if record["response"] is doc else json.dumps(record["response"])
            ),
        }
    if session.execute(statement, params).scalar_one() != 1:
        raise Stale()


MEASUREMENT_COLUMNS = ("marker", "value", "unit", "original_value", "original_unit", "qualifier")
