"""Killing the server mid-load loses no acknowledged write, on SQLite and on PostgreSQL."""

from __future__ import annotations

import signal
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.conftest import (
    Registry,
    draw,
    free_port,
    server_env,
    start_serve,
)

pytestmark = pytest.mark.slow

N_CLIENTS = 6


def test_killing_the_server_mid_load_loses_no_acknowledged_write(
    registry: Registry, tmp_path: Path, database_url: str
) -> None:
    env, token = server_env(registry, database_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    proc = start_serve(port, env, tmp_path / "server.log")
    acked: list[tuple[str, str, str]] = []
    refused: list[int] = []
    registered: list[str] = []
    stop = threading.Event()

    def client(i: int) -> None:
        pid = f"k-{i}"
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            assert (
                c.post(
                    "/v1/patients", json={"patient_id": pid, "index_date": "2023-01-01"}
                ).status_code
                == 201
            )
            registered.append(pid)
            day = date(2023, 1, 2)
            while not stop.is_set():
                try:
                    r = c.post(f"/v1/patients/{pid}/draws", json=draw(day.isoformat()))
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged
                if r.status_code == 201:
                    acked.append((pid, day.isoformat(), r.json()["assessment_id"]))
                else:
                    refused.append(r.status_code)
                day += timedelta(days=7)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(N_CLIENTS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 90
    # kill while writes are in flight, after every client registered its patient (a busy
    # machine can start a thread late) and some draws were acknowledged
    while (len(registered) < N_CLIENTS or len(acked) < 3 * N_CLIENTS) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert not refused
    assert len(acked) >= N_CLIENTS, "too few writes before the kill to test anything"
    proc = start_serve(port, env, tmp_path / "server.log")
    try:
        stored: dict[str, Any] = {}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            for i in range(N_CLIENTS):
                record = c.get(f"/v1/patients/k-{i}").json()
                listed = c.get(f"/v1/patients/k-{i}/assessments").json()
                stored[f"k-{i}"] = (
                    {d["date"] for d in record["draws"]},
                    [a["assessment_id"] for a in listed],
                    len(record["draws"]),
                )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    for pid, day, assessment_id in acked:
        dates, ids, _ = stored[pid]
        assert day in dates and assessment_id in ids
    for dates, ids, n_draws in stored.values():
        assert len(ids) == len(set(ids)) == n_draws == len(dates)
