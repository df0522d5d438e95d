"""What a clinician reads: a patient's stored record and every assessment issued (audited)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from cohort.vocabulary import DATE, OUTCOME_DATES
from serving.auth import Principal
from serving.service.common import audit, find_patient, patient_record
from serving.store import Assessment, Draw, Imaging, Measurement, Outcome, Store


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
