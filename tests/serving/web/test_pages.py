"""The web app over real HTTP (uvicorn, SQLite and PostgreSQL stores): sessions, CSRF, site
scoping, the audit trail, the worklist's order and the forms' validation."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from serving.auth import revoke_key
from serving.store import Assessment, AuditEvent, Draw, Patient, Store
from serving.web.pages import scan_overdue
from tests.serving.conftest import PATIENT, Api, Keys, Server, draw

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
IDEM = re.compile(r'name="idem" value="([^"]+)"')


class Browser:
    """A cookie-keeping client that signs in and posts forms as the pages do."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=60, follow_redirects=False)

    def sign_in(self, key: str) -> httpx.Response:
        page = self.client.get("/")
        token = CSRF.search(page.text)
        assert token, page.text
        return self.client.post("/sign-in", data={"csrf": token.group(1), "api_key": key})

    def tokens(self, path: str) -> tuple[str, str]:
        page = self.client.get(path)
        assert page.status_code == 200, page.text
        csrf, idem = CSRF.search(page.text), IDEM.search(page.text)
        assert csrf and idem
        return csrf.group(1), idem.group(1)

    def submit(self, path: str, form_page: str, fields: dict[str, str]) -> httpx.Response:
        csrf, idem = self.tokens(form_page)
        return self.client.post(path, data={"csrf": csrf, "idem": idem, **fields})


@pytest.fixture
def browser(server: Server) -> Iterator[Browser]:
    b = Browser(server.url)
    yield b
    b.client.close()


@pytest.fixture
def signed_in(browser: Browser, keys: Keys) -> Browser:
    r = browser.sign_in(keys.clinician)
    assert r.status_code == 303, r.text
    return browser


def test_the_home_page_asks_for_a_key_and_a_wrong_key_is_refused(browser: Browser) -> None:
    page = browser.client.get("/")
    assert page.status_code == 200 and 'name="api_key"' in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    r = browser.sign_in("ctc_not-a-key")
    assert r.status_code == 401 and "not valid" in r.text
    assert "ctcmon_session" not in r.headers.get("set-cookie", "")


def test_sign_in_sets_a_strict_http_only_expiring_cookie_and_sign_out_ends_it(
    browser: Browser, keys: Keys
) -> None:
    r = browser.sign_in(keys.clinician)
    assert r.status_code == 303
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("ctcmon_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # served on 127.0.0.1 over plain http
    assert keys.clinician not in cookie  # the key itself never leaves the sign-in form
    page = browser.client.get("/")
    assert page.status_code == 200 and "Worklist" in page.text
    csrf = CSRF.search(page.text)
    assert csrf
    assert browser.client.post("/sign-out", data={"csrf": "forged"}).status_code == 403
    out = browser.client.post("/sign-out", data={"csrf": csrf.group(1)})
    assert out.status_code == 303
    assert 'name="api_key"' in browser.client.get("/").text


def test_a_sign_in_without_the_forms_token_is_refused(server: Server, keys: Keys) -> None:
    r = httpx.post(f"{server.url}/sign-in", data={"api_key": keys.clinician, "csrf": "x"})
    assert r.status_code == 403 and "expired" in r.text


def test_a_researcher_key_cannot_sign_in_and_the_denial_is_audited(
    browser: Browser, keys: Keys, store: Store
) -> None:
    r = browser.sign_in(keys.researcher)
    assert r.status_code == 403 and "researcher key" in r.text
    with store.reading() as s:
        denied = s.scalars(select(AuditEvent).where(AuditEvent.action == "denied")).all()
    assert [d.key_id for d in denied] == [keys.ids["researcher"]]


def test_a_revoked_key_ends_its_sessions(signed_in: Browser, keys: Keys, store: Store) -> None:
    assert "Worklist" in signed_in.client.get("/").text
    revoke_key(store, keys.ids["clinician"])
    assert 'name="api_key"' in signed_in.client.get("/").text
    assert signed_in.client.get("/patients/p-0042").status_code == 303


def test_a_forged_session_cookie_is_ignored(server: Server, keys: Keys) -> None:
    forged = {"ctcmon_session": "eyJrIjoia2V5X3gifQ.forged.sig"}
    r = httpx.get(f"{server.url}/", cookies=forged)
    assert 'name="api_key"' in r.text


def test_another_sites_patient_is_a_404_page_and_every_view_is_audited(
    server: Server, keys: Keys, patient: dict[str, Any], store: Store
) -> None:
    other, mine = Browser(server.url), Browser(server.url)
    assert other.sign_in(keys.other_site).status_code == 303
    r = other.client.get("/patients/p-0042")
    assert r.status_code == 404 and "No patient 'p-0042' at site 'site-b'" in html.unescape(r.text)
    mine.sign_in(keys.clinician)
    assert mine.client.get("/patients/p-0042").status_code == 200
    mine.client.get("/")
    other.client.close()
    mine.client.close()
    with store.reading() as s:
        reads = s.execute(
            select(AuditEvent.key_id, AuditEvent.resource, AuditEvent.patient_id).where(
                AuditEvent.action == "read"
            )
        ).all()
    mine_reads = {(r.resource, r.patient_id) for r in reads if r.key_id == keys.ids["clinician"]}
    assert ("web:patient", "p-0042") in mine_reads and ("web:worklist", None) in mine_reads
    assert not any(r.patient_id == "p-0042" for r in reads if r.key_id == keys.ids["other_site"])


def _patients(api: Api, n: int) -> None:
    for i in range(n):
        r = api.clinician.post("/v1/patients", json={**PATIENT, "patient_id": f"p-{i:03d}"})
        assert r.status_code == 201, r.text


def test_the_worklist_puts_alarms_first_then_overdue_scans_then_risk(
    signed_in: Browser, api: Api
) -> None:
    _patients(api, 3)
    # a high CTC count and AFP raise the risk; an old draw's next scan is long overdue
    assert (
        api.clinician.post("/v1/patients/p-000/draws", json=draw("2024-02-10", 0, 2)).status_code
        == 201
    )
    assert (
        api.clinician.post(
            "/v1/patients/p-001/draws", json=draw("2024-03-01", 40, 9000)
        ).status_code
        == 201
    )
    r = api.clinician.post(
        "/v1/patients/p-002/draws", json=draw("2024-02-20", 1, 5, next_imaging_date="2099-01-01")
    )
    assert r.status_code == 201
    assessments = {
        p: api.clinician.get(f"/v1/patients/{p}/assessments").json()[-1]
        for p in ("p-000", "p-001", "p-002")
    }
    page = signed_in.client.get("/")
    assert page.status_code == 200
    order = re.findall(r'href="/patients/(p-\d{3})"', page.text)

    def overdue(p: str) -> bool:  # booked in 2024, read today; p-002's is booked in 2099
        return assessments[p]["imaging"]["next_imaging_date"] < "2099"

    def forward(p: str) -> bool:
        return assessments[p]["imaging"]["recommendation"] == "bring_imaging_forward"

    # an alarm whose scan should come sooner (brought forward, or overdue by now) first
    expected = sorted(
        assessments,
        key=lambda p: (
            0 if assessments[p]["alarm"] and (forward(p) or overdue(p)) else 1 if overdue(p) else 2,
            -assessments[p]["risk"]["365"],
        ),
    )
    assert order == expected
    assert page.text.count(">overdue<") == 2
    # what to do today, not what the draw-day recommendation said then
    in_alarm = [p for p in assessments if overdue(p) and assessments[p]["alarm"]]
    assert in_alarm, "the test needs an alarm whose booked scan is overdue"
    assert page.text.count("Scan now: booked scan overdue") == len(in_alarm)
    assert page.text.count("Book the overdue scan") == 2 - len(in_alarm)
    assert page.text.count('class="row-alarm"') == len(in_alarm) + sum(
        1 for p in assessments if assessments[p]["alarm"] and forward(p) and not overdue(p)
    )


def test_the_worklist_filters_by_band_searches_ids_and_pages(
    signed_in: Browser, api: Api, store: Store
) -> None:
    _patients(api, 55)
    first = signed_in.client.get("/")
    assert "55 patients in follow-up" in first.text and "Page 1 of 2" in first.text
    second = signed_in.client.get("/?page=2")
    ids = set(re.findall(r'href="/patients/(p-\d{3})"', first.text)) | set(
        re.findall(r'href="/patients/(p-\d{3})"', second.text)
    )
    assert len(ids) == 55
    found = signed_in.client.get("/?q=p-05")
    assert re.findall(r'href="/patients/(p-\d{3})"', found.text) == [f"p-05{i}" for i in range(5)]
    assert "0 patients" in signed_in.client.get("/?band=high").text  # no assessment yet
    assert signed_in.client.get("/?band=purple").status_code == 400


def test_a_draw_entered_in_the_form_is_assessed_and_a_double_submit_stores_one(
    signed_in: Browser, patient: dict[str, Any], store: Store
) -> None:
    csrf, idem = signed_in.tokens("/patients/p-0042")
    fields = {
        "csrf": csrf,
        "idem": idem,
        "date": "2024-03-01",
        "value_ctc_total": "3",
        "unit_ctc_total": "cells/7.5mL",
        "value_afp": "<2",
        "unit_afp": "ng/mL",
    }
    first = signed_in.client.post("/patients/p-0042/draws", data=fields)
    again = signed_in.client.post("/patients/p-0042/draws", data=fields)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == "/patients/p-0042?saved=draw"
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(Draw)) == 1
        assert s.scalar(select(func.count()).select_from(Assessment)) == 1
    page = signed_in.client.get(first.headers["location"])
    assert "Draw stored" in page.text and "Every assessment issued (1)" in page.text
    assert "&lt;2" in page.text  # the AFP below the detection limit, shown as entered
    assert "Training patient" not in page.text  # a new patient: the packaged model's risk


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"date": "2024-13-01", "value_afp": "5"}, "date", "not a date"),
        ({"date": "2024-03-01", "value_afp": "five"}, "value_afp", "not a number: 'five'"),
        ({"date": "2024-03-01", "value_afp": "-3"}, "value_afp", "must be a number >= 0"),
        ({"date": "2099-03-01", "value_afp": "5"}, "date", "in the future"),
        ({"date": "2024-03-01"}, "_form", "enter at least one marker value"),
    ],
)
def test_a_bad_draw_is_shown_next_to_its_field_and_nothing_is_stored(
    signed_in: Browser,
    patient: dict[str, Any],
    store: Store,
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    r = signed_in.submit("/patients/p-0042/draws", "/patients/p-0042", fields)
    assert r.status_code == 422, r.text
    if field == "_form":
        assert re.search(r'role="alert">\s*<p>' + re.escape(message), r.text)
    else:
        err = re.search(rf'id="draw-{field}-error">([^<]*)<', r.text)
        assert err and message in html.unescape(err.group(1)), r.text
    assert f'value="{fields.get("value_afp", "")}"' in r.text  # what was typed is kept
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(Draw)) == 0


def test_a_scan_and_an_outcome_are_stored_and_their_errors_placed(
    signed_in: Browser, patient: dict[str, Any], store: Store
) -> None:
    bad = signed_in.submit(
        "/patients/p-0042/imaging",
        "/patients/p-0042",
        {"date": "2024-04-01", "modality": "XRAY", "finding": "no_evidence"},
    )
    assert bad.status_code == 422 and 'id="imaging-modality-error"' in bad.text
    ok = signed_in.submit(
        "/patients/p-0042/imaging",
        "/patients/p-0042",
        {"date": "2024-04-01", "modality": "MRI", "finding": "no_evidence"},
    )
    assert ok.status_code == 303
    early = signed_in.submit(
        "/patients/p-0042/outcome",
        "/patients/p-0042",
        {"last_followup_date": "2024-02-01", "death_date": "2023-01-01"},
    )
    assert early.status_code == 422 and "outcome-" in early.text
    page = signed_in.client.get("/patients/p-0042")
    assert "MRI" in page.text and "no evidence" in page.text


def test_a_patient_registered_in_the_form_opens_and_a_duplicate_is_refused(
    signed_in: Browser, store: Store
) -> None:
    fields = {
        "patient_id": "p-new",
        "index_date": "2024-01-10",
        "age": "61",
        "sex": "M",
        "microvascular_invasion": "1",
    }
    r = signed_in.submit("/patients", "/", fields)
    assert r.status_code == 303 and r.headers["location"] == "/patients/p-new?saved=patient"
    again = signed_in.submit("/patients", "/", fields)
    assert again.status_code == 422 and "already registered" in again.text
    missing = signed_in.submit("/patients", "/", {**fields, "patient_id": "p-x", "index_date": ""})
    assert missing.status_code == 422 and 'id="patient-index_date-error"' in missing.text
    with store.reading() as s:
        assert s.scalars(select(Patient.patient_id)).all() == ["p-new"]


def test_a_form_without_the_sessions_token_stores_nothing(
    signed_in: Browser, patient: dict[str, Any], store: Store
) -> None:
    r = signed_in.client.post(
        "/patients/p-0042/draws", data={"csrf": "forged", "date": "2024-03-01", "value_afp": "3"}
    )
    assert r.status_code == 403
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(Draw)) == 0


def test_plotly_is_served_from_the_package_and_pages_forbid_other_origins(
    signed_in: Browser, patient: dict[str, Any]
) -> None:
    js = signed_in.client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    assert "max-age" in js.headers["cache-control"]
    page = signed_in.client.get("/patients/p-0042")
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/plotly.min.js">' in page.text


def test_the_patient_page_says_today_when_the_booked_scan_is_overdue(
    signed_in: Browser, api: Api, patient: dict[str, Any]
) -> None:
    """The latest assessment's recommendation is the draw day's; the page adds what stands
    today when the scan planned then is past and none was recorded since."""
    r = api.clinician.post("/v1/patients/p-0042/draws", json=draw("2024-03-01"))
    assert r.status_code == 201, r.text
    due = r.json()["imaging"]["next_imaging_date"]
    page = html.unescape(signed_in.client.get("/patients/p-0042").text)
    assert f"Today: the scan due {due} is overdue" in page
    scan = {"date": due, "modality": "CT", "finding": "no_evidence"}
    assert api.clinician.post("/v1/patients/p-0042/imaging", json=scan).status_code == 201
    assert "is overdue" not in signed_in.client.get("/patients/p-0042").text


@pytest.mark.parametrize(
    ("due", "scans", "expected"),
    [
        ("2026-01-10", [], "2026-01-10"),
        ("2026-01-10", [{"date": "2025-12-01"}], "2026-01-10"),  # an older scan
        ("2026-01-10", [{"date": "2026-01-10"}], None),  # done on the day
        ("2026-03-01", [], None),  # not due yet
        ("2026-02-01", [], None),  # due today
        (None, [], None),  # no schedule
    ],
)
def test_a_scan_is_overdue_when_past_and_not_done(
    due: str | None, scans: list[dict[str, str]], expected: str | None
) -> None:
    latest = {"imaging": {"next_imaging_date": due}}
    assert scan_overdue({"imaging": scans}, latest, date(2026, 2, 1)) == expected
    assert scan_overdue({"imaging": scans}, None, date(2026, 2, 1)) is None
