"""The web app's one Jinja environment, its filters, and the HTML responses it makes."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# pages must never be framed (clickjacking) nor load anything from elsewhere; plotly sets
# inline styles on the elements it draws, hence 'unsafe-inline' for styles only
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
RECOMMENDATIONS = {
    "bring_imaging_forward": "Bring the next scan forward",
    "keep_schedule": "Keep the scan schedule",
}


def pct(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{float(value) * 100:.{digits}f}%"


def days(value: Any) -> str:
    if value is None:
        return "—"
    n = round(float(value))
    return f"{n} day" if n == 1 else f"{n} days"


def recommendation(value: Any) -> str:
    return RECOMMENDATIONS.get(str(value), "—" if value is None else str(value))


def value(v: Any) -> str:
    """A covariate as read: 61.0 → 61, 4.5 stays."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def feature(name: str) -> str:
    """``ctc_total_slope`` → ``ctc total slope``: drivers in words a clinician reads."""
    return (
        name.replace("pivka_ii", "PIVKA-II")
        .replace("afp", "AFP")
        .replace("ctc", "CTC")
        .replace("_", " ")
    )


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        pct=pct, days=days, recommendation=recommendation, feature=feature, value=value
    )
    return env


ENV = _env()


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Template ``name`` rendered with ``context`` as an HTML response."""
    html = ENV.get_template(name).render(today=date.today(), **context)
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": CSP})
