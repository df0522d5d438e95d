"""Throughput of one POST request under ``connections`` concurrent connections, from wrk
(Debian package ``wrk``): a C load generator that costs the two cores far less than Python
client threads, so the servers, not the clients, set the figure."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

# wrk calls done() once; its latency figures are in microseconds
_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
{headers}
local f = io.open("{body}", "rb")
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def post_throughput(
    url: str, payload: Any, headers: dict[str, str], seconds: float, connections: int
) -> dict[str, float]:
    """Requests/s, p50 and p99 in ms and the count of non-2xx/3xx answers over ``seconds``."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        body = Path(tmp) / "body.json"
        body.write_text(json.dumps(payload))
        script = Path(tmp) / "post.lua"
        lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
        script.write_text(_SCRIPT.format(headers=lines, body=body.as_posix()))
        out = subprocess.run(
            [
                "wrk",
                "-t",
                str(min(2, connections)),  # wrk wants at least one connection per thread
                "-c",
                str(connections),
                "-d",
                f"{seconds:g}s",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    n, duration_us, p50_us, p99_us, bad = (int(v) for v in line.split()[1:])
    return {
        "rps": n / (duration_us / 1e6),
        "p50_ms": p50_us / 1000,
        "p99_ms": p99_us / 1000,
        "bad": bad,
        "requests": n,
    }


def comparison(
    ours: str, theirs: str, body: dict[str, Any], token: str, clients: int, seconds: float
) -> list[str]:
    """16 connections from wrk at each server in turn: throughput and the ratio (target >= 3)."""
    if not available():
        return ["  16-client throughput from wrk: skipped (apt install wrk)"]
    a = post_throughput(ours, body, {"Authorization": f"Bearer {token}"}, seconds, clients)
    b = post_throughput(theirs, {"inputs": [body]}, {}, seconds, clients)
    ratio = a["rps"] / b["rps"]
    return [
        f"  wrk, {clients} connections, {seconds:g} s each: ctcmon {a['rps']:.0f} req/s "
        f"(p50 {a['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} ms, {a['bad']} not 2xx), mlflow "
        f"{b['rps']:.0f} req/s (p50 {b['p50_ms']:.1f} ms, p99 {b['p99_ms']:.1f} ms, "
        f"{b['bad']} not 2xx): {ratio:.2f}x (target >= 3x: {'met' if ratio >= 3 else 'NOT met'})",
    ]


def single_connection_p50(
    url: str, body: dict[str, Any], token: str, seconds: float
) -> dict[str, float] | None:
    """One wrk connection, one request at a time, for ``seconds``: the p50 latency of a
    client that costs almost nothing itself (None without wrk)."""
    if not available():
        return None
    return post_throughput(url, body, {"Authorization": f"Bearer {token}"}, seconds, 1)
