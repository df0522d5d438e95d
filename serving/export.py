"""``GET /v1/export``: a site's patients as a cohort in the data contract, plus every assessment.

The ZIP holds cohort.toml (the live model's manifest), patients.csv, measurements.csv (values
as they were sent, with their units), imaging.csv, outcomes.csv and assessments.csv. The
extracted folder loads with ``cohort.load.load_cohort``. A patient without a recorded
outcome, or with draws after it, is followed up to its last draw or scan (censored there).
"""

from __future__ import annotations

import io
import zipfile
from collections import defaultdict
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort._simulate_tables import to_toml  # the one TOML writer of manifests (make it public)
from cohort.manifest import Manifest
from cohort.vocabulary import (
    AS_OF,
    ASSESSMENT_ID,
    ASSESSMENTS_FILE,
    DATE,
    IMAGING_FILE,
    INDEX_DATE,
    ISSUED_AT,
    LAST_FOLLOWUP_DATE,
    MANIFEST_FILE,
    MEASUREMENTS_FILE,
    OUTCOME_DATES,
    OUTCOMES_FILE,
    PATIENT_ID,
    PATIENTS_FILE,
    SITE_ID,
    risk_column,
)
from serving.auth import Principal
from serving.service import audit
from serving.store import Assessment, Draw, Imaging, Measurement, Outcome, Patient, Store

MEASUREMENT_COLUMNS = [PATIENT_ID, DATE, "marker", "value", "unit", "qualifier", "draw_id"]
IMAGING_COLUMNS = [PATIENT_ID, DATE, "modality", "finding", "response", "criteria"]


def assessment_columns(horizons: tuple[float, ...]) -> list[str]:
    return [
        PATIENT_ID,
        ASSESSMENT_ID,
        ISSUED_AT,
        AS_OF,
        "model_name",
        "model_version",
        *(risk_column(h) for h in horizons),
        "risk_band",
        "alarm",
        "alarm_threshold",
        "alarm_horizon_days",
    ]


def export_site(
    store: Store, key: Principal, manifest: Manifest, horizons: tuple[float, ...]
) -> bytes:
    """The key's site as a ZIP of contract files; the export is audited."""
    with store.writing() as session:
        tables = _tables(session, key.site_id, manifest, horizons)
        audit(session, key, "read", "export", None, f"{len(tables[PATIENTS_FILE])} patients")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST_FILE, to_toml(manifest.to_toml_dict()))
        for stem, frame in tables.items():
            archive.writestr(f"{stem}.csv", frame.to_csv(index=False))
    return buffer.getvalue()


def _tables(
    session: Session, site: str, manifest: Manifest, horizons: tuple[float, ...]
) -> dict[str, pd.DataFrame]:
    patients = list(
        session.scalars(select(Patient).where(Patient.site_id == site).order_by(Patient.patient_id))
    )
    ids = {p.id: p.patient_id for p in patients}
    last_seen: dict[int, date] = defaultdict(lambda: date.min)
    measurements = _measurements(session, site, manifest, ids, last_seen)
    imaging = _imaging(session, site, ids, last_seen)
    return {
        PATIENTS_FILE: pd.DataFrame(
            [_patient_row(p, manifest) for p in patients],
            columns=[PATIENT_ID, SITE_ID, INDEX_DATE, *manifest.covariates],
        ),
        MEASUREMENTS_FILE: pd.DataFrame(measurements, columns=MEASUREMENT_COLUMNS),
        IMAGING_FILE: pd.DataFrame(imaging, columns=IMAGING_COLUMNS),
        OUTCOMES_FILE: pd.DataFrame(
            _outcomes(session, patients, last_seen), columns=[PATIENT_ID, *OUTCOME_DATES]
        ),
        ASSESSMENTS_FILE: pd.DataFrame(
            _assessments(session, site, horizons), columns=assessment_columns(horizons)
        ),
    }


def _patient_row(p: Patient, manifest: Manifest) -> dict[str, Any]:
    row: dict[str, Any] = {
        PATIENT_ID: p.patient_id,
        SITE_ID: p.site_id,
        INDEX_DATE: p.index_date.isoformat(),
    }
    for name in manifest.covariates:
        value = p.covariates.get(name)
        row[name] = "" if value is None else (int(value) if isinstance(value, bool) else value)
    return row


def _measurements(
    session: Session, site: str, manifest: Manifest, ids: dict[int, str], last: dict[int, date]
) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Measurement, Draw.draw_id)
        .join(Draw, Draw.id == Measurement.draw_pk)
        .join(Patient, Patient.id == Measurement.patient_pk)
        .where(Patient.site_id == site, Measurement.marker.in_(list(manifest.markers)))
        .order_by(Measurement.patient_pk, Measurement.date, Measurement.marker)
    )
    out = []
    for m, draw_id in rows:
        last[m.patient_pk] = max(last[m.patient_pk], m.date)
        out.append(
            {
                PATIENT_ID: ids[m.patient_pk],
                DATE: m.date.isoformat(),
                "marker": m.marker,
                "value": m.original_value,
                "unit": m.original_unit,
                "qualifier": m.qualifier or "",
                "draw_id": draw_id,
            }
        )
    return out


def _imaging(
    session: Session, site: str, ids: dict[int, str], last: dict[int, date]
) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Imaging)
        .join(Patient, Patient.id == Imaging.patient_pk)
        .where(Patient.site_id == site)
        .order_by(Imaging.patient_pk, Imaging.date)
    )
    out = []
    for i in rows:
        last[i.patient_pk] = max(last[i.patient_pk], i.date)
        out.append(
            {
                PATIENT_ID: ids[i.patient_pk],
                DATE: i.date.isoformat(),
                "modality": i.modality,
                "finding": i.finding,
                "response": i.response or "",
                "criteria": i.criteria or "",
            }
        )
    return out


def _outcomes(
    session: Session, patients: list[Patient], last: dict[int, date]
) -> list[dict[str, Any]]:
    recorded = {
        o.patient_pk: o
        for o in session.scalars(
            select(Outcome).where(Outcome.patient_pk.in_([p.id for p in patients]))
        )
    }
    rows = []
    for p in patients:
        o = recorded.get(p.id)
        dates = {c: getattr(o, c) if o else None for c in OUTCOME_DATES}
        # follow-up lasts at least to the last draw or scan (draws after death are refused)
        dates[LAST_FOLLOWUP_DATE] = max(
            p.index_date, last[p.id], dates[LAST_FOLLOWUP_DATE] or date.min
        )
        rows.append(
            {PATIENT_ID: p.patient_id, **{c: v.isoformat() if v else "" for c, v in dates.items()}}
        )
    return rows


def _assessments(session: Session, site: str, horizons: tuple[float, ...]) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Assessment)
        .where(Assessment.site_id == site, Assessment.patient_pk.is_not(None))
        .order_by(Assessment.seq)
    )
    out = []
    for a in rows:
        risk = a.body.get("risk", {})
        out.append(
            {
                PATIENT_ID: a.patient_id,
                ASSESSMENT_ID: a.assessment_id,
                ISSUED_AT: a.issued_at.isoformat().replace("+00:00", "Z"),
                AS_OF: a.as_of.isoformat(),
                "model_name": a.model_name,
                "model_version": a.model_version or "",
                **{risk_column(h): risk.get(str(int(h)), "") for h in horizons},
                "risk_band": a.risk_band,
                "alarm": int(a.alarm),
                "alarm_threshold": a.alarm_threshold,
                "alarm_horizon_days": a.alarm_horizon_days,
            }
        )
    return out
