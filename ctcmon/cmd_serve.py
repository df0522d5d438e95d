"""``ctcmon serve`` (the HTTP API) and ``ctcmon keys`` (its API keys)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
import signal
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ctcmon.console import JsonOpt, TrackingOpt, emit_json, fail, guarded, out

DEMO_DB = Path("ctcmon-demo") / "mlflow.db"
DEMO_STORE = Path("ctcmon-demo") / "ctcmon.db"


def _settings(**overrides: Any) -> Any:
    """The service's settings (CTCMON_* / .env), failing with one line when they are unsafe."""
    from pydantic import ValidationError

    from serving.settings import Settings
    from serving.store import EX_CONFIG

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid settings: {reasons}", EX_CONFIG)


def _tracking_uri(given: str | None) -> str | None:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else ./mlflow.db, else the demo's store."""
    if given or os.environ.get("MLFLOW_TRACKING_URI") or Path("mlflow.db").exists():
        return given
    if DEMO_DB.exists():
        out.print(f"using the MLflow store of `ctcmon demo`: {DEMO_DB}")
        return f"sqlite:///{DEMO_DB.resolve().as_posix()}"
    return None


def _database_url() -> str | None:
    """None (the settings decide) unless nothing names a store, there is no ./ctcmon.db and
    `ctcmon demo` left one: then the demo's, so `ctcmon serve` after the demo just works."""
    named = "CTCMON_DATABASE_URL" in os.environ or Path(".env").exists()
    if named or Path("ctcmon.db").exists() or not DEMO_STORE.exists():
        return None
    out.print(f"using the service store of `ctcmon demo`: {DEMO_STORE}")
    return f"sqlite:///{DEMO_STORE.resolve().as_posix()}"


def _store(settings: Any) -> Any:
    """The migrated store; a store that cannot be used as configured exits 78 (EX_CONFIG)
    with one line saying what to fix."""
    store, _ = _migrated(settings)
    return store


def _migrated(settings: Any) -> tuple[Any, tuple[str | None, str | None]]:
    from serving.store import EX_CONFIG, Store, StoreConfigError

    try:
        store = Store(settings.database_url, synchronous=settings.sqlite_synchronous)
        return store, store.migrate()
    except StoreConfigError as exc:
        fail(str(exc), EX_CONFIG)


UVICORN: dict[str, Any] = {
    "access_log": False,  # its lines carry patient ids in paths; serving.access logs routes
    "timeout_graceful_shutdown": 10,
}


def serve_workers(host: str, port: int, workers: int) -> None:
    """``workers`` processes, each with its own listening socket on one port (SO_REUSEPORT).

    uvicorn's own ``--workers`` shares one socket, and keep-alive clients stay on whichever
    worker accepted them first: under load one worker took most connections. With a socket
    each, the kernel spreads new connections over the workers. SIGINT/SIGTERM stop all.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("--workers > 1 needs SO_REUSEPORT (Linux, macOS); run one worker")
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited threads
    procs = [ctx.Process(target=_worker, args=(host, port), daemon=False) for _ in range(workers)]
    for p in procs:
        p.start()

    def stop(signum: int, frame: Any) -> None:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # a worker that dies (its port taken, the store unreachable) takes the others down with
    # it: half a service that looks up is worse than a clear failure
    while all(p.is_alive() for p in procs):
        procs[0].join(timeout=0.5)
    stop(signal.SIGTERM, None)
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode not in (0, -signal.SIGTERM)]
    if failed:
        raise ValueError(f"{len(failed)} worker(s) exited with codes {failed}; see the log above")


def _worker(host: str, port: int) -> None:
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are
    # TCP, and without it a keep-alive response waits ~40 ms on the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sys.stderr.write(f"error: cannot listen on {host}:{port}: {exc.strerror}\n")
        sys.exit(2)
    logging.getLogger("serving").setLevel(logging.INFO)
    config = uvicorn.Config("serving.app:create_app", factory=True, **UVICORN)
    uvicorn.Server(config).run(sockets=[sock])


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``keys`` group to the ctcmon command line."""
    keys = typer.Typer(help="API keys of the HTTP service.", no_args_is_help=True)
    app.add_typer(keys, name="keys")
    db = typer.Typer(help="The service's store (CTCMON_DATABASE_URL).", no_args_is_help=True)
    app.add_typer(db, name="db")

    @db.command("upgrade")
    def upgrade(as_json: JsonOpt = False) -> None:
        """Create or migrate the store's schema to the newest revision (Alembic).

        Safe to run from several replicas at once: on PostgreSQL they queue on an advisory
        lock and the later ones find the schema current. ``serve`` runs the same upgrade.
        """
        settings = _settings()
        store, (before, after) = _migrated(settings)
        store.dispose()
        where = _safe_url(settings.database_url)
        if as_json:
            emit_json({"ok": True, "store": where, "from": before, "to": after})
            return
        change = "already current" if before == after else f"migrated from {before or 'empty'}"
        out.print(f"store {where}: schema at revision {after} ({change})")

    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
        model: Annotated[
            str | None,
            typer.Option(help="Model URI (default: CTCMON_MODEL_URI, else the champion)."),
        ] = None,
        tracking_uri: TrackingOpt = None,
        workers: Annotated[
            int,
            typer.Option(
                min=1,
                help="Worker processes, one per core; the kernel spreads connections over them.",
            ),
        ] = 1,
    ) -> None:
        """Start the HTTP API (OpenAPI at /docs); the model is loaded once at start-up."""
        import uvicorn

        from serving.app import create_app
        from serving.model import ModelHolder

        settings = _settings(
            model_uri=model, tracking_uri=_tracking_uri(tracking_uri), database_url=_database_url()
        )

        def load() -> Any:
            _store(settings).dispose()
            holder = ModelHolder(settings.model_uri, settings.tracking_uri)
            try:
                holder.refresh()
            except Exception as exc:
                raise ValueError(
                    f"cannot load model {settings.model_uri} from {holder.tracking_uri}: "
                    f"{type(exc).__name__}: {exc}. Train and register one first "
                    "(`ctcmon demo`, or `ctcmon train COHORT --register`)"
                ) from None
            return holder

        holder = guarded(False, load)
        live = holder.current
        out.print(
            f"serving {live.name} version {live.version} ({live.pipeline.model_name}) "
            f"on http://{host}:{port} — API docs at /docs; store {_safe_url(settings.database_url)}"
        )
        logging.getLogger("serving").setLevel(logging.INFO)
        if workers > 1:
            for name, value in (
                ("CTCMON_MODEL_URI", settings.model_uri),
                ("CTCMON_DATABASE_URL", settings.database_url),
                ("CTCMON_TRACKING_URI", holder.tracking_uri),
                # one signing secret for all workers: a session started on one is valid on all
                ("CTCMON_SESSION_SECRET", settings.session_secret or secrets.token_urlsafe(32)),
            ):
                os.environ[name] = value
            guarded(False, lambda: serve_workers(host, port, workers))
            return
        uvicorn.run(create_app(settings, holder=holder), host=host, port=port, **UVICORN)

    @keys.command("create")
    def create(
        role: Annotated[str, typer.Option(help="clinician, researcher or admin.")],
        site: Annotated[str, typer.Option(help="The site whose patients the key sees.")],
        label: Annotated[str | None, typer.Option(help="Who or what the key is for.")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Create an API key and print it once (only its hash is stored)."""
        from serving.auth import create_key

        settings = _settings()
        key_id, token = guarded(as_json, lambda: create_key(_store(settings), role, site, label))
        if as_json:
            emit_json({"ok": True, "key_id": key_id, "key": token, "role": role, "site": site})
            return
        out.print(f"created {role} key {key_id} for site {site!r}; it is shown only this once:")
        out.print(token, markup=False)

    @keys.command("list")
    def list_(as_json: JsonOpt = False) -> None:
        """List API keys (ids, roles, sites; never the keys themselves)."""
        from serving.auth import list_keys

        settings = _settings()
        rows = [
            {
                "key_id": k.id,
                "role": k.role,
                "site": k.site_id,
                "label": k.label,
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in guarded(as_json, lambda: list_keys(_store(settings)))
        ]
        if as_json:
            emit_json({"ok": True, "keys": rows})
            return
        for r in rows:
            state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
            out.print(f"{r['key_id']}  {r['role']:<10}  {r['site']}  {state}  {r['label'] or ''}")
        out.print(f"{len(rows)} key(s)")

    @keys.command("revoke")
    def revoke(
        key_id: Annotated[str, typer.Argument(help="The key's id (key_...), not the key.")],
        as_json: JsonOpt = False,
    ) -> None:
        """Revoke an API key: it is refused from the next request on."""
        from serving.auth import revoke_key

        settings = _settings()
        key = guarded(as_json, lambda: revoke_key(_store(settings), key_id))
        if as_json:
            emit_json({"ok": True, "key_id": key.id, "revoked_at": str(key.revoked_at)})
            return
        out.print(f"revoked {key.id} ({key.role}, site {key.site_id!r})")


def _safe_url(url: str) -> str:
    from serving.store import safe_url

    return safe_url(url)
