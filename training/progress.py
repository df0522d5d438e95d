"""The progress callback every long job takes: ``progress(description, fraction)``.

The CLI passes a progress bar (``ctcmon.console.progress``); library callers pass nothing
and get ``quiet``. ``fraction`` is in [0, 1], or None when unknown.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, float | None], None]


def quiet(description: str, fraction: float | None = None) -> None:
    """Progress sink when nobody listens."""
    return None
