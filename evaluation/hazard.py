"""Hazard ratio of alarm status for recurrence (time-dependent Cox) and the landmark KM table.

Alarm status is time-varying: each patient's follow-up (0, end] is split at the days of
its evaluable points, and on (d_i, d_{i+1}] the status is the alarm state at d_i (last
state carried forward; no alarm before the first point). The event is the imaging-confirmed
recurrence; death and loss to follow-up censor (a cause-specific hazard ratio). A point on
the recurrence day itself opens no interval, so it never explains its own event.

The Kaplan–Meier comparison is a landmark analysis, which avoids immortal-time bias:
patients still under surveillance at ``landmark_day`` are grouped by whether they had an
alarm by then, and followed from the landmark.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Final

import numpy as np
import pandas as pd
from lifelines import CoxTimeVaryingFitter
from lifelines.exceptions import ConvergenceError

from alarms.metrics import surveillance_points
from alarms.series import ALARM, EVALUABLE, AlarmSeries
from alarms.surveillance import END_DAY, RECURRED
from cohort.vocabulary import DAY, EVENT, PATIENT_ID, START, STOP, TIME

log = logging.getLogger(__name__)

STATUS: Final = "alarm_status"
# lifelines' default Newton step (0.95) overshoots with one strong binary covariate and
# stops on NaN; a shorter step converges to the same estimate.
STEP_SIZE: Final = 0.3


def status_intervals(series: AlarmSeries, surv: pd.DataFrame) -> pd.DataFrame:
    """Counting-process rows ``patient_id, start, stop, event, alarm_status``."""
    followed = surv[surv[END_DAY] > 0].reset_index(drop=True)
    pts = surveillance_points(series, followed)
    pts = pts[pts[EVALUABLE] & (pts[DAY] < pts[END_DAY])]
    pts = pts.drop_duplicates([PATIENT_ID, DAY], keep="last")
    code = pd.Index(followed[PATIENT_ID]).get_indexer(pts[PATIENT_ID])
    n = len(followed)
    pcode = np.concatenate([np.arange(n), code])
    start = np.concatenate([np.zeros(n), pts[DAY].to_numpy(dtype=float)])
    status = np.concatenate([np.zeros(n, dtype=bool), pts[ALARM].to_numpy(dtype=bool)])
    order = np.lexsort((start, pcode))
    pcode, start, status = pcode[order], start[order], status[order]
    last = np.ones(len(pcode), dtype=bool)
    last[:-1] = pcode[1:] != pcode[:-1]
    stop = np.empty(len(pcode))
    stop[:-1] = start[1:]
    end = followed[END_DAY].to_numpy(dtype=float)
    stop[last] = end[pcode[last]]
    event = last & followed[RECURRED].to_numpy(dtype=bool)[pcode]
    return pd.DataFrame(
        {
            PATIENT_ID: followed[PATIENT_ID].to_numpy()[pcode],
            START: start,
            STOP: stop,
            EVENT: event.astype(int),
            STATUS: status.astype(int),
        }
    )


def alarm_hazard_ratio(series: AlarmSeries, surv: pd.DataFrame) -> dict[str, Any]:
    """HR (95% CI, Wald p) of current alarm status; NaN-free dict with a note when undefined."""
    rows = status_intervals(series, surv)
    base: dict[str, Any] = {"hr": None, "ci": [None, None], "p": None, "note": None}
    base["n_events"] = int(rows[EVENT].sum())
    if base["n_events"] == 0:
        return base | {"note": "no recurrence: hazard ratio undefined"}
    if rows[STATUS].nunique() < 2:
        return base | {"note": "alarm status never changes: hazard ratio undefined"}
    return base | _fit(rows)


def _fit(rows: pd.DataFrame) -> dict[str, Any]:
    fitter = CoxTimeVaryingFitter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fitter.fit(
                rows,
                id_col=PATIENT_ID,
                start_col=START,
                stop_col=STOP,
                event_col=EVENT,
                fit_options={"step_size": STEP_SIZE},
            )
        except (ConvergenceError, np.linalg.LinAlgError, ValueError) as exc:
            return {"note": f"Cox fit failed: {exc}"}
    s = fitter.summary.loc[STATUS]
    note = "; ".join(sorted({str(w.message).splitlines()[0] for w in caught})) or None
    if not np.isfinite(s[["exp(coef)", "exp(coef) lower 95%", "exp(coef) upper 95%"]]).all():
        return {"note": f"hazard ratio not estimable (separation?): {note}"}
    return {
        "hr": float(s["exp(coef)"]),
        "ci": [float(s["exp(coef) lower 95%"]), float(s["exp(coef) upper 95%"])],
        "p": float(s["p"]),
        "note": note,
    }


def landmark_groups(series: AlarmSeries, surv: pd.DataFrame, landmark_day: float) -> pd.DataFrame:
    """Patients under surveillance at the landmark: ``time`` since it, ``event``, ``alarmed``."""
    at_risk = surv[surv[END_DAY] > landmark_day]
    pts = surveillance_points(series, at_risk)
    by = pts[(pts[DAY] <= landmark_day) & pts[ALARM]][PATIENT_ID].unique()
    return pd.DataFrame(
        {
            PATIENT_ID: at_risk[PATIENT_ID].to_numpy(),
            TIME: at_risk[END_DAY].to_numpy(dtype=float) - landmark_day,
            EVENT: at_risk[RECURRED].to_numpy(dtype=int),
            "alarmed": at_risk[PATIENT_ID].isin(by).to_numpy(),
        }
    )
