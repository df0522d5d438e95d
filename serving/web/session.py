"""Signing in to the web app: an API key exchanged for a signed session cookie, and CSRF.

The cookie holds the key's id (never the key) and a CSRF token, signed and timestamped with
itsdangerous; it expires after ``session_hours``. Every request looks the key up again, so
a revoked key ends its sessions at once. Forms carry the session's CSRF token, compared in
constant time; the sign-in form, before any session, uses a double-submit cookie.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import bindparam, select
from starlette.requests import Request
from starlette.responses import Response

from serving.auth import KEY_BY_HASH, TOKEN_PREFIX, Principal, token_hash
from serving.store import ApiKey, Store

COOKIE = "ctcmon_session"
PRE_COOKIE = "ctcmon_signin"  # the sign-in form's double-submit CSRF token
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
WEB_ROLE = "clinician"

KEY_BY_ID = select(ApiKey.id, ApiKey.role, ApiKey.site_id, ApiKey.revoked_at).where(
    ApiKey.id == bindparam("key_id")
)


class Signer:
    """Signs and reads session cookies with the app's secret (random per process if unset)."""

    def __init__(self, secret: str | None, hours: float) -> None:
        self.serializer = URLSafeTimedSerializer(
            secret or secrets.token_urlsafe(32), salt="ctcmon-web-session"
        )
        self.max_age = int(hours * 3600)

    def dump(self, key_id: str, csrf: str) -> str:
        return self.serializer.dumps({"k": key_id, "c": csrf})

    def load(self, cookie: str | None) -> dict[str, str] | None:
        """The session's fields, or None when absent, tampered with or expired."""
        if not cookie:
            return None
        try:
            data = self.serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # SignatureExpired is a BadSignature
            return None
        if not isinstance(data, dict) or not {"k", "c"} <= data.keys():
            return None
        return data


class Session:
    """A signed-in clinician: the key's principal and the session's CSRF token."""

    def __init__(self, principal: Principal, csrf: str) -> None:
        self.principal = principal
        self.csrf = csrf


def key_for_token(store: Store, token: str) -> Any:
    """The key row of an API key as typed at sign-in, or None."""
    token = token.strip()
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    with store.connect() as conn:
        return conn.execute(KEY_BY_HASH, {"digest": token_hash(token)}).first()


def current(store: Store, signer: Signer, request: Request) -> Session | None:
    """The request's session if its cookie is valid and its key still active, else None."""
    data = signer.load(request.cookies.get(COOKIE))
    if data is None:
        return None
    with store.connect() as conn:
        key = conn.execute(KEY_BY_ID, {"key_id": data["k"]}).first()
    if key is None or key.revoked_at is not None or key.role != WEB_ROLE:
        return None
    return Session(Principal(key.id, key.role, key.site_id), data["c"])


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def _secure(request: Request) -> bool:
    """Secure cookies except on localhost, where the service is reached over plain http."""
    return (request.url.hostname or "") not in LOCAL_HOSTS


def start(response: Response, request: Request, signer: Signer, key_id: str) -> None:
    response.set_cookie(
        COOKIE,
        signer.dump(key_id, secrets.token_urlsafe(24)),
        max_age=signer.max_age,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(PRE_COOKIE, path="/")


def end(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")


def pre_token(request: Request) -> str:
    """The sign-in form's CSRF token: the one in its cookie, or a new one."""
    return request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)


def set_pre(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        PRE_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )
