"""ASGI middleware: request size limit, safe headers, an access log without identifiers,
and a last-resort handler that answers 500 without a stack trace."""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("serving.access")
errors = logging.getLogger("serving.errors")

SAFE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),  # patient data must not sit in shared caches
    (b"referrer-policy", b"no-referrer"),
]


class Guard:
    """Limits request bodies to ``max_body_bytes`` (413), adds safe headers, logs each
    request by route template (``/v1/patients/{patient_id}``, never the id itself)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _plain(send, 413, "request body too large")
            return
        started = time.perf_counter()
        state: dict[str, Any] = {"status": None}
        if declared is None and scope["method"] in ("POST", "PUT", "PATCH"):
            # a chunked body (no length declared): read it here, up to the limit, so that
            # too much is a 413 before the app sees any of it
            messages = await _read_body(receive, self.max_body_bytes)
            if messages is None:
                await _plain(send, 413, "request body too large")
                return
            receive = _replay(messages, receive)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = list(message.get("headers", []))
                # a response that set its own caching (static code files) keeps it
                own = {k.lower() for k, _ in headers}
                message["headers"] = [*headers, *(h for h in SAFE_HEADERS if h[0] not in own)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:  # the last resort: never a stack trace in a response
            ref = uuid.uuid4().hex[:12]
            # the message may quote patient data; the log keeps the type and where it arose
            errors.error(
                "unhandled %s (ref %s)\n%s",
                type(exc).__name__,
                ref,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            if state["status"] is None:
                await _plain(send, 500, f"internal error (reference {ref})")
            state["status"] = 500
        route = scope.get("route")
        log.info(
            "%s %s %s %.1fms",
            scope["method"],
            getattr(route, "path", "<unmatched>"),
            state["status"],
            (time.perf_counter() - started) * 1000,
        )


async def _read_body(receive: Receive, limit: int) -> list[Message] | None:
    """The request's body messages, or None once they exceed ``limit`` bytes."""
    messages, seen = [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        seen += len(message.get("body", b""))
        if seen > limit:
            return None
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


async def _plain(send: Send, status: int, detail: str) -> None:
    body = ('{"detail":"' + detail + '"}').encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *SAFE_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
