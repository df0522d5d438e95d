"""Errors the service raises below the routes; ``app.py`` maps each to its HTTP status."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base: ``status`` is the HTTP status, the message is safe to show to the caller."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    status = 404


class Forbidden(ServiceError):
    status = 403


class Conflict(ServiceError):
    status = 409


class Unavailable(ServiceError):
    status = 503


class Invalid(ServiceError):
    """Bad input: ``problems`` is the full list of ``{"loc": [...], "msg": "..."}``."""

    status = 422

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the request")
        self.problems = problems
