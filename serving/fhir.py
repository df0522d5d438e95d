"""FHIR R4 in and out: a Bundle of Patient and Observation resources as the body of
``POST /v1/risk``, and an assessment as a RiskAssessment (``?format=fhir`` or
``Accept: application/fhir+json``).

Bundles are parsed with ``fhir.resources`` (FHIR R4B: the package ships R5, R4B and STU3, not
R4; for Bundle, Patient, Observation and RiskAssessment R4B is R4 with no change to the
elements read here, so an R4 interface engine's Bundles parse as they are). Every shape or
type error is a 422 naming the entry and element, e.g. ``["body", "entry", 2, "resource",
"valueQuantity", "value"]``.

Mapping (what a hospital's interface engine must send):

- **Patient** (exactly one): ``id`` (or the first ``identifier.value``) is the patient_id.
  The index date (surgery / ablation) is the extension
  ``https://ctcmon.dev/fhir/StructureDefinition/index-date`` (``valueDate``, required).
  Covariates are extensions ``https://ctcmon.dev/fhir/StructureDefinition/covariate-<name>``
  with any ``value[x]``; without them, ``gender`` gives ``sex`` (M/F) and ``birthDate`` gives
  ``age`` at the index date when the model uses those covariates.
- **Observation** (one per marker value), each about the Bundle's Patient: ``subject`` refers
  to it (``Patient/<id>``, an absolute URL ending so, or the Patient entry's ``fullUrl``);
  one about anybody else is a 422. ``code.coding`` with
  AFP as LOINC ``http://loinc.org|1834-1`` (Alpha-1-Fetoprotein, mass/volume in serum);
  any other marker by the ``loinc`` declared for it in the model's cohort.toml, or by the
  ctcmon marker code system ``https://ctcmon.dev/fhir/CodeSystem/marker`` — CTC counts have no
  LOINC code, so the total CTC count is ``https://ctcmon.dev/fhir/CodeSystem/marker|ctc_total``
  (unit ``cells/7.5mL`` or ``cells/5mL``), and likewise ``ctc_epithelial``, ``pivka_ii``, ...
  ``effectiveDateTime`` (or ``effectivePeriod.start``) is the draw date (its local date);
  ``valueQuantity`` gives ``value`` (a JSON number), ``unit`` (or UCUM ``code``) and
  ``comparator`` ``<``/``>`` (a detection limit).
  Only results with status ``final``, ``amended`` or ``corrected`` enter the risk; others
  (``preliminary``, ``registered``, ``entered-in-error``, ...) are left out and listed in the
  assessment's ``ignored``. The RiskAssessment's ``basis`` refers to the Observations used.
- ``as_of`` and ``next_imaging_date`` are query parameters. Imaging exams are not read from
  FHIR; send them with the JSON body or ``POST /v1/patients/{id}/imaging``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from cohort.manifest import Manifest
from cohort.records import PatientHistory
from serving.errors import Invalid

CTCMON = "https://ctcmon.dev/fhir"
INDEX_DATE_URL = f"{CTCMON}/StructureDefinition/index-date"
COVARIATE_URL = f"{CTCMON}/StructureDefinition/covariate-"
MARKER_SYSTEM = f"{CTCMON}/CodeSystem/marker"
MODEL_SYSTEM = f"{CTCMON}/CodeSystem/model"
POINT_ESTIMATE_URL = f"{CTCMON}/StructureDefinition/risk-point-estimate"
LOINC = "http://loinc.org"
DEFAULT_LOINC = {"1834-1": "afp"}
USED_STATUS = ("final", "amended", "corrected")
FHIR_ID_LENGTH = 64  # FHIR's limit on a resource id
RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
BAND_CODE = {"low": "low", "intermediate": "moderate", "high": "high"}

Loc = list[str | int]


def is_bundle(body: Any) -> bool:
    return isinstance(body, dict) and body.get("resourceType") == "Bundle"


@dataclass
class BundleHistory:
    """What a Bundle says: the history, where each record came from, what was left out."""

    history: PatientHistory
    patient_loc: Loc
    measurement_locs: list[Loc]  # the entry of each measurement, in order
    references: list[str | None]  # each measurement's Observation reference (for basis)
    ignored: list[dict[str, Any]] = field(default_factory=list)

    def where(self, loc: Loc) -> Loc:
        """A location in the history (``["measurements", 2, "value"]``) as one in the Bundle."""
        return _bundle_loc(loc, self.patient_loc, self.measurement_locs)

    def provenance(self, as_of: str) -> dict[str, Any]:
        """What the assessment is based on: the Observations used (none dated after
        ``as_of``) as ``basis``, and those left out as ``ignored``."""
        basis = [
            ref
            for m, ref in zip(self.history.measurements, self.references, strict=True)
            if ref is not None and (m.date or "") <= as_of
        ]
        return {"basis": basis, "ignored": self.ignored}


# the Observation element a measurement field came from
_ELEMENT: dict[Any, list[str | int]] = {
    "date": ["effectiveDateTime"],
    "value": ["valueQuantity", "value"],
    "unit": ["valueQuantity", "unit"],
    "qualifier": ["valueQuantity", "comparator"],
    "marker": ["code"],
}


def _bundle_loc(loc: Loc, patient_loc: Loc, measurement_locs: list[Loc]) -> Loc:
    if loc[:1] in (["as_of"], ["next_imaging_date"]):
        return ["query", loc[0]]
    at = loc[1] if loc[:1] == ["measurements"] and len(loc) > 1 else None
    if isinstance(at, int) and 0 <= at < len(measurement_locs):
        return [*measurement_locs[at], *_ELEMENT.get(loc[2] if len(loc) > 2 else None, [])]
    if loc[:1] == ["patient"]:
        return patient_loc
    return ["body", *loc]


def history_from_bundle(
    raw: dict[str, Any], manifest: Manifest, as_of: str | None, next_imaging: str | None
) -> BundleHistory:
    """The patient history a Bundle describes; 422 listing every unreadable resource."""
    bundle = _parse(raw)
    resources = [(i, e.resource) for i, e in enumerate(bundle.entry or [])]
    patients = [(i, r) for i, r in resources if isinstance(r, Patient)]
    if len(patients) != 1:
        msg = f"expected exactly one Patient, got {len(patients)}"
        raise Invalid([{"loc": ["body", "entry"], "msg": msg}])
    at, patient = patients[0]
    problems: list[dict[str, Any]] = []
    loc: Loc = ["body", "entry", at, "resource"]
    record = _patient(patient, manifest, problems, loc)
    refs = _patient_refs(patient, bundle.entry[at].fullUrl, record["patient_id"])  # type: ignore[index]
    read = _Observations(_marker_codes(manifest), refs, problems)
    for i, r in resources:
        if isinstance(r, Observation):
            entry = raw["entry"][i]
            read.add(r, entry["resource"], ["body", "entry", i, "resource"], entry.get("fullUrl"))
    if problems:
        raise Invalid(problems)
    history = _history(record, read, as_of, next_imaging, loc)
    return BundleHistory(history, loc, read.locs, read.references, read.ignored)


def _parse(raw: dict[str, Any]) -> Bundle:
    unknown = _unknown_resource_types(raw)
    if unknown:
        raise Invalid(unknown)
    try:
        return Bundle.model_validate(raw)
    except ValidationError as exc:
        raise Invalid(
            [{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        ) from None
    except (KeyError, TypeError) as exc:
        # fhir.resources raises these (not a ValidationError) for a resource of an unknown
        # type nested deeper than an entry (found by the near-valid fuzzer)
        msg = f"a resource of no FHIR type ({type(exc).__name__}: {exc})"
        raise Invalid([{"loc": ["body"], "msg": msg}]) from None


def _unknown_resource_types(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Entries whose ``resourceType`` names no FHIR resource: fhir.resources answers them
    with a KeyError or TypeError instead of a validation error."""
    entries = raw.get("entry")
    problems = []
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or "resourceType" not in resource:
            continue  # the model's validation names it
        kind = resource["resourceType"]
        if not isinstance(kind, str) or not _is_resource_type(kind):
            problems.append(
                {
                    "loc": ["body", "entry", i, "resource", "resourceType"],
                    "msg": f"not a FHIR resource type: {kind!r}",
                }
            )
    return problems


def _is_resource_type(kind: str) -> bool:
    try:
        get_fhir_model_class(kind)
    except ValueError:
        return False
    return True


def _history(
    record: dict[str, Any], read: _Observations, as_of: str | None, nxt: str | None, loc: Loc
) -> PatientHistory:
    body = {"patient": record, "measurements": read.measurements, "as_of": as_of}
    try:
        return PatientHistory.model_validate({**body, "next_imaging_date": nxt})
    except ValidationError as exc:
        problems = [
            {"loc": _bundle_loc(list(e["loc"]), loc, read.locs), "msg": e["msg"]}
            for e in exc.errors()
        ]
        raise Invalid(problems) from None


def _marker_codes(manifest: Manifest) -> dict[tuple[str, str], str]:
    codes = {
        (LOINC, code): marker
        for code, marker in DEFAULT_LOINC.items()
        if marker in manifest.markers
    }
    for marker, spec in manifest.markers.items():
        codes[(MARKER_SYSTEM, marker)] = marker
        if spec.loinc:
            codes[(LOINC, spec.loinc)] = marker
    return codes


def _patient(
    r: Patient, manifest: Manifest, problems: list[dict[str, Any]], loc: Loc
) -> dict[str, Any]:
    pid = r.id or next((i.value for i in r.identifier or [] if i.value), None)
    if not pid:
        problems.append({"loc": [*loc, "id"], "msg": "the Patient needs an id or identifier"})
    elif r.id and len(r.id) > FHIR_ID_LENGTH:
        msg = f"a FHIR id has at most {FHIR_ID_LENGTH} characters (got {len(r.id)})"
        problems.append({"loc": [*loc, "id"], "msg": msg})
    ext = {e.url: e for e in r.extension or []}
    index = getattr(ext.get(INDEX_DATE_URL), "valueDate", None)
    if index is None:
        problems.append(
            {
                "loc": [*loc, "extension"],
                "msg": f"the index date is missing: extension {INDEX_DATE_URL} with valueDate",
            }
        )
    record: dict[str, Any] = {"patient_id": str(pid or ""), "index_date": _day(index)}
    for url, e in ext.items():
        if url and url.startswith(COVARIATE_URL):
            record[url.removeprefix(COVARIATE_URL)] = _value(e)
    _derived_covariates(r, manifest, record, index)
    return record


def _patient_refs(r: Patient, full_url: str | None, pid: str) -> Callable[[Any], bool]:
    """Whether a ``subject`` Reference designates the Bundle's Patient."""
    local = f"Patient/{r.id}" if r.id else None

    def refers(subject: Any) -> bool:
        if subject is None:
            return False
        ref = subject.reference
        if ref is not None:
            return ref in (local, full_url) or (local is not None and ref.endswith("/" + local))
        ident = subject.identifier
        return ident is not None and ident.value == pid

    return refers


def _derived_covariates(
    r: Patient, manifest: Manifest, record: dict[str, Any], index: date | None
) -> None:
    gender = {"male": "M", "female": "F"}.get(str(r.gender))
    if "sex" in manifest.covariates and "sex" not in record and gender:
        record["sex"] = gender
    born = r.birthDate
    if "age" in manifest.covariates and "age" not in record and born and index:
        record["age"] = index.year - born.year - ((index.month, index.day) < (born.month, born.day))


def _value(e: Any) -> Any:
    """An extension's ``value[x]`` as a JSON value."""
    for name, v in e:
        if name.startswith("value") and v is not None:
            if isinstance(v, date | datetime):
                return v.isoformat()
            return float(v) if type(v).__name__ == "Decimal" else v
    return None


def _day(when: Any) -> str:
    """The calendar date of a FHIR date or dateTime (its local date); partial dates as text."""
    if isinstance(when, datetime):
        return when.date().isoformat()
    if isinstance(when, date):
        return when.isoformat()
    return "" if when is None else str(when)


class _Observations:
    """Observations read one by one into measurement records, with where each came from."""

    def __init__(
        self,
        codes: dict[tuple[str, str], str],
        about_patient: Callable[[Any], bool],
        problems: list[dict[str, Any]],
    ) -> None:
        self.codes = codes
        self.about_patient = about_patient
        self.problems = problems
        self.measurements: list[dict[str, Any]] = []
        self.locs: list[Loc] = []
        self.references: list[str | None] = []
        self.ignored: list[dict[str, Any]] = []

    def add(self, r: Observation, raw: dict[str, Any], loc: Loc, full_url: str | None) -> None:
        if not self.about_patient(r.subject):
            self._problem(loc, "subject", f"is not the Bundle's Patient (got {_ref(r.subject)})")
            return
        if r.status not in USED_STATUS:
            self.ignored.append(
                {
                    "loc": [*loc, "status"],
                    "msg": f"status {r.status!r}: only {', '.join(USED_STATUS)} results are used",
                }
            )
            return
        marker = self._marker(r, loc)
        when = r.effectiveDateTime or (r.effectivePeriod.start if r.effectivePeriod else None)
        if when is None:
            self._problem(loc, "effectiveDateTime", "the draw date is missing")
        q, raw_q = r.valueQuantity, raw.get("valueQuantity")
        if q is None or not isinstance(raw_q, dict):
            self._problem(loc, "valueQuantity", "an Observation needs valueQuantity")
            return
        value = raw_q.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._problem(loc, "valueQuantity.value", f"must be a JSON number (got {value!r})")
        unit = q.unit or q.code
        if not unit:
            self._problem(loc, "valueQuantity.unit", "the unit is missing (unit or UCUM code)")
        if q.comparator not in (None, "<", ">"):
            msg = f"comparator must be < or >, got {q.comparator!r}"
            self._problem(loc, "valueQuantity.comparator", msg)
        if marker is None or when is None or not unit or not isinstance(value, int | float):
            return
        self.measurements.append(
            {
                "date": _day(when),
                "marker": marker,
                "value": value,
                "unit": unit,
                "qualifier": q.comparator,
                "draw_id": r.id,
            }
        )
        self.locs.append(loc)
        self.references.append(f"Observation/{r.id}" if r.id else full_url)

    def _marker(self, r: Observation, loc: Loc) -> str | None:
        codings = (r.code.coding if r.code else None) or []
        pairs = [(str(c.system), str(c.code)) for c in codings]
        marker = next((self.codes[p] for p in pairs if p in self.codes), None)
        if marker is None:
            seen = [f"{s}|{c}" for s, c in pairs]
            known = sorted(f"{s}|{c}" for s, c in self.codes)
            self._problem(loc, "code", f"unknown marker code {seen}; known: {known}")
        return marker

    def _problem(self, loc: Loc, element: str, msg: str) -> None:
        self.problems.append({"loc": [*loc, *element.split(".")], "msg": msg})


def _ref(subject: Any) -> str:
    if subject is None:
        return "no subject"
    return repr(subject.reference or getattr(subject.identifier, "value", None))


def risk_assessment(doc: dict[str, Any]) -> dict[str, Any]:
    """An assessment as a FHIR R4 RiskAssessment resource."""
    model = doc["model"]
    advice = doc["imaging"]
    forward = advice["recommendation"] == "bring_imaging_forward"
    resource = {
        "resourceType": "RiskAssessment",
        "id": doc["assessment_id"],
        "identifier": [
            {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{doc['assessment_id']}"}
        ],
        "status": "final",
        "subject": {"reference": f"Patient/{doc['patient_id']}"},
        "occurrenceDateTime": doc["as_of"],
        "method": {
            "coding": [
                {
                    "system": MODEL_SYSTEM,
                    "code": model["name"],
                    "version": model.get("version"),
                    "display": f"{model['name']} version {model.get('version')}",
                }
            ]
        },
        "prediction": [_prediction(doc, h, p) for h, p in doc["risk"].items()],
        "mitigation": (
            f"Bring imaging forward (alarm: risk at {doc['alarm_horizon_days']:g} days ≥ {doc['alarm_threshold']})"
            if forward
            else f"Keep the imaging schedule (next scan {advice['next_imaging_date']})"
        ),
        "note": [
            {
                "text": f"issued {doc['issued_at']}; expected lead time over imaging {advice['expected_lead_days']} days"
            }
        ],
    }
    if doc.get("cross_fitted"):
        resource["note"].append({"text": CROSS_FITTED_NOTE})
    if doc.get("basis"):
        resource["basis"] = [{"reference": ref} for ref in doc["basis"]]
    return resource


CROSS_FITTED_NOTE = (
    "the patient was in the model's training cohort: the risks are those of the model "
    "fitted without them (cross-fitted), as the alarm's figures are"
)


def _prediction(doc: dict[str, Any], horizon: str, p: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "outcome": {"text": "recurrence of hepatocellular carcinoma"},
        "probabilityDecimal": p,
        "whenRange": {
            "high": {
                "value": float(horizon),
                "unit": "d",
                "system": "http://unitsofmeasure.org",
                "code": "d",
            }
        },
    }
    interval = (doc.get("risk_interval") or {}).get(horizon)
    if interval is not None:
        # probability[x] is a choice in FHIR: with an interval, the prediction is the Range
        # (interfaces.md), and the point estimate rides along as an extension
        del out["probabilityDecimal"]
        out["probabilityRange"] = {
            "low": {"value": interval["low"]},
            "high": {"value": interval["high"]},
        }
        out["extension"] = [{"url": POINT_ESTIMATE_URL, "valueDecimal": p}]
    if float(horizon) == float(doc["alarm_horizon_days"]):
        code = BAND_CODE[doc["risk_band"]]
        out["qualitativeRisk"] = {"coding": [{"system": RISK_PROBABILITY, "code": code}]}
    return out
