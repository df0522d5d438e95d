"""The one jinja environment of every report: templates are files in ``reporting/templates``
(shipped as package data), all reports share ``report.css`` and ``reporting.filters``."""

from __future__ import annotations

import functools
from typing import Any

import jinja2

from reporting.filters import FILTERS


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reporting", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def render(template: str, **context: Any) -> str:
    """``templates/<template>`` rendered with ``context``: one self-contained HTML page."""
    return environment().get_template(template).render(**context)
