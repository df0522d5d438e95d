"""FHIR R4 in and out: a Bundle of Patient and Observation resources as the body of
``POST /v1/risk``, and an assessment as a RiskAssessment (``?format=fhir``).

Mapping (what a hospital's interface engine must send):

- **Patient** (exactly one): ``id`` (or the first ``identifier.value``) is the patient_id.
  The index date (surgery / ablation) is the extension
  ``https://ctcmon.dev/fhir/StructureDefinition/index-date`` (``valueDate``, required).
  Covariates are extensions ``https://ctcmon.dev/fhir/StructureDefinition/covariate-<name>``
  with any ``value[x]``; without them, ``gender`` gives ``sex`` (M/F) and ``birthDate`` gives
  ``age`` at the index date when the model uses those covariates.
- **Observation** (one per marker value): ``code.coding`` with
  AFP as LOINC ``http://loinc.org|1834-1`` (Alpha-1-Fetoprotein, mass/volume in serum);
  any other marker by the ``loinc`` declared for it in the model's cohort.toml, or by the
  ctcmon marker code system ``https://ctcmon.dev/fhir/CodeSystem/marker`` — CTC counts have no
  LOINC code, so the total CTC count is ``https://ctcmon.dev/fhir/CodeSystem/marker|ctc_total``
  (unit ``cells/7.5mL`` or ``cells/5mL``), and likewise ``ctc_epithelial``, ``pivka_ii``, ...
  ``effectiveDateTime`` (or ``effectivePeriod.start``) is the draw date; ``valueQuantity`` gives
  ``value``, ``unit`` (or UCUM ``code``) and ``comparator`` ``<``/``>`` (a detection limit).
  Observations with status ``entered-in-error`` or ``cancelled`` are ignored.
- ``as_of`` and ``next_imaging_date`` are query parameters. Imaging exams are not read from
  FHIR; send them with the JSON body or ``POST /v1/patients/{id}/imaging``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from cohort.manifest import Manifest
from cohort.records import PatientHistory
from serving.errors import Invalid

CTCMON = "https://ctcmon.dev/fhir"
INDEX_DATE_URL = f"{CTCMON}/StructureDefinition/index-date"
COVARIATE_URL = f"{CTCMON}/StructureDefinition/covariate-"
MARKER_SYSTEM = f"{CTCMON}/CodeSystem/marker"
MODEL_SYSTEM = f"{CTCMON}/CodeSystem/model"
LOINC = "http://loinc.org"
DEFAULT_LOINC = {"1834-1": "afp"}
IGNORED_STATUS = {"entered-in-error", "cancelled"}
RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
BAND_CODE = {"low": "low", "intermediate": "moderate", "high": "high"}


def is_bundle(body: Any) -> bool:
    return isinstance(body, dict) and body.get("resourceType") == "Bundle"


def history_from_bundle(
    bundle: dict[str, Any], manifest: Manifest, as_of: str | None, next_imaging: str | None
) -> PatientHistory:
    """The patient history a Bundle describes; 422 listing every unreadable resource."""
    problems: list[dict[str, Any]] = []
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        raise Invalid([{"loc": ["body", "entry"], "msg": "a Bundle needs an entry list"}])
    resources = [
        (i, e.get("resource") if isinstance(e, dict) else None) for i, e in enumerate(entries)
    ]
    patients = [
        (i, r) for i, r in resources if isinstance(r, dict) and r.get("resourceType") == "Patient"
    ]
    if len(patients) != 1:
        raise Invalid(
            [
                {
                    "loc": ["body", "entry"],
                    "msg": f"expected exactly one Patient, got {len(patients)}",
                }
            ]
        )
    patient = _patient(
        patients[0][1], manifest, problems, ["body", "entry", patients[0][0], "resource"]
    )
    codes = _marker_codes(manifest)
    measurements = []
    for i, r in resources:
        if isinstance(r, dict) and r.get("resourceType") == "Observation":
            m = _observation(r, codes, problems, ["body", "entry", i, "resource"])
            if m is not None:
                measurements.append(m)
    if problems:
        raise Invalid(problems)
    return PatientHistory.model_validate(
        {
            "patient": patient,
            "measurements": measurements,
            "as_of": as_of,
            "next_imaging_date": next_imaging,
        }
    )


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
    r: dict[str, Any], manifest: Manifest, problems: list[dict[str, Any]], loc: list[Any]
) -> dict[str, Any]:
    ids = r.get("identifier") or [{}]
    pid = r.get("id") or (ids[0].get("value") if isinstance(ids[0], dict) else None)
    if not pid:
        problems.append({"loc": [*loc, "id"], "msg": "the Patient needs an id or identifier"})
    ext = {e.get("url"): e for e in r.get("extension") or [] if isinstance(e, dict)}
    index = ext.get(INDEX_DATE_URL, {}).get("valueDate")
    if not index:
        problems.append(
            {
                "loc": [*loc, "extension"],
                "msg": f"the index date is missing: extension {INDEX_DATE_URL} with valueDate",
            }
        )
    record: dict[str, Any] = {"patient_id": str(pid or ""), "index_date": str(index or "")}
    for url, e in ext.items():
        if isinstance(url, str) and url.startswith(COVARIATE_URL):
            record[url.removeprefix(COVARIATE_URL)] = _value(e)
    _derived_covariates(r, manifest, record)
    return record


def _derived_covariates(r: dict[str, Any], manifest: Manifest, record: dict[str, Any]) -> None:
    gender = {"male": "M", "female": "F"}.get(str(r.get("gender")))
    if "sex" in manifest.covariates and "sex" not in record and gender:
        record["sex"] = gender
    born, index = r.get("birthDate"), record["index_date"]
    if "age" in manifest.covariates and "age" not in record and born and index:
        try:
            b, i = date.fromisoformat(str(born)[:10]), date.fromisoformat(index)
        except ValueError:
            return  # the contract check reports the index date; a bad birthDate gives no age
        record["age"] = i.year - b.year - ((i.month, i.day) < (b.month, b.day))


def _value(e: dict[str, Any]) -> Any:
    for k, v in e.items():
        if k.startswith("value"):
            return v
    return None


def _observation(
    r: dict[str, Any],
    codes: dict[tuple[str, str], str],
    problems: list[dict[str, Any]],
    loc: list[Any],
) -> dict[str, Any] | None:
    if r.get("status") in IGNORED_STATUS:
        return None
    codings = (r.get("code") or {}).get("coding") or []
    pairs = [(str(c.get("system")), str(c.get("code"))) for c in codings if isinstance(c, dict)]
    marker = next((codes[p] for p in pairs if p in codes), None)
    if marker is None:
        seen = [f"{c.get('system')}|{c.get('code')}" for c in codings if isinstance(c, dict)]
        problems.append(
            {
                "loc": [*loc, "code"],
                "msg": f"unknown marker code {seen}; known: {sorted(f'{s}|{c}' for s, c in codes)}",
            }
        )
        return None
    when = r.get("effectiveDateTime") or (r.get("effectivePeriod") or {}).get("start")
    q = r.get("valueQuantity")
    if not isinstance(q, dict) or "value" not in q:
        problems.append(
            {"loc": [*loc, "valueQuantity"], "msg": "an Observation needs valueQuantity.value"}
        )
        return None
    comparator = q.get("comparator")
    if comparator not in (None, "<", ">"):
        problems.append(
            {
                "loc": [*loc, "valueQuantity", "comparator"],
                "msg": f"comparator must be < or >, got {comparator!r}",
            }
        )
    return {
        "date": str(when or "")[:10],
        "marker": marker,
        "value": q.get("value"),
        "unit": q.get("unit") or q.get("code") or "",
        "qualifier": comparator,
        "draw_id": (r.get("id") or None),
    }


def risk_assessment(doc: dict[str, Any]) -> dict[str, Any]:
    """An assessment as a FHIR R4 RiskAssessment resource."""
    model = doc["model"]
    advice = doc["imaging"]
    forward = advice["recommendation"] == "bring_imaging_forward"
    predictions = [
        {
            "outcome": {"text": "recurrence of hepatocellular carcinoma"},
            "probabilityDecimal": p,
            "whenRange": {
                "high": {
                    "value": float(h),
                    "unit": "d",
                    "system": "http://unitsofmeasure.org",
                    "code": "d",
                }
            },
            **(
                {
                    "qualitativeRisk": {
                        "coding": [
                            {"system": RISK_PROBABILITY, "code": BAND_CODE[doc["risk_band"]]}
                        ]
                    }
                }
                if float(h) == float(doc["alarm_horizon_days"])
                else {}
            ),
        }
        for h, p in doc["risk"].items()
    ]
    return {
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
        "prediction": predictions,
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
