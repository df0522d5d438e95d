"""The worklist: one row per patient of a site, computed in SQL over the store.

Each row is the patient's latest assessment (risk at the alarm horizon, band, alarm,
recommendation, next scan), last draw and last scan, sorted by what needs action first:
an alarm whose scan should come sooner than booked (brought forward, or already overdue
today), then an overdue scan, then the highest risk. Only the page asked for leaves the
database, so a site of thousands costs one indexed pass.

The recommendation was issued with the assessment, on the day of the draw; the worklist is
read today. A scan booked then and overdue now is said as it stands today: "scan now" for a
patient in alarm (whatever the draw-day recommendation said), "book the overdue scan" for
anyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, String, and_, case, cast, func, literal, or_, select

from serving.store import Assessment, Draw, Imaging, Outcome, Patient, Store
from serving.web.render import recommendation

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
    stmt = _statement(site_id, q, today)
    with store.connect() as conn:
        rows = _fetch(conn, stmt, q.page)
        if not rows and q.page > 1:  # past the last page (the list shrank): the first
            rows = _fetch(conn, stmt, 1)
            q = Query(q.band, q.search, q.ended, 1)
    total = int(rows[0]["total"]) if rows else 0
    pages = max(1, -(-total // PAGE_SIZE))
    return Page([_row(r, today) for r in rows], total, q.page, pages)


def _fetch(conn: Any, stmt: Select[Any], page: int) -> list[dict[str, Any]]:
    paged = stmt.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    return [dict(r) for r in conn.execute(paged).mappings()]


def _statement(site_id: str, q: Query, today: date) -> Select[Any]:
    """One query: each patient's latest assessment (by the (site, patient, seq) index, not a
    scan of the assessments), last draw and last scan; the assessment's JSON fields read
    once per patient in a materialised CTE; sorted, with the total as a window count."""
    latest_seq = (
        select(func.max(Assessment.seq))
        .where(Assessment.site_id == Patient.site_id, Assessment.patient_id == Patient.patient_id)
        .scalar_subquery()
    )
    last_draw = select(func.max(Draw.date)).where(Draw.patient_pk == Patient.id).scalar_subquery()
    last_scan = (
        select(func.max(Imaging.date)).where(Imaging.patient_pk == Patient.id).scalar_subquery()
    )
    people = select(
        Patient.id.label("pk"),
        Patient.patient_id,
        Patient.index_date,
        latest_seq.label("seq"),
        last_draw.label("last_draw"),
        last_scan.label("last_scan"),
    ).where(Patient.site_id == site_id)
    if q.search.strip():
        people = people.where(Patient.patient_id.contains(q.search.strip(), autoescape=True))
    p = people.subquery("p")
    cur = (
        select(
            p,
            Assessment.body[("risk", RISK_KEY)].as_float().label("risk"),
            Assessment.risk_band,
            Assessment.alarm,
            Assessment.as_of,
            Assessment.body[("imaging", "next_imaging_date")].as_string().label("next_scan"),
            Assessment.body[("imaging", "recommendation")].as_string().label("recommendation"),
            Outcome.recurrence_date,
            Outcome.death_date,
        )
        .select_from(p)
        .outerjoin(Assessment, Assessment.seq == p.c.seq)
        .outerjoin(Outcome, Outcome.patient_pk == p.c.pk)
    )
    if q.band:
        cur = cur.where(Assessment.risk_band == q.band)
    if not q.ended:
        cur = cur.where(
            or_(
                Outcome.patient_pk.is_(None),
                and_(Outcome.recurrence_date.is_(None), Outcome.death_date.is_(None)),
            )
        )
    w = cur.cte("worklist").prefix_with("MATERIALIZED")
    # a scan recorded on or after the date the assessment planned means it took place
    # (``scan_done`` for one patient)
    done = and_(w.c.last_scan.is_not(None), cast(w.c.last_scan, String) >= w.c.next_scan)
    overdue = and_(w.c.next_scan.is_not(None), w.c.next_scan < today.isoformat(), ~done)
    alarm_first = and_(w.c.alarm.is_(True), or_(w.c.recommendation == BRING_FORWARD, overdue))
    priority = case((alarm_first, 0), (overdue, 1), else_=2)
    return select(
        w,
        case((overdue, literal(True)), else_=literal(False)).label("overdue"),
        case((alarm_first, literal(True)), else_=literal(False)).label("alarm_first"),
        func.count().over().label("total"),
    ).order_by(priority, w.c.risk.desc().nulls_last(), w.c.patient_id)


def _row(r: dict[str, Any], today: date) -> dict[str, Any]:
    last = r["last_draw"]
    r["days_since_draw"] = None if last is None else (today - last).days
    r["scan_done"] = scan_done(r["next_scan"], r["last_scan"])
    r["action"] = _action(r)
    return r


def scan_done(next_scan: str | None, last_scan: date | None) -> bool:
    """Whether the scan planned for ``next_scan`` took place: one recorded on or after it."""
    return next_scan is not None and last_scan is not None and last_scan.isoformat() >= next_scan


SCAN_NOW = "Scan now: booked scan overdue"
BOOK_OVERDUE = "Book the overdue scan"


def _action(r: dict[str, Any]) -> str | None:
    """What to do today: the draw-day recommendation, unless the booked scan is overdue."""
    if r["recommendation"] is None:
        return None
    if r["overdue"]:
        return SCAN_NOW if r["alarm"] else BOOK_OVERDUE
    return recommendation(r["recommendation"])
