"""A near-valid fuzzer: seeded random mutations of valid requests to the risk service.

Each request starts as a valid one (register a patient, a draw, an imaging exam, an outcome,
a history or a FHIR Bundle for ``POST /v1/risk``, the reads) and gets one to three
mutations: a field dropped, nulled, or given another JSON type; a number at an edge
(negative, huge, subnormal, fractional count); a text at an edge (blanks, a 10,000-character
word, control characters, NaN spelled out, a path); a date that does not exist, is out of
the supported years, in the future or long before the index date; a list emptied or
repeated; an unknown key; a marker sent in another marker's unit; a body cut short or not
UTF-8; an Idempotency-Key reused for another body; a patient id that does not route.
Requests are near-valid so they pass the outer checks and reach the contract, the FHIR
mapping and the store, where a 500 would hide.

Used by ``tests/serving/test_nearvalid.py`` (a bounded run in CI) and
``benchmarks/bench_fuzz.py`` (a benchmark-sized run against ``ctcmon serve``).
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from tests.serving.test_risk import bundle

INDEX = date(2024, 1, 10)
MARKER_UNITS = {
    "ctc_total": "cells/7.5mL",
    "ctc_epithelial": "cells/5mL",
    "afp": "ng/mL",
    "pivka_ii": "mAU/mL",
}
WEIRD_TEXT = [
    "",
    " ",
    "\u00a0",
    "\t\n",
    "x" * 10_000,
    "NaN",
    "Infinity",
    "-0",
    "1e309",
    "0x1f",
    "1_000",
    "../../etc/passwd",
    "%2F",
    "a/b",
    "\x00",
    "\u202e",
    "😀",
    "null",
    "true",
    "<script>",
    "'; DROP TABLE patients; --",
]
WEIRD_DATES = [
    "2024-02-30",
    "2024-13-01",
    "0000-01-01",
    "1899-12-31",
    "2151-01-01",
    "9999-12-31",
    "2099-01-01",
    "1990-01-01",
    "2024-1-5",
    "20240105",
    "2024-01-05T00:00:00Z",
    " 2024-01-05 ",
]
WEIRD_NUMBERS: list[Any] = [
    -1,
    -0.0,
    0,
    2.5,
    1e308,
    -1e308,
    5e-324,
    10**30,
    -(10**30),
    True,
    False,
]


@dataclass
class Call:
    """One request: method, path template (the operation), path id, JSON or raw body."""

    method: str
    template: str
    patient_id: str | None = None
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> tuple[str, str]:
        return self.method, self.template

    def url(self) -> str:
        if self.patient_id is None:
            return self.template
        return self.template.replace("{patient_id}", quote(self.patient_id, safe=""))


def _day(rng: random.Random, lo: int = -30, hi: int = 700) -> str:
    return (INDEX + timedelta(days=rng.randint(lo, hi))).isoformat()


def _measurements(rng: random.Random, with_date: bool) -> list[dict[str, Any]]:
    out = []
    for marker in rng.sample(sorted(MARKER_UNITS), rng.randint(1, 3)):
        unit = MARKER_UNITS[marker]
        value: float = rng.randint(0, 12) if unit.startswith("cells/") else rng.uniform(0, 500)
        m: dict[str, Any] = {"marker": marker, "value": value, "unit": unit}
        if with_date:
            m["date"] = _day(rng, -20, 400)
        out.append(m)
    return out


def valid_calls(rng: random.Random, patient_ids: list[str]) -> list[Call]:
    """One valid request of each kind (the draw date random, so most draws are new)."""
    pid = rng.choice(patient_ids)
    patient = {
        "patient_id": pid,
        "index_date": INDEX.isoformat(),
        "age": rng.randint(30, 85),
        "sex": rng.choice(["F", "M"]),
        "microvascular_invasion": rng.randint(0, 1),
        "bclc_stage": rng.choice(["0", "A", "B"]),
    }
    history = {
        "patient": patient,
        "measurements": _measurements(rng, with_date=True),
        "imaging": [{"date": _day(rng, 60, 300), "modality": "MRI", "finding": "no_evidence"}],
        "as_of": _day(rng, 400, 600),
    }
    fhir = bundle()
    return [
        Call("POST", "/v1/patients", body={**patient, "patient_id": f"fz-{rng.randrange(10**9)}"}),
        Call(
            "POST",
            "/v1/patients/{patient_id}/draws",
            pid,
            body={"date": _day(rng, 0, 700), "measurements": _measurements(rng, False)},
        ),
        Call(
            "POST",
            "/v1/patients/{patient_id}/imaging",
            pid,
            body={"date": _day(rng, 30, 700), "modality": "CT", "finding": "no_evidence"},
        ),
        Call(
            "POST",
            "/v1/patients/{patient_id}/outcome",
            pid,
            body={"last_followup_date": _day(rng, 700, 800)},
        ),
        Call("POST", "/v1/risk", body=history),
        Call("POST", "/v1/risk", body=fhir, query={"as_of": "2024-07-01"}),
        Call("GET", "/v1/patients/{patient_id}", pid),
        Call("GET", "/v1/patients/{patient_id}/assessments", pid),
    ]


# ---- mutations: each changes one thing of a call ----
def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location inside a JSON value (dict keys and list positions)."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        value = value[p]
    return value


def _set(body: Any, path: tuple[Any, ...], new: Any) -> None:
    _get(body, path[:-1])[path[-1]] = new


def _at_random_place(change: Callable[[random.Random, Any], Any]) -> Callable[..., None]:
    def mutate(rng: random.Random, call: Call) -> None:
        places = _paths(call.body)
        if not places:
            return
        path = rng.choice(places)
        _set(call.body, path, change(rng, _get(call.body, path)))

    return mutate


def _drop(rng: random.Random, call: Call) -> None:
    places = [p for p in _paths(call.body) if isinstance(_get(call.body, p[:-1]), dict)]
    if places:
        path = rng.choice(places)
        del _get(call.body, path[:-1])[path[-1]]


def _add_unknown_key(rng: random.Random, call: Call) -> None:
    dicts = [()] + [p for p in _paths(call.body) if isinstance(_get(call.body, p), dict)]
    target = _get(call.body, rng.choice(dicts))
    if isinstance(target, dict):
        target[rng.choice(["extra", "Age", "patientId", "__proto__", "value "])] = rng.choice(
            [1, "x", None, [], {}]
        )


def _other_type(rng: random.Random, old: Any) -> Any:
    options: list[Any] = [None, "", "1", 1, 1.5, True, [], {}, [old], {"value": old}]
    return rng.choice([o for o in options if type(o) is not type(old)] or options)


def _edge_number(rng: random.Random, old: Any) -> Any:
    return rng.choice(WEIRD_NUMBERS) if not isinstance(old, str) else rng.choice(WEIRD_TEXT)


def _edge_text(rng: random.Random, old: Any) -> Any:
    if isinstance(old, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", old):
        return rng.choice(WEIRD_DATES)
    return rng.choice(WEIRD_TEXT) if isinstance(old, str) else old


def _repeat_list(rng: random.Random, call: Call) -> None:
    lists = [p for p in _paths(call.body) if isinstance(_get(call.body, p), list)]
    if lists:
        items = _get(call.body, rng.choice(lists))
        if items:
            items.extend(copy.deepcopy(items) * rng.choice([1, 3]))
        else:
            items.append({})


def _empty_list(rng: random.Random, call: Call) -> None:
    lists = [p for p in _paths(call.body) if isinstance(_get(call.body, p), list)]
    if lists:
        _get(call.body, rng.choice(lists)).clear()


def _swap_unit(rng: random.Random, call: Call) -> None:
    units = [p for p in _paths(call.body) if p and p[-1] == "unit"]
    if units:
        _set(call.body, rng.choice(units), rng.choice([*MARKER_UNITS.values(), "IU/mL", "mg"]))


def _raw_body(rng: random.Random, call: Call) -> None:
    text = json.dumps(call.body).encode()
    call.raw = rng.choice(
        [
            text[: max(1, len(text) // 2)],
            text.replace(b'"', b"'", 1),
            b"\xff\xfe" + text,
            text + b",",
            b"[" * 100 + b"]" * 100,
            b"",
            b"null",
            b'{"a": ' * 40 + b"1" + b"}" * 40,
        ]
    )


def _content_type(rng: random.Random, call: Call) -> None:
    call.headers["Content-Type"] = rng.choice(
        ["text/plain", "application/xml", "application/json; charset=latin-1", ""]
    )


def _idempotency(rng: random.Random, call: Call) -> None:
    call.headers["Idempotency-Key"] = rng.choice(["k-1", "k-2", "x" * 300, "k 1", "-"])


def _patient_id(rng: random.Random, call: Call) -> None:
    if call.patient_id is not None:
        call.patient_id = rng.choice(
            ["nobody", " p-0042", "p-0042 ", "p%2F1", "..", "x" * 200, "\u00a0", "😀", "p\\1"]
        )


def _query(rng: random.Random, call: Call) -> None:
    call.query[rng.choice(["as_of", "format", "next_imaging_date"])] = rng.choice(
        [*WEIRD_DATES, "fhir", "xml", ""]
    )


MUTATIONS: list[Callable[[random.Random, Call], None]] = [
    _drop,
    _add_unknown_key,
    _at_random_place(_other_type),
    _at_random_place(_edge_number),
    _at_random_place(_edge_text),
    _at_random_place(_edge_text),
    _repeat_list,
    _empty_list,
    _swap_unit,
    _raw_body,
    _content_type,
    _idempotency,
    _patient_id,
    _query,
]


def near_valid(rng: random.Random, patient_ids: list[str]) -> Call:
    """A valid call of a random kind with one to three mutations."""
    call = copy.deepcopy(rng.choice(valid_calls(rng, patient_ids)))
    for _ in range(rng.choice([1, 1, 2, 3])):
        rng.choice(MUTATIONS)(rng, call)
    return call


def send(client: httpx.Client, call: Call) -> httpx.Response:
    headers = dict(call.headers)
    content: bytes | None = None
    if call.method == "POST":
        content = call.raw if call.raw is not None else json.dumps(call.body).encode()
        headers.setdefault("Content-Type", "application/json")
    return client.request(
        call.method, call.url(), params=call.query, content=content, headers=headers
    )


@dataclass
class Outcome:
    """What a run got: statuses per operation, and the calls answered 5xx or undocumented."""

    statuses: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    server_errors: list[tuple[Call, int, str]] = field(default_factory=list)
    undocumented: list[tuple[Call, int, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


def run(
    client: httpx.Client,
    document: dict[str, Any],
    n: int,
    seed: int,
    patient_ids: list[str],
) -> Outcome:
    """``n`` near-valid calls (seeded); every answer checked against the document."""
    rng = random.Random(seed)
    out = Outcome()
    for _ in range(n):
        call = near_valid(rng, patient_ids)
        response = send(client, call)
        status = response.status_code
        out.statuses[(*call.label, status)] += 1
        documented = document["paths"][call.template][call.method.lower()]["responses"]
        if status >= 500:
            out.server_errors.append((call, status, response.text[:300]))
        elif str(status) not in documented:
            out.undocumented.append((call, status, response.text[:300]))
    return out


def register(client: httpx.Client, n: int) -> list[str]:
    """``n`` valid patients to aim the calls at (their ids)."""
    ids = [f"nv-{i:03d}" for i in range(n)]
    for pid in ids:
        body = {"patient_id": pid, "index_date": INDEX.isoformat(), "age": 60, "sex": "F"}
        r = client.post("/v1/patients", json=body)
        if r.status_code not in (201, 409):
            raise RuntimeError(f"registering {pid}: {r.status_code} {r.text}")
    return ids
