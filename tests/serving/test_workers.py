"""``ctcmon serve --workers 2``: both processes answer, and SIGTERM stops them all."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import Registry, draw, free_port, server_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(c) for c in text.split()]


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_two_workers_share_the_connections_and_stop_together(
    registry: Registry, tmp_path: Path
) -> None:
    env, token = server_env(registry, tmp_path / "workers.db")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ctcmon", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        workers = _wait_ready(proc, url, log)
        before = {w: _cpu_ticks(w) for w in workers}
        headers = {"Authorization": f"Bearer {token}"}
        for i in range(40):  # a new connection each time: the kernel picks a worker
            with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
                pid = f"w-{i}"
                r = c.post("/v1/patients", json={"patient_id": pid, "index_date": "2023-01-01"})
                assert r.status_code == 201, r.text
                r = c.post(f"/v1/patients/{pid}/draws", json=draw("2023-02-01"))
                assert r.status_code == 201, r.text
        busy = [w for w in workers if _cpu_ticks(w) > before[w]]
        assert len(busy) == 2, f"only {busy} of {workers} answered requests"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, log.read_text()[-2000:]
    assert not any(Path(f"/proc/{w}").exists() for w in workers)


def _workers(pid: int) -> list[int]:
    """The server's worker processes (not multiprocessing's resource tracker)."""
    cmd = {c: Path(f"/proc/{c}/cmdline").read_bytes() for c in _children(pid)}
    return [c for c, line in cmd.items() if b"spawn_main" in line]


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> list[int]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        ready = 0
        for _ in range(8):
            try:
                with httpx.Client(timeout=2) as c:  # a new connection each time
                    ready += c.get(f"{url}/ready").status_code == 200
            except httpx.HTTPError:
                pass
        workers = _workers(proc.pid)
        if ready == 8 and len(workers) == 2:
            return workers
        time.sleep(0.3)
    raise AssertionError("workers did not become ready: " + log.read_text()[-2000:])


def test_workers_that_cannot_listen_stop_the_server_with_a_clear_error(
    registry: Registry, tmp_path: Path
) -> None:
    env, _ = server_env(registry, tmp_path / "taken.db")
    with socket.socket() as taken:  # a listener without SO_REUSEPORT holds the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "ctcmon", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    # the first worker to fail stops the other, which may or may not have failed itself
    assert re.search(r"[12] worker\(s\) exited with codes \[2(, 2)?\]", done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
