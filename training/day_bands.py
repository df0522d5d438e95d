"""The served risk's calibration per band of days since index, out of fold.

A risk of 0.5 on day 10 must mean what it means on day 600: the out-of-fold risk after every
draw is checked per band (first month, months 2–6, 7–12, year 2, later). The same bands are
the stack's (``training.stacking``): its weights are chosen per band.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from cohort.vocabulary import EVENT, EVENT_FULL, LANDMARK_DAY, PATIENT_ID, RESIDUAL_TIME_FULL, TIME
from training.calibration import (
    calibration_in_the_large,
    calibration_slope,
    smooth_calibration,
    smooth_calibration_errors,
)
from training.evaluate import OOF_RISK

log = logging.getLogger(__name__)


# Bands of days since index the served risk is checked in: a risk of 0.5 on day 10 must mean
# what it means on day 600 (the first weeks still see pre-operative marker levels decaying).
DAY_BANDS: tuple[tuple[str, float, float], ...] = (
    ("d0_30", 0.0, 30.0),
    ("d30_182", 30.0, 182.625),
    ("d182_365", 182.625, 365.25),
    ("d365_730", 365.25, 730.5),
    ("d730_plus", 730.5, np.inf),
)


def served_calibration(
    oof_draws: pd.DataFrame, endpoint: pd.DataFrame, horizon: float
) -> pd.DataFrame:
    """Calibration of the out-of-fold risk at every draw, per band of days since index.

    Rows are draws of patients still at risk; the outcome is the endpoint within ``horizon``
    of the draw (IPCW-free Kaplan–Meier per band, rows of one patient clustered in the slope).
    One row per band: n, mean predicted, observed (95% CI), their difference, slope (CI), ICI.
    """
    ep = endpoint.assign(**{PATIENT_ID: endpoint[PATIENT_ID].astype(str)}).set_index(PATIENT_ID)
    d = oof_draws.dropna(subset=[OOF_RISK]).copy()
    d[PATIENT_ID] = d[PATIENT_ID].astype(str)
    t = d[PATIENT_ID].map(ep[TIME]).to_numpy(dtype=float)
    e = d[PATIENT_ID].map(ep[EVENT]).to_numpy(dtype=float) > 0
    s = d[LANDMARK_DAY].to_numpy(dtype=float)
    d[RESIDUAL_TIME_FULL], d[EVENT_FULL] = t - s, e.astype(int)
    d = d[t > s]
    rows = []
    for band, lo, hi in DAY_BANDS:
        part = d[(d[LANDMARK_DAY] > lo) & (d[LANDMARK_DAY] <= hi)]
        row: dict[str, Any] = {"band": band, "n_rows": len(part)}
        row["n_patients"] = int(part[PATIENT_ID].nunique())
        if part[EVENT_FULL].sum() >= MIN_BAND_EVENTS:
            row.update(_band_figures(part, horizon))
        rows.append(row)
    return pd.DataFrame(rows)


MIN_BAND_EVENTS = 10  # fewer events in a band: its calibration is not estimated


def _band_figures(part: pd.DataFrame, horizon: float) -> dict[str, float]:
    large = calibration_in_the_large(part, OOF_RISK, horizon)
    out = {k: float(large[k]) for k in ("predicted", "observed", "observed_low", "observed_high")}
    out["difference"] = float(large["difference"])
    try:
        slope = calibration_slope(part, OOF_RISK, horizon)
        out.update(slope=slope[0], slope_low=slope[1], slope_high=slope[2])
        out["ici"] = smooth_calibration_errors(smooth_calibration(part, OOF_RISK, horizon))["ici"]
    except ValueError as exc:  # a band without spread in its risks
        log.info("calibration slope undefined in a band of days: %s", exc)
    return out


def served_calibration_metrics(table: pd.DataFrame) -> dict[str, float]:
    """``served_calibration`` flattened into MLflow metric keys ``calib_<band>_<figure>``."""
    out: dict[str, float] = {}
    for row in table.to_dict(orient="records"):
        for key, value in row.items():
            if key != "band" and isinstance(value, int | float) and np.isfinite(value):
                out[f"calib_{row['band']}_{key}"] = float(value)
    return out
