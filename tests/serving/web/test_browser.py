"""The web app as a clinician uses it, in a real headless Chromium (Debian's ``chromium``,
driven by Playwright) against the app under uvicorn, checked with axe-core.

Screenshots go to ``artifacts/screenshots/`` (kept by CI). Without chromium these tests
skip, except under ``CI=true`` where they fail: CI installs it in ``.ci/run``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cohort.load import load_cohort
from serving.auth import Principal
from serving.model import ModelHolder
from serving.seed import clinic_day, load_cohort_patients
from serving.store import Store
from tests.serving.conftest import Keys, Registry, Server

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[3] / "artifacts" / "screenshots"
SERIOUS = {"serious", "critical"}
N_PATIENTS = 40


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the pages' queries run on PostgreSQL too in test_pages.py."""
    return f"sqlite:///{(tmp_path / 'ctcmon.db').as_posix()}"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but chromium is not installed at {CHROMIUM}")
        pytest.skip("chromium is not installed (apt-get install chromium; CI=true fails instead)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    yield tab
    context.close()


@pytest.fixture
def clinic(
    registry: Registry, holder: ModelHolder, store: Store, keys: Keys, server: Server
) -> Server:
    """site-a holds 40 patients of the simulated cohort as known on a clinic day (yesterday)."""
    cohort = load_cohort(registry.cohort_dir)
    cut, shift = clinic_day(cohort, 0.6)
    some = cohort.patients[cohort.patients["index_date"] <= str(cut)].head(N_PATIENTS)
    assert holder.current is not None
    key = Principal(keys.ids["clinician"], "clinician", "site-a")
    from dataclasses import replace

    loaded = load_cohort_patients(
        store, holder.current, key, replace(cohort, patients=some), until=cut, shift_days=shift
    )
    assert loaded.patients == N_PATIENTS and loaded.draws > N_PATIENTS
    return server


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _axe(page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in SERIOUS
    ]
    assert not bad, "\n".join(bad)


def _sign_in(page: Any, url: str, token: str) -> None:
    page.goto(url + "/")
    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Worklist").wait_for()


def _risk_points(page: Any) -> int:
    page.locator("#timeline[data-ready='1']").wait_for()
    return int(
        page.evaluate(
            "() => document.getElementById('timeline').data"
            ".find(t => t.name === 'risk at 1 year').x.length"
        )
    )


def test_a_clinician_signs_in_opens_the_top_patient_enters_a_draw_and_signs_out(
    clinic: Server, keys: Keys, page: Any
) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(clinic.url + "/")
    _shot(page, "1-sign-in")
    _axe(page)
    _sign_in(page, clinic.url, keys.clinician)
    rows = page.locator("table.worklist tbody tr")
    assert rows.count() >= 10
    _shot(page, "2-worklist")
    _axe(page)

    top = rows.first.locator("th a")
    patient_id = top.inner_text()
    top.click()
    page.get_by_role("heading", name=f"Patient {patient_id}").wait_for()
    before = _risk_points(page)
    assert before >= 1
    assert page.get_by_role("heading", name="Latest assessment").is_visible()
    _shot(page, "3-patient")
    _axe(page)

    form = page.locator("#draw form")
    form.get_by_label("Draw date").fill(date.today().isoformat())
    form.get_by_label("CTC total").fill("7")
    form.get_by_label("alpha-fetoprotein").fill("350")
    form.get_by_role("button", name="Store draw and assess").click()
    page.get_by_text("Draw stored").wait_for()
    assert _risk_points(page) == before + 1
    latest = page.locator("#latest-h").inner_text()
    assert date.today().isoformat() in latest  # the new assessment is the one summarised
    _shot(page, "4-patient-after-draw")
    assert not errors, errors  # no script blocked or failing (CSP, plotly)

    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key").wait_for()
    page.goto(f"{clinic.url}/patients/{patient_id}")
    assert page.get_by_label("API key").is_visible()  # signed out: back to sign-in


def test_another_sites_clinician_cannot_open_the_patient(
    clinic: Server, keys: Keys, page: Any
) -> None:
    _sign_in(page, clinic.url, keys.clinician)
    patient_id = page.locator("table.worklist tbody tr th a").first.inner_text()
    page.context.clear_cookies()
    _sign_in(page, clinic.url, keys.other_site)
    assert "No patient matches" in page.locator("table.worklist").inner_text()
    response = page.goto(f"{clinic.url}/patients/{patient_id}")
    assert response is not None and response.status == 404
    assert page.get_by_role("heading", name="Patient not found").is_visible()


def test_bad_input_is_shown_next_to_its_field_and_the_form_keeps_it(
    clinic: Server, keys: Keys, page: Any
) -> None:
    _sign_in(page, clinic.url, keys.clinician)
    page.locator("table.worklist tbody tr th a").first.click()
    before = _risk_points(page)
    form = page.locator("#draw form")
    form.get_by_label("Draw date").fill("2099-01-01")
    form.get_by_label("alpha-fetoprotein").fill("lots")
    form.get_by_role("button", name="Store draw and assess").click()
    afp_error = page.locator("#draw-value_afp-error")
    afp_error.wait_for()
    assert "not a number: 'lots'" in afp_error.inner_text()
    assert page.locator("#draw-value_afp").input_value() == "lots"
    assert page.locator("#draw-value_afp").get_attribute("aria-invalid") == "true"
    form = page.locator("#draw form")
    form.get_by_label("alpha-fetoprotein").fill("12")
    form.get_by_role("button", name="Store draw and assess").click()
    date_error = page.locator("#draw-date-error")
    date_error.wait_for()
    assert "in the future" in date_error.inner_text()
    _shot(page, "5-draw-form-errors")
    _axe(page)
    assert _risk_points(page) == before  # nothing stored


def test_the_app_works_from_the_keyboard(clinic: Server, keys: Keys, page: Any) -> None:
    page.goto(clinic.url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "api_key":
            break
    assert page.evaluate("document.activeElement.id") == "api_key"
    page.keyboard.type(keys.clinician)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Worklist").wait_for()
    for _ in range(30):
        page.keyboard.press("Tab")
        href = page.evaluate("document.activeElement.getAttribute('href') || ''")
        if href.startswith("/patients/"):
            break
    assert href.startswith("/patients/"), "no patient link reached with Tab"
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Latest assessment").wait_for()
    labelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select')]
              .filter(e => !(e.labels && e.labels.length)).map(e => e.name)"""
    )
    assert labelled == []
