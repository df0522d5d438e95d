"""Latency and throughput of the risk service, side by side with ``mlflow models serve``.
Run by hand, never a test.

    /work/venv/bin/python benchmarks/bench_serving.py [--tracking-uri URI --cohort DIR] [--requests 200]
        [--load-seconds 60] [--clients 16] [--rate 200] [--patients 640] [--workers 2]
        [--load-tool wrk|python]
        [--database-url URL]   # an empty database: the load registers fixed patient ids

Without ``--tracking-uri`` it simulates 300 patients and trains + registers a Cox model in a
temporary folder. Then, for one patient with 20 draws (``POST /v1/risk`` body):

1. in-process: ``RiskPipeline.assess`` alone, and the whole ASGI app (auth, store write,
   response) through httpx's ASGI transport, and the same request as bare ASGI messages
   (the app's own time, without the client's) — p50 / p99 / requests per second;
2. over HTTP: ``ctcmon serve --workers N`` (default 2, one per core) and ``mlflow models
   serve --env-manager local -m models:/ctcmon-recurrence@champion`` on the same registered
   model, called sequentially (latency) and from ``--clients`` threads (throughput).
   mlflow runs its default single worker: with uvicorn's ``--workers`` a keep-alive
   response waits ~40 ms on a delayed ACK (its sockets lack TCP_NODELAY), which would
   flatter the comparison. MLflow's fixed floor is measured the same way on the same
   pyfunc wrapper around a pipeline that returns a precomputed assessment (logged to a
   new MLflow store in the temp folder). With wrk installed (``apt install wrk``), both
   servers then take ``--clients`` connections from wrk for ``--wrk-seconds`` each: a C
   load generator, so the servers and not Python client threads set the throughput;
3. sustained load (skipped with ``--load-seconds 0``): ``--clients`` connections submitting
   draws (``POST /v1/patients/{id}/draws``, each with an Idempotency-Key) for
   ``--load-seconds`` over ``--patients`` patients (a month apart per patient: ~19 draws
   each at 200/s for 60 s); reports the achieved rate,
   statuses, and lost or duplicated writes (acknowledged assessment ids vs the store).
   With wrk installed (``apt install wrk``) the load comes from wrk and ``draws.lua``, as
   fast as the service answers; else from Python threads paced at ``--rate`` — those cost
   as much CPU as the service on the same two cores, so they understate it.

Targets (2 cores; the web-app issue's restatement): with 16 concurrent clients, throughput
>= 3x ``mlflow models serve`` on the same model while ctcmon also authenticates and stores;
single-client p50 over HTTP minus the assessment's in-process p50 <= 1.5 ms; the app's
in-process p99 <= 15 ms. Load: 200 draws/s for 60 s from 16 clients with zero
lost/duplicated writes and zero 5xx.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.simplefilter("ignore")

import _wrk  # noqa: E402  (after sys.path)
from _service import ctcmon_serve, free_port, wait_http  # noqa: E402  (after sys.path)

CHAMPION = "models:/ctcmon-recurrence@champion"


def summary(name: str, seconds: list[float], wall: float | None = None) -> str:
    ms = np.asarray(seconds) * 1000
    rate = len(ms) / (wall if wall else ms.sum() / 1000)
    return (
        f"{name:<44} n={len(ms):<5} p50={np.percentile(ms, 50):8.1f} ms  "
        f"p99={np.percentile(ms, 99):8.1f} ms  {rate:7.1f} req/s"
    )


def timed(call: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        out.append(time.perf_counter() - t)
    return out


def concurrent(call: Callable[[], Any], n: int, clients: int) -> tuple[list[float], float]:
    times: list[float] = []
    lock = threading.Lock()
    per = max(1, n // clients)

    def worker() -> None:
        for _ in range(per):
            t = time.perf_counter()
            call()
            with lock:
                times.append(time.perf_counter() - t)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return times, time.perf_counter() - start


def train_model(folder: Path) -> tuple[str, Path]:
    from cohort.load import load_cohort
    from cohort.simulate import simulate_cohort
    from training.train import TrainConfig, train

    cohort_dir = folder / "cohort"
    simulate_cohort(cohort_dir, n_patients=300, seed=2)
    uri = f"sqlite:///{(folder / 'mlflow.db').as_posix()}"
    train(
        load_cohort(cohort_dir),
        TrainConfig(models=["cox"], folds=3, n_boot=0),
        tracking_uri=uri,
        experiment="bench",
        register=True,
    )
    return uri, cohort_dir


def twenty_draws(cohort_dir: Path | None, manifest: Any) -> dict[str, Any]:
    """A patient with 20 draws (from the cohort, else synthetic) as a POST /v1/risk body."""
    if cohort_dir is not None:
        from cohort.load import load_cohort
        from cohort.records import history_from_cohort

        cohort = load_cohort(cohort_dir)
        counts = cohort.measurements.groupby("patient_id")["date"].nunique()
        pid = str(counts[counts >= 20].index[0])
        h = history_from_cohort(cohort, pid)
        days = sorted({m.date for m in h.measurements if m.date})[:20]
        kept = [m for m in h.measurements if m.date in days]
        body = h.model_copy(update={"measurements": kept, "as_of": days[-1]})
        return body.model_dump(mode="json", exclude_none=True)
    start = date(2023, 1, 10)
    days = [(start + timedelta(days=30 * i)).isoformat() for i in range(20)]
    markers = [m for m in ("ctc_total", "afp") if m in manifest.markers]
    return {
        "patient": {"patient_id": "bench-1", "index_date": start.isoformat()},
        "measurements": [
            {"date": d, "marker": m, "value": 2.0 + i % 3, "unit": manifest.markers[m].unit}
            for i, d in enumerate(days)
            for m in markers
        ],
        "as_of": days[-1],
    }


def in_process(
    holder: Any, db: str, token: str, body: dict[str, Any], n: int
) -> tuple[list[str], float, float, float]:
    """Summary lines, the p50 of ``RiskPipeline.assess`` alone, the app's own p99 and the p99
    through an in-process httpx client (the app with its store write), in ms."""
    from serving.app import create_app
    from serving.settings import Settings

    pipeline = holder.current.pipeline
    from cohort.records import PatientHistory

    history = PatientHistory.model_validate(body)
    assess = timed(lambda: pipeline.assess(history), n)
    lines = [summary("in-process RiskPipeline.assess", assess)]
    app = create_app(Settings(database_url=db, model_poll_seconds=0), holder=holder)
    raw = json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}"}

    async def through_httpx() -> list[float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://app", headers=headers
        ) as c:
            out = []
            for _ in range(n):
                t = time.perf_counter()
                r = await c.post("/v1/risk", json=body)
                out.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
            return out

    async def app_alone() -> list[float]:
        """The same request as ASGI messages: the app's own time, without a client's."""
        request_headers = [
            (b"host", b"app"),
            (b"authorization", headers["Authorization"].encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
        ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/risk",
            "raw_path": b"/v1/risk",
            "query_string": b"",
            "root_path": "",
            "headers": request_headers,
            "client": ("127.0.0.1", 1),
            "server": ("app", 80),
        }

        async def one() -> float:
            messages = [{"type": "http.request", "body": raw, "more_body": False}]
            status: list[int] = []

            async def receive() -> dict[str, Any]:
                return messages.pop() if messages else {"type": "http.disconnect"}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])

            t = time.perf_counter()
            await app({**scope, "state": {}}, receive, send)
            elapsed = time.perf_counter() - t
            assert status == [200], status
            return elapsed

        return [await one() for _ in range(n)]

    async def run() -> tuple[list[float], list[float]]:
        async with app.router.lifespan_context(app):
            return await through_httpx(), await app_alone()

    client, alone = asyncio.run(run())
    lines.append(summary("in-process ASGI app POST /v1/risk (+store)", client))
    lines.append(summary("  the same, app alone (no httpx client)", alone))
    p99_alone, p99_client = (float(np.percentile(x, 99)) * 1000 for x in (alone, client))
    return lines, p50_ms(assess), p99_alone, p99_client


def over_http(
    name: str, url: str, payload: Any, headers: dict[str, str], n: int, clients: int
) -> tuple[list[str], float]:
    """Summary lines (sequential, then ``clients`` threads) and the sequential p50 in ms."""
    client = httpx.Client(headers=headers, timeout=120)

    def call() -> None:
        r = client.post(url, json=payload)
        if r.status_code >= 300:
            raise RuntimeError(f"{name}: {r.status_code} {r.text[:200]}")

    for _ in range(3):
        call()
    sequential = timed(call, n)
    seq = summary(f"{name} sequential", sequential)
    times, wall = concurrent(call, n, clients)
    client.close()
    return [seq, summary(f"{name} {clients} clients", times, wall)], p50_ms(sequential)


def p50_ms(seconds: list[float]) -> float:
    return float(np.percentile(seconds, 50)) * 1000


class ConstantPipeline:
    """Stands in for ``RiskPipeline`` inside the packaged pyfunc: the same assessment for any
    history, computed once. Served by ``mlflow models serve``, it shows MLflow's fixed cost
    per request (HTTP, input conversion to ``PatientHistory``, output) with no model work."""

    def __init__(self, assessment: dict[str, Any]) -> None:
        self.assessment = assessment

    def assess(self, history: Any) -> dict[str, Any]:
        return self.assessment

    def warm(self) -> None:
        """Nothing to prepare (the pyfunc wrapper warms its pipeline at load)."""


def log_constant_model(folder: Path, assessment: dict[str, Any], body: dict[str, Any]) -> str:
    """The real pyfunc wrapper (same ``predict``, same input signature) around a
    ``ConstantPipeline``, logged to a new MLflow store in ``folder``; its tracking URI."""
    import mlflow

    from models.packaging import MODEL_ARTIFACT, CtcmonRiskModel
    from tracking.locations import use_tracking

    uri = use_tracking(f"sqlite:///{(folder / 'floor-mlflow.db').as_posix()}", "bench-floor")
    # MLflow narrates logging and registering on stderr and the log; the benchmark's output
    # is the figures
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), mlflow.start_run():
        warnings.simplefilter("ignore")
        info = mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=CtcmonRiskModel(ConstantPipeline(assessment)),  # type: ignore[arg-type]
            input_example=[body],
            pip_requirements=["mlflow"],  # --env-manager local installs nothing
        )
        mlflow.register_model(info.model_uri, "ctcmon-floor")
    return uri


def mlflow_serve(model_uri: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``mlflow models serve`` with its default single worker (see the module's docstring)."""
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "models",
            "serve",
            "--env-manager",
            "local",
            "-m",
            model_uri,
            "-p",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def restated_targets(
    ours_http: float,
    assess: float,
    in_process_p99: float,
    wrk_lines: list[str],
    single: dict[str, float] | None = None,
) -> list[str]:
    """The serving targets of the web-app issue, measured in this run.

    The overhead target (auth, validation, storage and HTTP) is judged on wrk's single
    connection when wrk is installed: a C client whose own time per request is a few
    microseconds. The Python client's figure is printed beside it; it adds httpx's own
    encoding and bookkeeping (about a millisecond) to the service's.
    """
    python_overhead = ours_http - assess
    lines = [
        "targets:",
        f"  single-client p50 over HTTP from Python (httpx) minus the in-process assessment: "
        f"{ours_http:.2f} - {assess:.2f} = {python_overhead:.2f} ms (includes the client's "
        "own time)",
    ]
    judged = python_overhead
    if single is not None:
        judged = single["p50_ms"] - assess
        lines.append(
            f"  single-connection p50 over HTTP from wrk minus the in-process assessment: "
            f"{single['p50_ms']:.2f} - {assess:.2f} = {judged:.2f} ms "
            f"({single['requests']:.0f} requests, {single['bad']:.0f} not 2xx)"
        )
    return [
        *lines,
        f"  the service's overhead per request: {judged:.2f} ms (target <= 1.5 ms: "
        f"{'met' if judged <= 1.5 else 'NOT met'})",
        f"  in-process app p99 {in_process_p99:.1f} ms (target <= 15 ms: "
        f"{'met' if in_process_p99 <= 15 else 'NOT met'})",
        *wrk_lines,
    ]


def sustained_load(
    base: str,
    token: str,
    seconds: float,
    clients: int,
    rate: float,
    db: str,
    patients_per_client: int,
) -> list[str]:
    """Draw submissions from ``clients`` threads; acknowledged ids compared with the store.

    Each client registers ``patients_per_client`` patients first, then submits draws to them
    in turn (a month apart per patient), as a ward's workstations would: at 200 draws/s for
    60 s with 16 x 40 patients each patient ends with ~19 draws.
    """
    headers = {"Authorization": f"Bearer {token}"}
    acked: list[str] = []
    statuses: dict[int, int] = {}
    errors = 0
    lock = threading.Lock()
    interval = clients / rate
    ready = threading.Barrier(clients + 1)
    clock = {"stop": float("inf")}

    def client(i: int) -> None:
        nonlocal errors
        pids = [f"load-{i}-{k}" for k in range(patients_per_client)]
        with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
            for pid in pids:
                c.post("/v1/patients", json={"patient_id": pid, "index_date": "2020-01-01"})
            ready.wait()
            next_at = time.monotonic()
            n = 0
            while time.monotonic() < clock["stop"]:
                # round-robin over the client's patients: each gets a draw every month
                pid = pids[n % len(pids)]
                day = date(2020, 1, 2) + timedelta(days=30 * (n // len(pids)))
                n += 1
                body = {
                    "date": day.isoformat(),
                    "measurements": [
                        {"marker": "ctc_total", "value": n % 4, "unit": "cells/7.5mL"},
                        {"marker": "afp", "value": 3.0 + n % 7, "unit": "ng/mL"},
                    ],
                }
                try:
                    r = c.post(
                        f"/v1/patients/{pid}/draws",
                        json=body,
                        headers={"Idempotency-Key": f"{pid}-{day}"},
                    )
                except httpx.HTTPError:
                    with lock:
                        errors += 1
                    continue
                with lock:
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    if r.status_code == 201:
                        acked.append(r.json()["assessment_id"])
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    ready.wait()  # the clients have registered their patients: the clock starts now
    start = time.monotonic()
    clock["stop"] = start + seconds
    for th in threads:
        th.join()
    wall = time.monotonic() - start
    stored = stored_draw_assessments(db)
    lost = len(set(acked) - set(stored))
    duplicated = len(stored) - len(set(stored))
    fivexx = sum(v for k, v in statuses.items() if k >= 500)
    return [
        f"sustained load: {clients} clients x {patients_per_client} patients, {seconds:.0f} s, "
        f"target {rate:.0f} draws/s",
        f"  achieved {len(acked) / wall:.1f} acknowledged draws/s ({len(acked)} in {wall:.1f} s)",
        f"  statuses {dict(sorted(statuses.items()))}, transport errors {errors}, 5xx {fivexx}",
        f"  lost acknowledged writes {lost}, duplicated writes {duplicated}, stored {len(stored)}",
    ]


def stored_draw_assessments(db: str) -> list[str]:
    from sqlalchemy import select

    from serving.store import Assessment, Store

    store = Store(db)
    with store.reading() as s:
        ids = list(s.scalars(select(Assessment.assessment_id).where(Assessment.source == "draw")))
    store.dispose()
    return ids


def sustained_load_wrk(
    base: str, token: str, seconds: float, clients: int, db: str, patients: int
) -> list[str]:
    """``clients`` keep-alive connections from wrk (C, one thread) submitting draws as fast as
    the service answers, round-robin over ``patients`` patients; every response's status and
    assessment id are logged by ``draws.lua`` and compared with the store afterwards.

    The Python load generator costs about as much CPU as the service itself, on the same two
    cores; wrk costs a few per cent, so what is measured is the service.
    """
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
        for k in range(patients):
            c.post("/v1/patients", json={"patient_id": f"load-0-{k}", "index_date": "2020-01-01"})
    acks = Path(tempfile.mkdtemp(prefix="wrk-acks-")) / "acks"
    env = {
        **os.environ,
        "CTCMON_TOKEN": token,
        "CTCMON_PATIENTS": str(patients),
        "CTCMON_ACKS": str(acks),
    }
    script = Path(__file__).with_name("draws.lua")
    cmd = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:.0f}s", "-s", str(script), base]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    statuses: dict[int, int] = {}
    acked: list[str] = []
    for path in acks.parent.glob("acks-*.txt"):
        for line in path.read_text().splitlines():
            status, ident = line.split(" ", 1)
            statuses[int(status)] = statuses.get(int(status), 0) + 1
            if status == "201":
                acked.append(ident)
    stored = stored_draw_assessments(db)
    lost = len(set(acked) - set(stored))
    duplicated = len(stored) - len(set(stored))
    fivexx = sum(v for k, v in statuses.items() if k >= 500)
    wrk_lines = [f"  {line}" for line in out.splitlines() if line.startswith("wrk")]
    return [
        f"sustained load (wrk): {clients} connections, {patients} patients, {seconds:.0f} s, "
        f"as fast as answered (target >= 200 draws/s)",
        f"  achieved {len(acked) / seconds:.1f} acknowledged draws/s ({len(acked)} in {seconds:.0f} s)",
        f"  statuses {dict(sorted(statuses.items()))}, 5xx {fivexx}",
        f"  lost acknowledged writes {lost}, duplicated writes {duplicated}, stored {len(stored)}",
        *wrk_lines,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri")
    parser.add_argument(
        "--cohort", type=Path, help="cohort the model was trained on (a 20-draw patient)"
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument(
        "--wrk-seconds", type=float, default=15, help="each server's wrk throughput run"
    )
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument(
        "--patients", type=int, default=640, help="patients the load spreads its draws over"
    )
    parser.add_argument(
        "--load-tool",
        choices=["wrk", "python"],
        default="wrk" if shutil.which("wrk") else "python",
        help="wrk (Debian package wrk; default when installed) or Python threads",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes of ctcmon serve (one per core)",
    )
    parser.add_argument(
        "--database-url", help="the service's store (default: a new SQLite file in a temp folder)"
    )
    args = parser.parse_args()

    from cohort.records import PatientHistory
    from serving.auth import create_key
    from serving.model import ModelHolder
    from serving.store import Store

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    cohort_dir = args.cohort
    uri = args.tracking_uri
    if uri is None:
        print(f"training a cox model on 300 simulated patients in {work} ...", flush=True)
        uri, cohort_dir = train_model(work)
    holder = ModelHolder(CHAMPION, uri)
    holder.refresh()
    body = twenty_draws(cohort_dir, holder.current.pipeline.manifest)
    db = args.database_url or f"sqlite:///{(work / 'bench.db').as_posix()}"
    store = Store(db)
    store.migrate()
    _, token = create_key(store, "clinician", body["patient"].get("site_id") or "site-a")
    store.dispose()
    n = args.requests
    print(
        f"model {holder.current.name} v{holder.current.version} ({holder.current.pipeline.model_name}); "
        f"patient with 20 draws ({len(body['measurements'])} marker values); {os.cpu_count()} CPUs"
    )
    lines, assess_p50, app_p99, _ = in_process(holder, db, token, body, n)
    for line in lines:
        print(line, flush=True)
    history = PatientHistory.model_validate(body)
    floor_uri = log_constant_model(work, holder.current.pipeline.assess(history), body)

    env = {
        **os.environ,
        # mlflow models serve runs `uvicorn` from PATH: the one installed beside this Python
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # both set: logging the constant model pointed this process's MLflow at its store
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_REGISTRY_URI": uri,
        "CTCMON_DATABASE_URL": db,
        "CTCMON_MODEL_POLL_SECONDS": "0",
    }
    ours, theirs, floor = free_port(), free_port(), free_port()
    procs = [
        ctcmon_serve(ours, args.workers, env),
        mlflow_serve(CHAMPION, theirs, env),
        mlflow_serve(
            "models:/ctcmon-floor/1",
            floor,
            {**env, "MLFLOW_TRACKING_URI": floor_uri, "MLFLOW_REGISTRY_URI": floor_uri},
        ),
    ]
    try:
        wait_http(f"http://127.0.0.1:{ours}/health", procs[0])
        wait_http(f"http://127.0.0.1:{theirs}/ping", procs[1])
        wait_http(f"http://127.0.0.1:{floor}/ping", procs[2])
        headers = {"Authorization": f"Bearer {token}"}
        p50: dict[str, float] = {}
        for who, name, url, payload, hdrs in [
            (
                "ours",
                "ctcmon serve  POST /v1/risk",
                f"http://127.0.0.1:{ours}/v1/risk",
                body,
                headers,
            ),
            (
                "mlflow",
                "mlflow models serve /invocations",
                f"http://127.0.0.1:{theirs}/invocations",
                {"inputs": [body]},
                {},
            ),
            (
                "floor",
                "  the same, constant model (mlflow's floor)",
                f"http://127.0.0.1:{floor}/invocations",
                {"inputs": [body]},
                {},
            ),
        ]:
            lines, p50[who] = over_http(name, url, payload, hdrs, n, args.clients)
            for line in lines:
                print(line, flush=True)
        wrk_lines = _wrk.comparison(
            f"http://127.0.0.1:{ours}/v1/risk",
            f"http://127.0.0.1:{theirs}/invocations",
            body,
            token,
            args.clients,
            args.wrk_seconds,
        )
        for p in procs[1:]:
            p.send_signal(signal.SIGTERM)
        print(
            f"  mlflow models serve {p50['mlflow']:.2f} ms = fixed floor {p50['floor']:.2f} ms "
            f"(constant model) + {p50['mlflow'] - p50['floor']:.2f} ms for the pipeline",
            flush=True,
        )
        single = _wrk.single_connection_p50(
            f"http://127.0.0.1:{ours}/v1/risk", body, token, args.wrk_seconds
        )
        # the assessment timed again beside the single-connection run (the shared machine's
        # speed drifts over a run); the target is judged against this one
        pipeline = holder.current.pipeline
        again = p50_ms(timed(lambda: pipeline.assess(history), n))
        print(f"in-process RiskPipeline.assess p50 again: {again:.2f} ms (first: {assess_p50:.2f})")
        for line in restated_targets(p50["ours"], again, app_p99, wrk_lines, single):
            print(line, flush=True)
        base = f"http://127.0.0.1:{ours}"
        if args.load_seconds <= 0:
            lines = ["sustained load: skipped (--load-seconds 0)"]
        elif args.load_tool == "wrk":
            lines = sustained_load_wrk(
                base, token, args.load_seconds, args.clients, db, args.patients
            )
        else:
            lines = sustained_load(
                base,
                token,
                args.load_seconds,
                args.clients,
                args.rate,
                db,
                max(1, args.patients // args.clients),
            )
        for line in lines:
            print(line, flush=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    main()
