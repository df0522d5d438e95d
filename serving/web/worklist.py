"""The worklist: one row per patient of a site, computed in SQL over the store.

Each row is the patient's latest assessment (risk at the alarm horizon, band, alarm,
recommendation, next scan), last draw and last scan, sorted by what needs action first:
an alarm that brings the scan forward, then an overdue scan, then the highest risk. Only
the page asked for leaves the database, so a site of thousands costs one indexed pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, or_, select

from serving.store import Assessment, Draw, Imaging, Outcome, Patient, Store

PAGE_SIZE = 50
BANDS = ("high", "intermediate", "low")
RISK_KEY = "365"  # the worklist's risk: at one year, the alarm's horizon
BRING_FORWARD = "bring_imaging_forward"


@dataclass(frozen=True)
class Query:
    """What the clinician asked for: band filter, id search, whether to include patients
    whose follow-up has ended (recurred or died), and the page."""

    band: str | None = None
    search: str = ""
    ended: bool = False
    page: int = 1


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int


def _check_query(q: Query) -> None:
    if q.band is not None and q.band not in BANDS:
        raise ValueError(f"unknown band {q.band!r}; expected one of {', '.join(BANDS)}")
    if q.page < 1:
        raise ValueError(f"page must be 1 or more, got {q.page}")


def worklist(store: Store, site_id: str, q: Query, today: date) -> Page:
    """The page ``q.page`` of the site's worklist as of ``today``."""
    _check_query(q)
    stmt, count = _statements(site_id, q, today)
    with store.connect() as conn:
        total = int(conn.execute(count).scalar_one())
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(q.page, pages)
        rows = conn.execute(stmt.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).mappings()
        out = [_row(dict(r), today) for r in rows]
    return Page(out, total, page, pages)


def _statements(site_id: str, q: Query, today: date) -> tuple[Select[Any], Select[Any]]:
    latest = (
        select(Assessment.patient_pk, func.max(Assessment.seq).label("seq"))
        .where(Assessment.site_id == site_id, Assessment.patient_pk.is_not(None))
        .group_by(Assessment.patient_pk)
        .subquery("latest")
    )
    site_patients = select(Patient.id).where(Patient.site_id == site_id)
    last_draw = (
        select(Draw.patient_pk, func.max(Draw.date).label("last_draw"))
        .where(Draw.patient_pk.in_(site_patients))
        .group_by(Draw.patient_pk)
        .subquery("last_draw")
    )
    last_scan = (
        select(Imaging.patient_pk, func.max(Imaging.date).label("last_scan"))
        .where(Imaging.patient_pk.in_(site_patients))
        .group_by(Imaging.patient_pk)
        .subquery("last_scan")
    )
    risk = Assessment.body[("risk", RISK_KEY)].as_float()
    next_scan = Assessment.body[("imaging", "next_imaging_date")].as_string()
    advice = Assessment.body[("imaging", "recommendation")].as_string()
    # a scan recorded on or after the date the assessment planned means it took place
    scan_done = and_(
        last_scan.c.last_scan.is_not(None), last_scan.c.last_scan >= func.date(next_scan)
    )
    overdue = and_(next_scan.is_not(None), next_scan < today.isoformat(), ~scan_done)
    alarm_first = and_(Assessment.alarm.is_(True), advice == BRING_FORWARD)
    priority = case((alarm_first, 0), (overdue, 1), else_=2)
    filters = [Patient.site_id == site_id]
    if q.band:
        filters.append(Assessment.risk_band == q.band)
    if q.search.strip():
        filters.append(Patient.patient_id.contains(q.search.strip(), autoescape=True))
    if not q.ended:
        filters.append(
            or_(
                Outcome.patient_pk.is_(None),
                and_(Outcome.recurrence_date.is_(None), Outcome.death_date.is_(None)),
            )
        )
    base = (
        select(Patient.patient_id)
        .select_from(Patient)
        .outerjoin(latest, latest.c.patient_pk == Patient.id)
        .outerjoin(Assessment, Assessment.seq == latest.c.seq)
        .outerjoin(last_draw, last_draw.c.patient_pk == Patient.id)
        .outerjoin(last_scan, last_scan.c.patient_pk == Patient.id)
        .outerjoin(Outcome, Outcome.patient_pk == Patient.id)
        .where(*filters)
    )
    stmt = base.add_columns(
        Patient.index_date,
        last_draw.c.last_draw,
        last_scan.c.last_scan,
        risk.label("risk"),
        Assessment.risk_band,
        Assessment.alarm,
        Assessment.as_of,
        next_scan.label("next_scan"),
        advice.label("recommendation"),
        case((overdue, literal(True)), else_=literal(False)).label("overdue"),
        Outcome.recurrence_date,
        Outcome.death_date,
    ).order_by(priority, risk.desc().nulls_last(), Patient.patient_id)
    count = select(func.count()).select_from(base.subquery())
    return stmt, count


def _row(r: dict[str, Any], today: date) -> dict[str, Any]:
    last = r["last_draw"]
    r["days_since_draw"] = None if last is None else (today - last).days
    r["scan_done"] = (
        r["next_scan"] is not None
        and r["last_scan"] is not None
        and r["last_scan"].isoformat() >= r["next_scan"]
    )
    r["bring_forward"] = bool(r["alarm"]) and r["recommendation"] == BRING_FORWARD
    return r
