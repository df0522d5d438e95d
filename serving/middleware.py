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


class TooLarge(Exception):
    pass


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
        state: dict[str, Any] = {"status": None, "seen": 0}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                if state["seen"] > self.max_body_bytes:
                    raise TooLarge()
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = list(message.get("headers", []))
                # a response that set its own caching (static code files) keeps it
                own = {k.lower() for k, _ in headers}
                message["headers"] = [*headers, *(h for h in SAFE_HEADERS if h[0] not in own)]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except TooLarge:
            if state["status"] is None:
                await _plain(send, 413, "request body too large")
            state["status"] = 413
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
