"""A team's deployment under load: replicas on PostgreSQL, every model of the zoo as champion,
simultaneous starts. Run by hand, never a test (needs wrk and a PostgreSQL server).

    python benchmarks/bench_team.py [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
        [--parts replicas,zoo,starts] [--seconds 60] [--clients 16] [--replicas 2]
        [--patients 640] [--model-seconds 20] [--starts 10] [--models a,b] [--tracking-uri URI]

Without ``--tracking-uri`` it trains ``ctcmon train``'s default models (every model of the zoo)
on 300 simulated patients and registers the best as champion (the default champion). Each
part runs on a new, empty PostgreSQL schema of the given database:

1. ``replicas``: ``--replicas`` ``ctcmon serve --workers 1`` processes (one per core of a
   2-core machine) on one database, each loaded by its own ``wrk`` (``--clients`` connections
   in all, ``draws.lua``, its own patients) for ``--seconds``; acknowledged assessment ids
   are compared with the store: lost, duplicated, 5xx. Target: 200 draws/s for 60 s from 16
   clients, 0 lost, 0 duplicated, 0 5xx;
2. ``zoo``: each model of the zoo promoted to champion in turn and served by
   ``ctcmon serve --workers 2``, loaded by ``wrk`` for ``--model-seconds``. Target: >= 100
   draws/s each;
3. ``starts``: ``--starts`` rounds of two replicas started at the same instant on an empty
   database; a round passes when both answer ``/ready``. Target: 10 of 10.

The load average, and where the CPU went while wrk ran (the servers, PostgreSQL, wrk, everything
else on the machine), are printed with every figure: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
warnings.simplefilter("ignore")

from _service import create_key_cli, ctcmon_env, ctcmon_serve, free_port, stop, wait_http  # noqa: E402
from bench_serving import CHAMPION, stored_draw_assessments  # noqa: E402

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCRIPT = Path(__file__).with_name("draws.lua")


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


@contextmanager
def empty_schema(server: str) -> Iterator[str]:
    """A URL of a new, empty schema of ``server``'s database, dropped afterwards."""
    from sqlalchemy import text

    from serving.store import Store

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = Store(server)
    with admin.writing() as s:
        s.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        sep = "&" if "?" in server else "?"
        yield f"{server}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.writing() as s:
            s.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def train(folder: Path) -> str:
    """``ctcmon train``'s default models on 300 simulated patients; the best registered."""
    from cohort.load import load_cohort
    from cohort.simulate import simulate_cohort
    from training.train import TrainConfig, train

    simulate_cohort(folder / "cohort", n_patients=300, seed=2)
    uri = f"sqlite:///{(folder / 'mlflow.db').as_posix()}"
    result = train(
        load_cohort(folder / "cohort"),
        TrainConfig(folds=3, n_boot=0),
        tracking_uri=uri,
        experiment="bench-team",
        register=True,
    )
    print(f"trained {sorted(result.run_ids)}; champion {result.champion}", flush=True)
    return uri


def start(port: int, workers: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    proc = ctcmon_serve(port, workers, env, log)
    wait_http(f"http://127.0.0.1:{port}/ready", proc)
    return proc


def processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command line, CPU seconds used so far) of every process (Linux)."""
    hz = os.sysconf("SC_CLK_TCK")
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        out[int(name)] = (int(stat[1]), cmd, (int(stat[11]) + int(stat[12])) / hz)
    return out


def machine_busy() -> float:
    """CPU seconds the machine spent busy so far (all cores; idle and iowait excluded)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu_split(
    before: dict[int, tuple[int, str, float]],
    busy: float,
    servers: list[int],
    wrk_cpu: float,
    seconds: float,
) -> str:
    """Cores used since ``before``: the servers (and their workers), PostgreSQL, wrk (its
    CPU as this process's children), and the rest of the machine (other users' work)."""
    after = processes()

    def of_server(pid: int) -> bool:
        for _ in range(8):
            if pid in servers:
                return True
            pid = after.get(pid, (0,))[0]
        return False

    server = postgres = 0.0
    for pid, (_, cmd, cpu) in after.items():
        was = before.get(pid)
        used = cpu - (was[2] if was is not None and was[1] == cmd else 0.0)
        first = cmd.split(" ", 1)[0]
        if of_server(pid):
            server += used
        elif first.endswith("postgres") or first.startswith("postgres:"):
            postgres += used
    rest = machine_busy() - busy - server - postgres - wrk_cpu
    return (
        f"CPU: ctcmon serve {server / seconds:.2f} cores, PostgreSQL {postgres / seconds:.2f}, "
        f"wrk {wrk_cpu / seconds:.2f}, everything else {max(rest, 0.0) / seconds:.2f} "
        f"(of {os.cpu_count()})"
    )


def wrk_load(
    bases: list[str],
    token: str,
    seconds: float,
    clients: int,
    patients: int,
    work: Path,
    servers: list[int],
) -> tuple[dict[int, int], list[str], list[str], str]:
    """One wrk per base URL (``clients`` connections in all, one thread each), each on its
    own ``patients / len(bases)`` patients; the statuses, acknowledged ids, wrk's lines and
    where the CPU went while wrk ran (``servers``: the ``ctcmon serve`` pids)."""
    per = max(1, patients // len(bases))
    procs = []
    for i, base in enumerate(bases):
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
            for k in range(per):
                body = {"patient_id": f"r{i}-0-{k}", "index_date": "2020-01-01"}
                c.post("/v1/patients", json=body)
        env = {
            **os.environ,
            "CTCMON_TOKEN": token,
            "CTCMON_PATIENTS": str(per),
            "CTCMON_PREFIX": f"r{i}",
            "CTCMON_ACKS": str(work / f"acks-r{i}"),
        }
        cmd = ["wrk", "-t1", f"-c{clients // len(bases)}", f"-d{seconds:.0f}s", "-s"]
        if not procs:
            before, busy, started = processes(), machine_busy(), time.monotonic()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
        procs.append(
            subprocess.Popen([*cmd, str(SCRIPT), base], env=env, stdout=subprocess.PIPE, text=True)
        )
    lines = []
    for proc in procs:
        out, _ = proc.communicate()
        lines += [line for line in out.splitlines() if line.startswith("wrk")]
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = sum(getattr(done, f) - getattr(children, f) for f in ("ru_utime", "ru_stime"))
    split = cpu_split(before, busy, servers, wrk_cpu, time.monotonic() - started)
    statuses: dict[int, int] = {}
    acked: list[str] = []
    for path in work.glob("acks-r*-*.txt"):
        for line in path.read_text().splitlines():
            status, ident = line.split(" ", 1)
            statuses[int(status)] = statuses.get(int(status), 0) + 1
            if status == "201":
                acked.append(ident)
        path.unlink()
    return statuses, acked, lines, split


def replicas(args: argparse.Namespace, uri: str, work: Path) -> None:
    with empty_schema(args.database_url) as db:
        env = ctcmon_env(
            CTCMON_DATABASE_URL=db, MLFLOW_TRACKING_URI=uri, CTCMON_MODEL_POLL_SECONDS="0"
        )
        subprocess.run([sys.executable, "-m", "ctcmon", "db", "upgrade"], env=env, check=True)
        token = create_key_cli("clinician", "site-a", env)
        ports = [free_port() for _ in range(args.replicas)]
        procs = [start(p, 1, env, work / f"replica-{p}.log") for p in ports]
        try:
            model = httpx.get(
                f"http://127.0.0.1:{ports[0]}/v1/model",
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            before = load_average()
            statuses, acked, lines, split = wrk_load(
                [f"http://127.0.0.1:{p}" for p in ports],
                token,
                args.seconds,
                args.clients,
                args.patients,
                work,
                [proc.pid for proc in procs],
            )
            after = load_average()
        finally:
            for proc in procs:
                stop(proc)
        stored = stored_draw_assessments(db)
    lost = len(set(acked) - set(stored))
    duplicated = len(stored) - len(set(stored))
    fivexx = sum(n for s, n in statuses.items() if s >= 500)
    print(
        f"replicas: {args.replicas} x ctcmon serve --workers 1 on PostgreSQL, champion "
        f"{model['algorithm']} (v{model['version']}), {args.clients} wrk connections, "
        f"{args.patients} patients, {args.seconds:.0f} s",
        flush=True,
    )
    print(f"  achieved {len(acked) / args.seconds:.1f} acknowledged draws/s ({len(acked)})")
    print(f"  statuses {dict(sorted(statuses.items()))}, 5xx {fivexx}")
    print(
        f"  lost acknowledged writes {lost}, duplicated writes {duplicated}, stored {len(stored)}"
    )
    print(f"  {before} before, {after} after")
    print(f"  {split}")
    for line in lines:
        print(f"  {line}")


def zoo(args: argparse.Namespace, uri: str, work: Path) -> None:
    import mlflow

    from models.registry import MODEL_NAMES
    from tracking.registry import register_champion
    from tracking.vocabulary import Tag

    mlflow.set_tracking_uri(uri)
    runs = {
        r.data.tags[Tag.MODEL]: r.info.run_id
        for r in mlflow.search_runs(experiment_names=["bench-team"], output_format="list")
        if Tag.MODEL in r.data.tags
    }
    print(
        f"zoo: each model as champion, ctcmon serve --workers 2 on PostgreSQL, "
        f"{args.clients} wrk connections, {args.model_seconds:.0f} s each",
        flush=True,
    )
    # the zoo, and every other model training logged (the stack over them)
    names = [*MODEL_NAMES, *sorted(set(runs) - set(MODEL_NAMES))]
    for name in [n for n in names if not args.models or n in args.models.split(",")]:
        run_id = runs.get(name)
        if run_id is None:
            print(f"  {name:<9} no training run in {uri}")
            continue
        register_champion(run_id, "bench", 0.0)
        with empty_schema(args.database_url) as db:
            env = ctcmon_env(
                CTCMON_DATABASE_URL=db, MLFLOW_TRACKING_URI=uri, CTCMON_MODEL_POLL_SECONDS="0"
            )
            token = create_key_cli("clinician", "site-a", env)
            port = free_port()
            proc = start(port, 2, env, work / f"zoo-{name}.log")
            try:
                served = httpx.get(
                    f"http://127.0.0.1:{port}/v1/model",
                    headers={"Authorization": f"Bearer {token}"},
                ).json()["algorithm"]
                before = load_average()
                statuses, acked, _, split = wrk_load(
                    [f"http://127.0.0.1:{port}"],
                    token,
                    args.model_seconds,
                    args.clients,
                    args.patients,
                    work,
                    [proc.pid],
                )
                after = load_average()
            finally:
                stop(proc)
        fivexx = sum(n for s, n in statuses.items() if s >= 500)
        print(
            f"  {name:<9} {len(acked) / args.model_seconds:7.1f} draws/s  5xx {fivexx}  "
            f"(served: {served})  "
            f"statuses {dict(sorted(statuses.items()))}  ({before} before, {after} after; "
            f"{split})",
            flush=True,
        )


def starts(args: argparse.Namespace, uri: str, work: Path) -> None:
    ok = 0
    for round_ in range(args.starts):
        with empty_schema(args.database_url) as db:
            env = ctcmon_env(
                CTCMON_DATABASE_URL=db, MLFLOW_TRACKING_URI=uri, CTCMON_MODEL_POLL_SECONDS="0"
            )
            ports = [free_port(), free_port()]
            logs = [work / f"start-{round_}-{p}.log" for p in ports]
            procs = [ctcmon_serve(p, 1, env, log) for p, log in zip(ports, logs, strict=True)]
            try:
                for proc, port in zip(procs, ports, strict=True):
                    wait_http(f"http://127.0.0.1:{port}/ready", proc)
                ok += 1
            except RuntimeError as exc:
                print(f"  round {round_ + 1}: {exc}; logs {logs}", flush=True)
            finally:
                for proc in procs:
                    stop(proc)
    print(
        f"starts: {ok} of {args.starts} rounds of two replicas started at once on an empty "
        f"PostgreSQL database came up ({load_average()})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--parts", default="replicas,zoo,starts")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--patients", type=int, default=640)
    parser.add_argument("--model-seconds", type=float, default=20)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--models", help="the zoo part: only these models (a,b)")
    parser.add_argument("--tracking-uri", help="a store trained by this script (bench-team)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-team-"))
    uri = args.tracking_uri
    if uri is None:
        print(f"training the default models on 300 simulated patients in {work} ...", flush=True)
        uri = train(work)
    print(f"tracking store {uri}; {os.cpu_count()} CPUs; {load_average()}", flush=True)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    parts = {"replicas": replicas, "zoo": zoo, "starts": starts}
    for part in filter(None, args.parts.split(",")):
        # the champion is the default one for replicas and starts: run zoo last to keep it
        parts[part](args, uri, work)
    print(f"done; {CHAMPION} now names the last model the zoo part promoted", flush=True)


if __name__ == "__main__":
    main()
