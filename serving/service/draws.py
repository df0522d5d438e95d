"""``POST /v1/patients/{id}/draws``: one blood draw and the assessment it yields, or nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from cohort.errors import Problem
from cohort.manifest import Manifest
from cohort.units import conversion_factor
from cohort.vocabulary import AS_OF, DATE, MEASUREMENTS_FILE
from serving import idempotency
from serving.auth import Principal
from serving.errors import Conflict
from serving.idempotency import Result
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
