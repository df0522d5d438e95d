"""The near-valid fuzzer at benchmark size against ``ctcmon serve``. Run by hand, never a test.

    python benchmarks/bench_fuzz.py [--requests 2000] [--seed 1] [--workers 2]
        [--tracking-uri URI] [--database-url URL]

Trains and registers a Cox model on 300 simulated patients (unless ``--tracking-uri``),
starts ``ctcmon serve --workers N`` on a new store, registers 20 patients, then sends
``--requests`` near-valid requests (``tests/serving/nearvalid.py``: valid requests with one
to three mutations) and prints the statuses per operation, every 5xx and every status the
OpenAPI document does not list for its operation. Target: 0 responses >= 500 over >= 1,500
requests. CI runs the same fuzzer bounded (``tests/serving/test_nearvalid.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
warnings.simplefilter("ignore")

from _service import create_key_cli, ctcmon_env, ctcmon_serve, free_port, stop, wait_http  # noqa: E402
from bench_serving import train_model  # noqa: E402

from tests.serving import nearvalid  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tracking-uri")
    parser.add_argument("--database-url")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-fuzz-"))
    uri = args.tracking_uri
    if uri is None:
        print(f"training a cox model on 300 simulated patients in {work} ...", flush=True)
        uri, _ = train_model(work)
    db = args.database_url or f"sqlite:///{(work / 'fuzz.db').as_posix()}"
    env = ctcmon_env(CTCMON_DATABASE_URL=db, MLFLOW_TRACKING_URI=uri, CTCMON_MODEL_POLL_SECONDS="0")
    token = create_key_cli("clinician", "site-a", env)
    port = free_port()
    proc = ctcmon_serve(port, args.workers, env, work / "serve.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/ready", proc)
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120
        ) as client:
            document = client.get("/openapi.json").json()
            ids = nearvalid.register(client, 20)
            start = time.perf_counter()
            out = nearvalid.run(client, document, args.requests, args.seed, ids)
            wall = time.perf_counter() - start
    finally:
        stop(proc)
    load = os.getloadavg()
    print(
        f"{out.total} near-valid requests (seed {args.seed}) in {wall:.0f} s against ctcmon "
        f"serve --workers {args.workers} ({db.split(':', 1)[0]}); load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    by_status = Counter[int]()
    for (method, path, status), n in sorted(out.statuses.items()):
        by_status[status] += n
        print(f"  {method:<4} {path:<42} {status}  {n}")
    print(f"statuses: {dict(sorted(by_status.items()))}")
    print(f"5xx: {len(out.server_errors)}; undocumented statuses: {len(out.undocumented)}")
    for call, status, text in (out.server_errors + out.undocumented)[:10]:
        print(f"  {status} {call.method} {call.url()} {text[:200]!r}")
    sys.exit(1 if out.server_errors or out.undocumented else 0)


if __name__ == "__main__":
    main()
