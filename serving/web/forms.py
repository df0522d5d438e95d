"""The web app's forms: posted fields → the API's request bodies, and the API's problems →
messages next to the fields they concern.

Only the form's own syntax is checked here (a number typed in a number field, at least one
value in a draw); everything else is the service's validation, the one the API runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError

from cohort.manifest import Manifest
from cohort.rules import clean_text
from cohort.vocabulary import FINDINGS, MODALITIES, OUTCOME_DATES
from serving.errors import Invalid
from serving.schemas import DrawIn, ImagingRecord, OutcomeIn, PatientRecord

GENERAL = "_form"  # problems that concern no single field
MAX_FIELDS = 200


@dataclass
class Form:
    """A posted form: its values (to show again on error) and the problems per field."""

    name: str
    values: dict[str, str] = field(default_factory=dict)
    fields: tuple[str, ...] = ()  # the form's fields: a problem elsewhere is shown on top
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_body(raw: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the only kind the forms post)."""
    pairs = parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: clean_text(v) for k, v in pairs[:MAX_FIELDS]}


def marker_units(manifest: Manifest) -> dict[str, list[str]]:
    """Each marker's canonical unit first, then the units it converts from."""
    return {m: [s.unit, *s.conversions] for m, s in manifest.markers.items()}


# ---- a draw ----
def draw_body(form: Form, manifest: Manifest) -> DrawIn | None:
    """The ``DrawIn`` of a draw form, or None with the form's problems set."""
    v = form.values
    measurements, order = [], []
    for marker in manifest.markers:
        text = v.get(f"value_{marker}", "")
        if not text:
            continue
        qualifier = text[0] if text[0] in "<>" else None
        number = text[1:].strip() if qualifier else text
        try:
            value = float(number)
        except ValueError:
            form.add(
                f"value_{marker}", f"not a number: {text!r} (e.g. 12.5, or <2 below the limit)"
            )
            continue
        unit = v.get(f"unit_{marker}") or manifest.markers[marker].unit
        measurements.append(
            {"marker": marker, "value": value, "unit": unit, "qualifier": qualifier}
        )
        order.append(marker)
    if not measurements and form.ok:
        form.add(GENERAL, "enter at least one marker value")
    if not form.ok:
        return None
    body = {"date": v.get("date", ""), "measurements": measurements}
    if v.get("next_imaging_date"):
        body["next_imaging_date"] = v["next_imaging_date"]
    form.values["_order"] = ",".join(order)
    return _build(form, DrawIn, body)


def _draw_field(form: Form, loc: list[Any]) -> str:
    """``["measurements", i, ...]`` → the field of the i-th marker entered."""
    order = form.values.get("_order", "").split(",")
    if (
        len(loc) >= 2
        and loc[0] == "measurements"
        and isinstance(loc[1], int)
        and 0 <= loc[1] < len(order)
        and order[loc[1]]
    ):
        return f"value_{order[loc[1]]}"
    return str(loc[0]) if loc else GENERAL


# ---- a scan, an outcome, a patient ----
def imaging_body(form: Form) -> ImagingRecord | None:
    v = form.values
    return _build(
        form,
        ImagingRecord,
        {
            "date": v.get("date", ""),
            "modality": v.get("modality", ""),
            "finding": v.get("finding", ""),
        },
    )


def outcome_body(form: Form) -> OutcomeIn | None:
    v = form.values
    body = {c: v.get(c) or None for c in OUTCOME_DATES}
    if not body["last_followup_date"]:
        form.add("last_followup_date", "the date of last follow-up is required")
        return None
    return _build(form, OutcomeIn, body)


def patient_body(form: Form, manifest: Manifest) -> PatientRecord | None:
    v = form.values
    body: dict[str, Any] = {
        "patient_id": v.get("patient_id", ""),
        "index_date": v.get("index_date", ""),
    }
    for name in manifest.covariates:
        if v.get(name, "") != "":
            body[name] = v[name]
    return _build(form, PatientRecord, body)


def _build(form: Form, model: type[BaseModel], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        for e in exc.errors():
            place(form, [*e["loc"]], e["msg"])
        return None


# ---- the service's problems, placed on the form ----
def place(form: Form, loc: list[Any], msg: str) -> None:
    """Put a problem at ``loc`` (without its leading ``body``) next to its field."""
    name = _draw_field(form, loc) if form.name == "draw" else (str(loc[0]) if loc else GENERAL)
    form.add(name if name in form.fields else GENERAL, msg)


def place_invalid(form: Form, exc: Invalid) -> None:
    for p in exc.problems:
        loc = list(p["loc"])
        place(form, loc[1:] if loc[:1] == ["body"] else loc, p["msg"])


def fields(name: str, manifest: Manifest) -> tuple[str, ...]:
    """The fields of form ``name`` for this manifest."""
    if name == "draw":
        return ("date", "next_imaging_date", *(f"value_{m}" for m in manifest.markers))
    if name == "imaging":
        return ("date", "modality", "finding")
    if name == "outcome":
        return tuple(OUTCOME_DATES)
    return ("patient_id", "index_date", *manifest.covariates)


CHOICES = {"modality": MODALITIES, "finding": FINDINGS}
