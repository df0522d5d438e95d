"""What the patient page shows: the stored record and every assessment issued, in one read.

The record is read with ``service.snapshot`` (the read every draw submission makes, on
indexed Core queries) and the assessments by the (site, patient, seq) index; the view is
audited as one read. ``service.read_patient`` and ``service.list_assessments`` give the
same content for the API but find assessments by a column without an index, which on a
store of tens of thousands of assessments cost more than the page's whole budget.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from cohort.manifest import Manifest
from cohort.vocabulary import DATE, OUTCOME_DATES
from serving import service
from serving.auth import Principal
from serving.store import Assessment, Store

ASSESSMENTS_OF = (
    select(Assessment.body)
    .where(
        Assessment.site_id == bindparam("site_id"),
        Assessment.patient_id == bindparam("patient_id"),
        Assessment.patient_pk == bindparam("patient_pk"),
    )
    .order_by(Assessment.seq)
)


def patient_view(
    store: Store, key: Principal, patient_id: str, manifest: Manifest | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(record, assessments oldest first) of the key's site's patient; NotFound otherwise."""
    if manifest is None:  # no model loaded: the API's reads (every marker, slower)
        record = service.read_patient(store, key, patient_id)
        return record, service.list_assessments(store, key, patient_id)
    with store.connect() as conn:
        snap = service.snapshot(conn, key, patient_id, manifest)
        bodies = list(
            conn.scalars(
                ASSESSMENTS_OF,
                {"site_id": key.site_id, "patient_id": patient_id, "patient_pk": snap.patient.id},
            )
        )
    with store.writing() as session:
        service.audit(session, key, "read", "web:patient", patient_id)
    return _record(snap), bodies


def _record(snap: service.Snapshot) -> dict[str, Any]:
    """The snapshot in ``service.read_patient``'s shape (values in canonical units)."""
    draws: dict[str, dict[str, Any]] = {}
    for m in snap.measurements:
        draw = draws.setdefault(
            str(m.draw_id), {"draw_id": m.draw_id, DATE: m.date, "measurements": []}
        )
        draw["measurements"].append(
            {
                "marker": m.marker,
                "value": m.value,
                "unit": m.unit,
                "qualifier": m.qualifier,
                "canonical_value": m.value,
                "canonical_unit": m.unit,
            }
        )
    outcome = snap.outcome
    return {
        "patient": service.patient_record(snap.patient),
        "draws": sorted(draws.values(), key=lambda d: d[DATE]),
        "imaging": [i.model_dump() for i in snap.imaging],
        "outcome": None
        if outcome is None
        else {c: (v.isoformat() if (v := getattr(outcome, c)) else None) for c in OUTCOME_DATES},
    }
