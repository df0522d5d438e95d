"""Unit conversion to each marker's canonical unit.

A unit equal to the canonical unit is always accepted; any other unit needs a known
factor (built in below, or declared per marker in the manifest), else the row is refused.
"""

from __future__ import annotations

from typing import Final

# (from_unit, to_unit) -> multiplicative factor. The AFP IU factor depends on the assay
# (1.21 is the WHO-standard figure; one calibration gives 1.28), hence overridable per
# marker in cohort.toml: [markers.afp] conversions = {"IU/mL" = 1.28}.
KNOWN_CONVERSIONS: Final[dict[tuple[str, str], float]] = {
    ("cells/5mL", "cells/7.5mL"): 1.5,
    ("cells/7.5mL", "cells/5mL"): 1 / 1.5,
    ("IU/mL", "ng/mL"): 1.21,
    ("kIU/L", "ng/mL"): 1.21,
    ("ug/L", "ng/mL"): 1.0,
    ("µg/L", "ng/mL"): 1.0,
    ("ng/mL", "ug/L"): 1.0,
    ("mAU/mL", "AU/L"): 1.0,
    ("kU/L", "U/mL"): 1.0,
    ("U/mL", "kU/L"): 1.0,
    ("mg/dL", "umol/L"): 17.104,  # bilirubin
    ("umol/L", "mg/dL"): 1 / 17.104,
    ("g/L", "g/dL"): 0.1,
    ("g/dL", "g/L"): 10.0,
}


def conversion_factor(
    unit: str, canonical: str, overrides: dict[str, float] | None = None
) -> float | None:
    """Factor that turns a value in ``unit`` into ``canonical``, or None when none is known."""
    if unit == canonical:
        return 1.0
    if overrides and unit in overrides:
        return float(overrides[unit])
    return KNOWN_CONVERSIONS.get((unit, canonical))
