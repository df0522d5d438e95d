"""Every retry is answered: the same Idempotency-Key and body arriving at once (a client that
retried while its first attempt was still running) both get the one stored assessment, on
one process with handler threads and on two replicas sharing PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from serving.store import Assessment, Draw, Store
from tests.serving.conftest import (
    Api,
    Registry,
    draw,
    free_port,
    postgres_schema,
    server_env,
    start_serve,
    stop,
)

PAIRS = 20


def at_once(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run ``calls`` in threads released together; their responses in order."""
    barrier = threading.Barrier(len(calls))
    out: list[httpx.Response | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        out[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None for r in out)
    return out  # type: ignore[return-value]


def poster(
    client: httpx.Client, path: str, body: dict[str, Any], key: str
) -> Callable[[], httpx.Response]:
    return lambda: client.post(path, json=body, headers={"Idempotency-Key": key})


def day(i: int) -> str:
    return (date(2024, 2, 1) + timedelta(days=i)).isoformat()


def assert_one_answer(pair: list[httpx.Response]) -> dict[str, Any]:
    """Both got the same stored assessment, one of them as a replay."""
    assert [r.status_code for r in pair] == [201, 201], [r.text for r in pair]
    first, second = (r.json() for r in pair)
    assert first == second
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in pair) == ["", "true"]
    return first


def test_the_same_draw_retried_at_once_gets_the_stored_assessment_twice(
    api: Api, patient: dict[str, Any], store: Store
) -> None:
    client = api.clinician
    for i in range(PAIRS):
        post = poster(client, "/v1/patients/p-0042/draws", draw(day(i)), f"retry-{i}")
        assert_one_answer(at_once(post, post))
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(Draw)) == PAIRS
        assert s.scalar(select(func.count()).select_from(Assessment)) == PAIRS


def test_a_different_request_for_a_recorded_day_still_gets_409_at_once(
    api: Api, patient: dict[str, Any]
) -> None:
    path = "/v1/patients/p-0042/draws"
    for i in range(5):
        a = poster(api.clinician, path, draw(day(i), afp=1), f"a-{i}")
        b = poster(api.clinician, path, draw(day(i), afp=2), f"b-{i}")
        assert sorted(r.status_code for r in at_once(a, b)) == [201, 409]


def test_the_same_risk_request_retried_at_once_is_stored_once(api: Api, store: Store) -> None:
    from tests.serving.test_risk import HISTORY

    for i in range(5):
        post = poster(api.clinician, "/v1/risk", HISTORY, f"risk-{i}")
        pair = at_once(post, post)
        assert [r.status_code for r in pair] == [200, 200]
        assert pair[0].json() == pair[1].json()
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(Assessment)) == 5


@pytest.mark.slow
@pytest.mark.postgres
def test_two_replicas_on_postgresql_answer_every_concurrent_retry_with_one_assessment(
    registry: Registry, tmp_path: Path
) -> None:
    with postgres_schema() as url:
        env, token = server_env(registry, url)
        ports = [free_port(), free_port()]
        procs = [start_serve(p, env, tmp_path / f"replica-{p}.log") for p in ports]
        try:
            clients = [
                httpx.Client(
                    base_url=f"http://127.0.0.1:{p}",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=60,
                )
                for p in ports
            ]
            r = clients[0].post(
                "/v1/patients", json={"patient_id": "r-1", "index_date": "2024-01-10"}
            )
            assert r.status_code == 201, r.text
            ids = set()
            for i in range(PAIRS):
                body = draw(day(i))
                calls = [poster(c, "/v1/patients/r-1/draws", body, f"replica-{i}") for c in clients]
                ids.add(assert_one_answer(at_once(*calls))["assessment_id"])
            listed = clients[1].get("/v1/patients/r-1/assessments").json()
            assert sorted(a["assessment_id"] for a in listed) == sorted(ids)
            for c in clients:
                c.close()
        finally:
            for proc in procs:
                stop(proc)
