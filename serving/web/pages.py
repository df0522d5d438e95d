"""The clinician web app's routes: sign-in, worklist, patient page, and the forms.

Each handler is short: check the session (and the CSRF token on a POST), gather the data
through the service functions the API uses (same validation, idempotency, site scoping and
audit), render a template. A write that succeeds redirects (POST → 303 → GET), so a
reload never posts twice; one that fails renders the form again with each problem next to
its field, and nothing is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from serving import service
from serving.auth import Principal, record_denial
from serving.deps import on_store
from serving.errors import Invalid, NotFound, ServiceError
from serving.idempotency import Result
from serving.model import LoadedModel
from serving.store import Store
from serving.web import forms, session, timeline
from serving.web.record import patient_view
from serving.web.render import page
from serving.web.worklist import BANDS, Query, scan_done, worklist

router = APIRouter(include_in_schema=False)

SAVED = {
    "draw": "Draw stored; the assessment below is the new one.",
    "imaging": "Scan stored.",
    "outcome": "Outcome stored.",
    "patient": "Patient registered.",
}


# ---- plumbing ----
def _store(request: Request) -> Store:
    return request.app.state.store


def _model(request: Request) -> LoadedModel | None:
    return request.app.state.holder.current


async def _session(request: Request) -> session.Session | None:
    store = _store(request)
    return await on_store(store, lambda: session.current(store, request.app.state.signer, request))


def _to_sign_in() -> RedirectResponse:
    return RedirectResponse("/", status_code=303)


def _audit_read(store: Store, key: Principal, resource: str, patient_id: str | None = None) -> None:
    with store.writing() as s:
        service.audit(s, key, "read", resource, patient_id)


async def _form(request: Request, sess: session.Session) -> dict[str, str] | None:
    """The posted fields, or None when the CSRF token does not match the session's."""
    values = forms.parse_body(await request.body())
    return values if session.csrf_ok(sess.csrf, values.pop("csrf", None)) else None


def _forbidden() -> Response:
    return page(
        "message.html",
        403,
        title="Form expired",
        session=None,
        text="This form is no longer valid (expired session or a form from another "
        "page). Go back, reload the page and submit again.",
    )


def _no_model() -> Response:
    return page(
        "message.html",
        503,
        title="No model loaded",
        session=None,
        text="No risk model is loaded, so nothing can be entered now. Ask your "
        "administrator to register one (`ctcmon train --register` or `ctcmon demo`).",
    )


# ---- sign-in ----
@router.get("/")
async def home(request: Request) -> Response:
    """The site's worklist, or the sign-in page."""
    sess = await _session(request)
    if sess is None:
        return _sign_in_page(request)
    try:
        query = Query(
            band=request.query_params.get("band") or None,
            search=request.query_params.get("q", "")[:128],
            ended=request.query_params.get("ended") == "1",
            page=int(request.query_params.get("page", "1") or 1),
        )
        store = _store(request)
        result = await on_store(store, lambda: _worklist(store, sess.principal, query))
    except ValueError as exc:
        return page("message.html", 400, title="Bad request", session=sess, text=str(exc))
    return _worklist_page(request, sess, query, result)


def _worklist(store: Store, key: Principal, query: Query) -> Any:
    result = worklist(store, key.site_id, query, date.today())
    _audit_read(store, key, "web:worklist")
    return result


def _worklist_page(
    request: Request, sess: session.Session, query: Query, result: Any, form: Any = None
) -> Response:
    model = _model(request)
    manifest = model.pipeline.manifest if model else None
    return page(
        "worklist.html",
        422 if form is not None and not form.ok else 200,
        session=sess,
        query=query,
        result=result,
        bands=BANDS,
        manifest=manifest,
        form=form or forms.Form("patient"),
        idem=uuid.uuid4().hex,
        saved=SAVED.get(request.query_params.get("saved", "")),
    )


def _sign_in_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    token = session.pre_token(request)
    response = page("sign_in.html", status, session=None, csrf=token, error=error)
    session.set_pre(response, request, token)
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Exchange a clinician's API key for a session cookie."""
    values = forms.parse_body(await request.body())
    if not session.csrf_ok(request.cookies.get(session.PRE_COOKIE), values.get("csrf")):
        return _sign_in_page(request, "The sign-in form expired; please try again.", 403)
    store = _store(request)
    key = await on_store(store, lambda: session.key_for_token(store, values.get("api_key", "")))
    if key is None or key.revoked_at is not None:
        return _sign_in_page(request, "This API key is not valid (unknown or revoked).", 401)
    principal = Principal(key.id, key.role, key.site_id)
    if key.role != session.WEB_ROLE:
        await on_store(store, lambda: record_denial(store, principal, "POST /sign-in", None))
        return _sign_in_page(
            request, f"This is a {key.role} key; the web app is for clinician keys.", 403
        )
    response = RedirectResponse("/", status_code=303)
    session.start(response, request, request.app.state.signer, key.id)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session."""
    sess = await _session(request)
    if sess is not None and await _form(request, sess) is None:
        return _forbidden()
    response = RedirectResponse("/", status_code=303)
    session.end(response)
    return response


# ---- the patient page ----
@router.get("/patients/{patient_id}")
async def patient_page(request: Request, patient_id: str) -> Response:
    """The patient's timeline, latest assessment and every assessment issued."""
    sess = await _session(request)
    if sess is None:
        return _to_sign_in()
    return await _patient_response(request, sess, patient_id)


async def _patient_response(
    request: Request,
    sess: session.Session,
    patient_id: str,
    form: forms.Form | None = None,
) -> Response:
    store, key = _store(request), sess.principal
    model = _model(request)
    manifest = model.pipeline.manifest if model else None
    try:
        record, assessments = await on_store(
            store, lambda: patient_view(store, key, patient_id, manifest)
        )
    except NotFound:
        return page(
            "message.html",
            404,
            title="Patient not found",
            session=sess,
            text=f"No patient {patient_id!r} at site {key.site_id!r}.",
        )
    return page(
        "patient.html",
        422 if form is not None and not form.ok else 200,
        session=sess,
        record=record,
        patient_id=patient_id,
        assessments=assessments,
        latest=assessments[-1] if assessments else None,
        scan_overdue=scan_overdue(record, assessments[-1] if assessments else None, date.today()),
        figure=timeline.figure(record, assessments, manifest),
        manifest=manifest,
        units=forms.marker_units(manifest) if manifest else {},
        choices=forms.CHOICES,
        forms={
            # a new draw is usually today's: its date comes filled in
            "draw": form if form and form.name == "draw" else _new("draw", date=_today()),
            "imaging": form if form and form.name == "imaging" else _new("imaging"),
            "outcome": form if form and form.name == "outcome" else _new("outcome"),
        },
        idem=uuid.uuid4().hex,
        saved=SAVED.get(request.query_params.get("saved", "")),
    )


def scan_overdue(record: dict[str, Any], latest: dict[str, Any] | None, today: date) -> str | None:
    """The date of the scan the latest assessment planned, if it is past today and no scan
    was recorded on or after it (as the worklist marks it); else None."""
    due = (latest or {}).get("imaging", {}).get("next_imaging_date")
    if not due or due >= today.isoformat():
        return None
    scans = [date.fromisoformat(str(i["date"])) for i in record.get("imaging", []) if i.get("date")]
    return None if scan_done(due, max(scans, default=None)) else str(due)


def _new(name: str, **values: str) -> forms.Form:
    return forms.Form(name, dict(values))


def _today() -> str:
    return date.today().isoformat()


# ---- the forms ----
Submit = Callable[[Store, LoadedModel, Principal, Any, str | None], Result]


async def _post(
    request: Request,
    name: str,
    build: Callable[[forms.Form, Any], Any],
    submit: Submit,
    patient_id: str | None,
) -> Response:
    """Parse, build the API body, submit through the service; redirect, or the form again."""
    sess = await _session(request)
    if sess is None:
        return _to_sign_in()
    values = await _form(request, sess)
    if values is None:
        return _forbidden()
    model = _model(request)
    if model is None:
        return _no_model()
    manifest = model.pipeline.manifest
    form = forms.Form(name, values, forms.fields(name, manifest))
    body = build(form, manifest)
    store, key = _store(request), sess.principal
    if body is not None:
        idem = values.get("idem") or None
        try:
            await on_store(store, lambda: submit(store, model, key, body, idem))
        except Invalid as exc:
            forms.place_invalid(form, exc)
        except NotFound:
            return await _patient_response(request, sess, patient_id or "")
        except ServiceError as exc:  # a duplicate (409), another site's id (403)
            form.add(forms.GENERAL, exc.message)
    target = body.patient_id if name == "patient" and body is not None else patient_id
    if form.ok:
        return RedirectResponse(f"/patients/{quote(target or '')}?saved={name}", status_code=303)
    if name == "patient":
        return await _worklist_again(request, sess, form)
    return await _patient_response(request, sess, patient_id or "", form)


async def _worklist_again(request: Request, sess: session.Session, form: forms.Form) -> Response:
    store = _store(request)
    query = Query()
    result = await on_store(store, lambda: _worklist(store, sess.principal, query))
    return _worklist_page(request, sess, query, result, form)


@router.post("/patients")
async def register(request: Request) -> Response:
    """Register a patient in the clinician's site."""
    return await _post(
        request,
        "patient",
        forms.patient_body,
        lambda st, m, k, body, idem: service.register_patient(st, m, k, body, idem),
        None,
    )


@router.post("/patients/{patient_id}/draws")
async def add_draw(request: Request, patient_id: str) -> Response:
    """Store a blood draw and the assessment it yields."""
    limit = request.app.state.settings.max_days_before_index
    return await _post(
        request,
        "draw",
        forms.draw_body,
        lambda st, m, k, body, idem: service.submit_draw(st, m, k, patient_id, body, idem, limit),
        patient_id,
    )


@router.post("/patients/{patient_id}/imaging")
async def add_imaging(request: Request, patient_id: str) -> Response:
    """Store an imaging exam."""
    return await _post(
        request,
        "imaging",
        lambda form, manifest: forms.imaging_body(form),
        lambda st, m, k, body, idem: service.add_imaging(st, m, k, patient_id, body, idem),
        patient_id,
    )


@router.post("/patients/{patient_id}/outcome")
async def record_outcome(request: Request, patient_id: str) -> Response:
    """Record recurrence, death or last follow-up."""
    return await _post(
        request,
        "outcome",
        lambda form, manifest: forms.outcome_body(form),
        lambda st, m, k, body, idem: service.record_outcome(st, m, k, patient_id, body, idem),
        patient_id,
    )
