"""API keys, roles and site scoping.

A key is ``ctc_`` + 43 random URL-safe characters (256 bits); the store keeps only its
SHA-256, so a leaked database leaks no usable key. Each key has one role and one site and
sees only that site's patients. Denied attempts are written to the audit log.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, select
from starlette.concurrency import run_in_threadpool

from serving.deps import StoreDep, on_store
from serving.errors import Forbidden
from serving.store import ApiKey, AuditEvent, Store, utcnow

Role = Literal["clinician", "researcher", "admin"]
ROLES: tuple[Role, ...] = ("clinician", "researcher", "admin")
TOKEN_PREFIX = "ctc_"
MAX_SITE_LENGTH = 128

bearer = HTTPBearer(auto_error=False, description="An API key from `ctcmon keys create`.")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id (never the token), role and site."""

    key_id: str
    role: str
    site_id: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(store: Store, role: str, site_id: str, label: str | None = None) -> tuple[str, str]:
    """A new key for ``role`` at ``site_id``; returns (key id, token). The token is not stored."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    site_id = site_id.strip()
    if not site_id or len(site_id) > MAX_SITE_LENGTH:
        raise ValueError(f"site must be 1–{MAX_SITE_LENGTH} characters, got {site_id!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key_id = "key_" + secrets.token_hex(8)
    with store.writing() as session:
        session.add(
            ApiKey(
                id=key_id,
                token_hash=token_hash(token),
                role=role,
                site_id=site_id,
                label=label,
                created_at=utcnow(),
            )
        )
    return key_id, token


def list_keys(store: Store) -> list[ApiKey]:
    with store.reading() as session:
        return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def revoke_key(store: Store, key_id: str) -> ApiKey:
    """Revoke a key by id (idempotent); ValueError when no such key exists. Refused at once
    by this process, within ``KEY_CACHE_SECONDS`` by every other (``authenticate``)."""
    with store.writing() as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise ValueError(f"no API key with id {key_id!r} (see `ctcmon keys list`)")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
    forget_keys()
    return key


# Keys found valid in the last KEY_CACHE_SECONDS, by store and token digest. Every API call
# looked its key up in the store: 6% of a worker's CPU under 16 connections (py-spy). A
# revocation is therefore seen at once by the process that made it (``revoke_key`` empties
# this) and within that time by every other worker and replica. Unknown or revoked keys are
# never kept: a new key works at once, and a wrong one is looked up every time.
KEY_CACHE_SECONDS = 1.0
KEY_CACHE_MAX = 10_000
_valid_keys: dict[tuple[str, str], tuple[float, Principal]] = {}


def forget_keys() -> None:
    """Empty this process's cache of valid keys."""
    _valid_keys.clear()


def _cached_key(store: Store, digest: str) -> Principal | None:
    entry = _valid_keys.get((store.url, digest))
    if entry is None or time.monotonic() >= entry[0]:
        return None
    return entry[1]


def _remember_key(store: Store, digest: str, principal: Principal) -> None:
    if len(_valid_keys) >= KEY_CACHE_MAX:  # a bound, not an LRU: refilled within a second
        _valid_keys.clear()
    _valid_keys[(store.url, digest)] = (time.monotonic() + KEY_CACHE_SECONDS, principal)


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(401, reason, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller's key from ``Authorization: Bearer <key>``; 401 when absent, unknown or revoked."""
    if credentials is None:
        raise _unauthorized("missing API key: send Authorization: Bearer <key>")
    token = credentials.credentials
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise _unauthorized("invalid API key")
    digest = token_hash(token)
    cached = _cached_key(store, digest)
    if cached is not None:
        return cached
    key = await on_store(store, lambda: _lookup(store, digest))
    if key is None or key.revoked_at is not None:
        raise _unauthorized("invalid or revoked API key")
    principal = Principal(key.id, key.role, key.site_id)
    _remember_key(store, digest, principal)
    return principal


# built once: SQLAlchemy caches its compiled SQL, and a Core query on a connection skips the
# ORM session (the lookup runs on every request)
KEY_BY_HASH = select(ApiKey.id, ApiKey.role, ApiKey.site_id, ApiKey.revoked_at).where(
    ApiKey.token_hash == bindparam("digest")
)


def _lookup(store: Store, digest: str) -> Any:
    with store.connect() as conn:
        return conn.execute(KEY_BY_HASH, {"digest": digest}).first()


KeyDep = Annotated[Principal, Depends(authenticate)]


def record_denial(store: Store, key: Principal, resource: str, patient_id: str | None) -> None:
    with store.writing() as session:
        session.add(
            AuditEvent(
                at=utcnow(),
                key_id=key.key_id,
                site_id=key.site_id,
                action="denied",
                resource=resource[:64],
                patient_id=patient_id,
            )
        )


def require_role(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting only keys with one of ``roles`` (403 otherwise, audited)."""

    async def check(key: KeyDep, store: StoreDep, request: Request) -> Principal:
        if key.role not in roles:
            route = request.scope.get("route")
            resource = getattr(route, "path", request.url.path)
            await run_in_threadpool(record_denial, store, key, f"{request.method} {resource}", None)
            raise Forbidden(
                f"a {key.role} key cannot do this; it needs the {' or '.join(roles)} role"
            )
        return key

    return check


ClinicianKey = Annotated[Principal, Depends(require_role("clinician"))]
ResearcherKey = Annotated[Principal, Depends(require_role("researcher"))]
AdminKey = Annotated[Principal, Depends(require_role("admin"))]
