"""Shared by the benchmarks that run the service for real: a free port, ``ctcmon serve`` as a
subprocess (uvicorn workers), waiting for it to answer, stopping it, and API keys."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def ctcmon_env(**extra: str) -> dict[str, str]:
    """This environment with this checkout first on PYTHONPATH (a worktree's code, not the
    installed one's) and ``extra`` (e.g. CTCMON_DATABASE_URL, MLFLOW_TRACKING_URI)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def ctcmon_serve(
    port: int, workers: int, env: dict[str, str], log: Path | None = None
) -> subprocess.Popen[bytes]:
    """``ctcmon serve`` on 127.0.0.1:``port`` (call ``wait_http`` on ``/health`` next)."""
    sink = log.open("ab") if log is not None else subprocess.DEVNULL
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ctcmon",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=sink,
        stderr=sink,
    )


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM (the service stops its workers), then SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def create_key_cli(role: str, site: str, env: dict[str, str]) -> str:
    """A new API key from ``ctcmon keys create --json`` (the store is CTCMON_DATABASE_URL)."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ctcmon",
            "keys",
            "create",
            "--role",
            role,
            "--site",
            site,
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return str(json.loads(out)["key"])
