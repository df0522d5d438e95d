"""Load a cohort's patients into the service store as if each draw had been entered live.

``ctcmon demo`` uses this to leave a populated worklist, the browser tests and the web
benchmark to get realistic patients. Each draw's assessment is issued by the live model
through ``service.assess`` (the path every submitted draw takes) on the patient's history
up to that draw; the rows are written with the service's own Core statements, many
patients per transaction, so thousands of draws load in seconds rather than one
transaction each.

``until`` cuts the cohort at a date as if it were today (later draws, scans and outcomes
are not yet known); ``shift_days`` moves every date, e.g. so that ``until`` becomes today.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import joblib
import pandas as pd
from sqlalchemy import insert
from sqlalchemy.orm import Session

from cohort.cohort import Cohort
from cohort.records import ImagingRecord, MeasurementRecord, PatientHistory, PatientRecord
from cohort.vocabulary import DATE, INDEX_DATE, OUTCOME_DATES, PATIENT_ID
from serving import service
from serving.auth import Principal
from serving.model import LoadedModel
from serving.store import Base, Imaging, Outcome, Patient, Store, utcnow

PATIENT_INSERT = insert(Base.metadata.tables[Patient.__tablename__]).returning(Patient.id)
IMAGING_INSERT = insert(Base.metadata.tables[Imaging.__tablename__])
OUTCOME_INSERT = insert(Base.metadata.tables[Outcome.__tablename__])
BATCH = 100  # patients per transaction


@dataclass
class Loaded:
    patients: int = 0
    draws: int = 0
    scans: int = 0
    assessments: int = 0


def _check_args(until: date | None, batch: int) -> None:
    if batch < 1:
        raise ValueError(f"batch must be at least 1 patient, got {batch}")
    if until is not None and not isinstance(until, date):
        raise TypeError(f"until must be a date, got {until!r}")


def load_cohort_patients(
    store: Store,
    model: LoadedModel,
    key: Principal,
    cohort: Cohort,
    *,
    until: date | None = None,
    shift_days: int = 0,
    batch: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> Loaded:
    """Register the cohort's patients at ``key``'s site with their draws, an assessment per
    draw, their scans and outcomes (as known at ``until``), dates moved by ``shift_days``."""
    _check_args(until, batch)
    shift = timedelta(days=shift_days)
    patients = _patients(cohort, until, shift)
    by_patient = {
        "m": _grouped(cohort.measurements, until, shift),
        "i": _grouped(cohort.imaging, until, shift),
        "o": _grouped(cohort.outcomes, None, shift, date_col=None),
    }
    total = Loaded()
    for start in range(0, len(patients), batch):
        chunk = patients[start : start + batch]
        # one row per call: a forest's joblib threads cost more to start and poll than the
        # trees take (a random survival forest: 3x faster sequential, measured on 2 cores)
        with joblib.parallel_config(backend="sequential"):
            prepared = [_prepare(model, p, by_patient, until, shift) for p in chunk]
        with store.writing() as session:
            for p in prepared:
                _write(session, key, p, total)
        if progress:
            progress(min(start + batch, len(patients)), len(patients))
    return total


def clinic_day(cohort: Cohort, quantile: float, today: date | None = None) -> tuple[date, int]:
    """A day of the cohort's calendar to play as today: the day by which ``quantile`` of
    its patients had been operated on, and the shift in days that makes it yesterday."""
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    cut = pd.Timestamp(cohort.patients[INDEX_DATE].quantile(quantile)).date()
    return cut, ((today or date.today()) - timedelta(days=1) - cut).days


def in_follow_up(cohort: Cohort, day: date) -> list[str]:
    """Patients operated on by ``day`` and still followed then (no recurrence, death or last
    follow-up before it): the ones a clinic's worklist holds on that day."""
    ends = cohort.outcomes.set_index(PATIENT_ID)[list(OUTCOME_DATES)].min(axis=1)
    index = cohort.patients.set_index(PATIENT_ID)[INDEX_DATE]
    when = pd.Timestamp(day)
    end = ends.reindex(index.index)
    keep = (index <= when) & (end.isna() | (end >= when))
    return [str(p) for p in index.index[keep]]


# ---- reading the cohort ----
def _day(value: Any, shift: timedelta) -> str:
    return (pd.Timestamp(value).date() + shift).isoformat()


def _patients(cohort: Cohort, until: date | None, shift: timedelta) -> list[dict[str, Any]]:
    rows = []
    for r in cohort.patients.to_dict(orient="records"):
        if until is not None and pd.Timestamp(r[INDEX_DATE]).date() > until:
            continue  # not operated yet on that day
        covariates = {
            k: v
            for k, v in r.items()
            if k in cohort.manifest.covariates and not (isinstance(v, float) and math.isnan(v))
        }
        rows.append(
            {
                PATIENT_ID: str(r[PATIENT_ID]),
                INDEX_DATE: _day(r[INDEX_DATE], shift),
                "covariates": covariates,
            }
        )
    return rows


def _grouped(
    frame: pd.DataFrame, until: date | None, shift: timedelta, date_col: str | None = DATE
) -> dict[str, list[dict[str, Any]]]:
    if until is not None and date_col is not None:
        frame = frame[frame[date_col] <= pd.Timestamp(until)]
    out: dict[str, list[dict[str, Any]]] = {}
    for row in frame.to_dict(orient="records"):
        r = {str(k): v for k, v in row.items()}
        if date_col is not None:
            r[DATE] = _day(r[date_col], shift)
        out.setdefault(str(r[PATIENT_ID]), []).append(r)
    return out


def _text(value: Any) -> str | None:
    return (
        None
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA
        else str(value)
    )


# ---- one patient: records and the assessment after each draw ----
def _prepare(
    model: LoadedModel,
    p: dict[str, Any],
    by: dict[str, dict[str, list[dict[str, Any]]]],
    until: date | None,
    shift: timedelta,
) -> dict[str, Any]:
    pid = p[PATIENT_ID]
    record = PatientRecord(patient_id=pid, index_date=p[INDEX_DATE], **p["covariates"])
    measurements = [
        MeasurementRecord.model_construct(
            date=r[DATE],
            marker=r["marker"],
            value=float(r["value"]),
            unit=r["unit"],
            qualifier=_text(r.get("qualifier")),
            draw_id=_text(r.get("draw_id")) or f"{pid}-{r[DATE]}",
        )
        for r in by["m"].get(pid, [])
    ]
    imaging = [
        ImagingRecord.model_construct(
            date=r[DATE],
            modality=r["modality"],
            finding=r["finding"],
            response=_text(r.get("response")),
            criteria=_text(r.get("criteria")),
        )
        for r in by["i"].get(pid, [])
    ]
    draws = []
    for when, draw_id, rows in _draws(measurements):
        seen = [m for m in measurements if m.date is not None and m.date <= when]
        history = PatientHistory.model_construct(
            patient=record,
            measurements=seen,
            imaging=[i for i in imaging if i.date <= when],
            as_of=when,
            next_imaging_date=None,
        )
        doc = service.assess(model, history, service.body_loc)
        draws.append((when, draw_id, rows, doc))
    return {
        "patient": p,
        "draws": draws,
        "imaging": imaging,
        "outcome": _outcome(by["o"].get(pid), until, shift),
    }


def _draws(measurements: list[MeasurementRecord]) -> Iterator[tuple[str, str, list]]:
    groups: dict[tuple[str, str], list[MeasurementRecord]] = {}
    for m in measurements:
        groups.setdefault((str(m.date), str(m.draw_id)), []).append(m)
    for (when, draw_id), rows in sorted(groups.items()):
        yield when, draw_id, rows


def _outcome(
    rows: list[dict[str, Any]] | None, until: date | None, shift: timedelta
) -> dict[str, date | None] | None:
    if not rows:
        return None
    out: dict[str, date | None] = {}
    for c in OUTCOME_DATES:
        value = rows[0].get(c)
        when = None if value is None or pd.isna(value) else pd.Timestamp(value).date()
        if when is not None and until is not None and when > until:
            when = until if c == OUTCOME_DATES[0] else None  # not known yet on that day
        out[c] = None if when is None else when + shift
    return out if out[OUTCOME_DATES[0]] is not None else None


# ---- writing ----
def _write(session: Session, key: Principal, p: dict[str, Any], total: Loaded) -> None:
    now = utcnow()
    info = p["patient"]
    pk = session.execute(
        PATIENT_INSERT,
        {
            "site_id": key.site_id,
            "patient_id": info[PATIENT_ID],
            "index_date": date.fromisoformat(info[INDEX_DATE]),
            "covariates": info["covariates"],
            "revision": 0,
            "created_at": now,
        },
    ).scalar_one()
    for when, draw_id, rows, doc in p["draws"]:
        day = date.fromisoformat(when)
        draw_pk = session.execute(
            service.DRAW_INSERT,
            {
                "patient_pk": pk,
                "draw_id": draw_id,
                "date": day,
                "created_at": now,
                "key_id": key.key_id,
            },
        ).scalar_one()
        session.execute(
            service.MEASUREMENT_INSERT,
            [
                {
                    "draw_pk": draw_pk,
                    "patient_pk": pk,
                    "date": day,
                    "marker": m.marker,
                    "value": m.value,
                    "unit": m.unit,
                    "original_value": m.value,
                    "original_unit": m.unit,
                    "qualifier": m.qualifier,
                }
                for m in rows
            ],
        )
        session.execute(
            service.ASSESSMENT_INSERT,
            {**service.assessment_values(doc, key, "draw"), "patient_pk": pk, "draw_pk": draw_pk},
        )
    if p["imaging"]:
        session.execute(
            IMAGING_INSERT,
            [
                {
                    "patient_pk": pk,
                    "date": date.fromisoformat(i.date),
                    "modality": i.modality,
                    "finding": i.finding,
                    "response": i.response,
                    "criteria": i.criteria,
                    "created_at": now,
                }
                for i in p["imaging"]
            ],
        )
    if p["outcome"]:
        session.execute(OUTCOME_INSERT, {"patient_pk": pk, "updated_at": now, **p["outcome"]})
    service.audit(session, key, "write", "seed", info[PATIENT_ID])
    total.patients += 1
    total.draws += len(p["draws"])
    total.assessments += len(p["draws"])
    total.scans += len(p["imaging"])
