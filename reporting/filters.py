"""How numbers read in every report (study, lead time, model) and in the CLI's summaries.

One definition per format; the jinja environment (``reporting.environment``) registers each
as a filter of the same name. A missing value (None or NaN) reads as an em dash, or as
nothing for an interval.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

DASH = "—"


def _bad(x: Any) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def num(x: Any, digits: int = 3) -> str:
    """``0.848``; a dash for a missing value."""
    return DASH if _bad(x) else f"{float(x):.{digits}f}"


def pct(x: Any, digits: int = 1) -> str:
    """A proportion as ``84.8%``."""
    return DASH if _bad(x) else f"{100 * float(x):.{digits}f}%"


def days(x: Any) -> str:
    return DASH if _bad(x) else f"{float(x):g}"


def count(x: Any) -> str:
    return DASH if _bad(x) else f"{float(x):,.0f}"


def ci(low: Any, high: Any, digits: int = 3) -> str:
    """``(0.828–0.864)``, or nothing when either limit is missing."""
    return "" if _bad(low) or _bad(high) else f"({float(low):.{digits}f}–{float(high):.{digits}f})"


def ci_pct(interval: Sequence[Any] | None) -> str:
    """A ``[low, high]`` interval of a proportion as ``(80.1–88.0)`` (percent)."""
    if not interval or _bad(interval[0]) or _bad(interval[1]):
        return ""
    return f"({100 * float(interval[0]):.1f}–{100 * float(interval[1]):.1f})"


def ci_num(interval: Sequence[Any] | None, digits: int = 0) -> str:
    """A ``[low, high]`` interval as ``(-12 to 30)`` ("to": either limit may be negative)."""
    if not interval or _bad(interval[0]) or _bad(interval[1]):
        return ""
    return f"({float(interval[0]):.{digits}f} to {float(interval[1]):.{digits}f})"


def spread(s: Mapping[str, Any] | None) -> str:
    """``median (IQR q1–q3; range min–max)`` of a lead-time spread, in days."""
    if not s or s.get("median") is None:
        return DASH
    return (
        f"{s['median']:.0f} (IQR {s['q1']:.0f}–{s['q3']:.0f}; range {s['min']:.0f}–{s['max']:.0f})"
    )


def median_iqr(s: Mapping[str, Any] | None, interval: Sequence[Any]) -> str:
    """``median (q1–q3) [ci low–ci high]`` of a lead-time spread, or a dash."""
    if not s or s.get("median") is None:
        return DASH
    low, high = num(interval[0], 0), num(interval[1], 0)
    return f"{s['median']:.0f} ({s['q1']:.0f}–{s['q3']:.0f}) [{low}–{high}]"


def hazard_ratio(h: Mapping[str, Any]) -> str:
    """``2.31 (1.80–2.96), p < 0.001``."""
    if h.get("hr") is None:
        return DASH
    return f"{h['hr']:.2f} ({h['ci'][0]:.2f}–{h['ci'][1]:.2f}), p {_p(h['p'])}"


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def ticks(text: Any) -> Markup:
    """Escaped text with `backticked` spans as ``<code>`` (limitations and notes use them)."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


FILTERS: dict[str, Any] = {
    "num": num,
    "pct": pct,
    "days": days,
    "count": count,
    "ci": ci,
    "ci_pct": ci_pct,
    "ci_num": ci_num,
    "spread": spread,
    "median_iqr": median_iqr,
    "hr": hazard_ratio,
    "ticks": ticks,
}
