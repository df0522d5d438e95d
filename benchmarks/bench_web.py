"""Server time of the clinician web app's pages. Run by hand, never a test.

    python benchmarks/bench_web.py [--patients 2000] [--draws 40] [--repeat 30]
        [--database-url URL]   # an empty database (default: SQLite in a temporary folder)

Simulates ``--patients`` patients, trains and registers a Cox model on them, and loads them
all into the store with an assessment per draw (``serving.seed``, the path ``ctcmon demo``
takes). One more patient gets ``--draws`` draws a month apart, each submitted through
``service.submit_draw`` as the API and the draw form do. Then, signed in as the site's
clinician, each page is requested ``--repeat`` times through the whole ASGI app
in-process (session check, SQL, audit write, template), with the app's own lifespan:

- the worklist (page 1, sorted; filtered by band; a search; the last page);
- the patient page of the patient with ``--draws`` draws.

Targets (2 cores): worklist of 2,000 patients < 300 ms, patient page with 40 draws < 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

import httpx

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mlflow.pyfunc  # noqa: F401

from cohort.load import load_cohort
from cohort.simulate import simulate_cohort
from serving import service
from serving.app import create_app
from serving.auth import Principal, create_key
from serving.model import LoadedModel, ModelHolder
from serving.schemas import DrawIn, PatientRecord
from serving.seed import load_cohort_patients
from serving.settings import Settings
from serving.store import Store
from training.train import TrainConfig, train

SITE = "bench"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def setup(
    folder: Path, n_patients: int, database_url: str | None
) -> tuple[Store, ModelHolder, str, Principal]:
    cohort_dir = folder / "cohort"
    simulate_cohort(cohort_dir, n_patients=n_patients, seed=11)
    cohort = load_cohort(cohort_dir)
    uri = f"sqlite:///{(folder / 'mlflow.db').as_posix()}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(
            cohort,
            TrainConfig(models=["cox"], folds=3, n_boot=0),
            tracking_uri=uri,
            experiment="bench-web",
            register=True,
        )
        holder = ModelHolder("models:/ctcmon-recurrence@champion", uri)
        holder.refresh()
    store = Store(database_url or f"sqlite:///{(folder / 'ctcmon.db').as_posix()}")
    store.migrate()
    key_id, token = create_key(store, "clinician", SITE)
    key = Principal(key_id, "clinician", SITE)
    assert holder.current is not None
    started = time.perf_counter()
    loaded = load_cohort_patients(store, holder.current, key, cohort)
    print(
        f"loaded {loaded.patients} patients, {loaded.draws} draws with an assessment each, "
        f"{loaded.scans} scans in {time.perf_counter() - started:.1f} s"
    )
    return store, holder, token, key


def patient_with_draws(store: Store, model: LoadedModel, key: Principal, n: int) -> str:
    """A patient with ``n`` monthly draws, each submitted as the API does."""
    start = date.today() - timedelta(days=31 * n + 30)
    pid = f"bench-{n}"
    record = PatientRecord.model_validate(
        {"patient_id": pid, "index_date": start.isoformat(), "age": 60, "sex": "M"}
    )
    service.register_patient(store, model, key, record, None)
    for i in range(n):
        day = (start + timedelta(days=31 * (i + 1))).isoformat()
        body = DrawIn.model_validate(
            {
                "date": day,
                "measurements": [
                    {"marker": "ctc_total", "value": i % 4, "unit": "cells/7.5mL"},
                    {"marker": "afp", "value": 5 + i, "unit": "ng/mL"},
                    {"marker": "pivka_ii", "value": 20 + i, "unit": "mAU/mL"},
                ],
            }
        )
        service.submit_draw(store, model, key, pid, body, None, 365)
    return pid


async def timed(
    client: httpx.AsyncClient, path: str, repeat: int
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each request. The CPU time is the whole process's
    (every thread: the event loop, the app's thread pool, SQLite), so on a shared machine it
    shows the server's own cost when the wall clock also shows other processes' load."""
    wall, cpu = [], []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        r = await client.get(path)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return wall, cpu


async def measure(store: Store, holder: ModelHolder, token: str, pid: str, repeat: int) -> None:
    settings = Settings(database_url=store.url, model_poll_seconds=0)
    app = create_app(settings, holder=holder, store=store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            csrf = CSRF.search((await c.get("/")).text)
            assert csrf
            r = await c.post("/sign-in", data={"csrf": csrf.group(1), "api_key": token})
            assert r.status_code == 303, r.text
            first = (await c.get("/")).text
            pages = re.search(r"Page 1 of (\d+)", first)
            last = pages.group(1) if pages else "1"
            cases = [
                ("worklist, page 1", "/"),
                ("worklist, band=high", "/?band=high"),
                ("worklist, search 'sim-01'", "/?q=sim-01"),
                (f"worklist, last page ({last})", f"/?page={last}&ended=1"),
                (f"patient page, {pid}", f"/patients/{pid}"),
            ]
            for name, path in cases:
                await timed(c, path, 3)  # warm-up: compiled SQL, template cache
                ms, cpu = await timed(c, path, repeat)
                q = statistics.quantiles(ms, n=20)
                print(
                    f"{name:34s} p50 {statistics.median(ms):6.1f} ms  p95 {q[-1]:6.1f} ms  "
                    f"max {max(ms):6.1f} ms  CPU p50 {statistics.median(cpu):6.1f} ms  "
                    f"(n={repeat})"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--draws", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store, holder, token, key = setup(Path(tmp), args.patients, args.database_url)
        assert holder.current is not None
        pid = patient_with_draws(store, holder.current, key, args.draws)
        asyncio.run(measure(store, holder, token, pid, args.repeat))
        store.dispose()


if __name__ == "__main__":
    main()
