"""What the surveillance scans read so far say, per query point (patient, day s).

A recurrence is confirmed by a scan; before that, the scans a patient has had are not
silent. A sub-centimetre lesion is often read as *indeterminate* (a benign nodule or a
perfusion defect rarely is), so an indeterminate reading raises the chance that the next
scans find a recurrence, and a recent negative scan lowers it for a while. The
Bayes-optimal risk of the simulated process conditions on every scan read up to s; a
model that sees only the blood draws cannot.

Post-index scans dated ≤ s only (a scan on day s included; pre-operative imaging describes
the resected tumour). A scan that confirmed a recurrence ends the patient's time at risk,
so at a point at risk every scan seen is negative or indeterminate.

- ``scan_days_since_last``: days from the last scan to s (NaN: no scan yet);
- ``scan_last_indeterminate``: 1 if that scan was read indeterminate, else 0 (NaN: none);
- ``scan_n_indeterminate``: indeterminate readings so far (0 without a scan);
- ``scan_days_since_indeterminate``: days from the last indeterminate reading to s (NaN:
  none yet).
"""

from __future__ import annotations

import numpy as np

from cohort.vocabulary import FINDING_RECURRENCE, FINDINGS

SCAN_STATS = (
    "scan_days_since_last",
    "scan_last_indeterminate",
    "scan_n_indeterminate",
    "scan_days_since_indeterminate",
)
INDETERMINATE = "indeterminate"


def indeterminate(finding: np.ndarray) -> np.ndarray:
    """Whether each reading is indeterminate; a finding outside the vocabulary is an error."""
    finding = np.asarray(finding, dtype=object)
    unknown = ~np.isin(finding, np.asarray(FINDINGS, dtype=object))
    if unknown.any():
        raise ValueError(
            f"imaging finding must be one of {FINDINGS}, got {sorted(set(finding[unknown]))[:5]}"
        )
    return np.asarray(finding == INDETERMINATE, dtype=bool)


def scan_statistics(
    codes: np.ndarray,
    day: np.ndarray,
    is_indeterminate: np.ndarray,
    rows: np.ndarray,
    days: np.ndarray,
) -> dict[str, np.ndarray]:
    """:data:`SCAN_STATS` at each point (patient code ``rows``, day ``days``).

    ``codes``, ``day``, ``is_indeterminate`` describe the scans (patient codes < 0 and
    pre-operative scans are dropped). Vectorised: scans sorted by (patient, day), each
    point finds its last scan by ``np.searchsorted``, exactly as for one patient alone.
    """
    codes = np.asarray(codes, dtype=np.int64)
    day = np.asarray(day, dtype=float)
    keep = (codes >= 0) & (day >= 0)
    codes, day = codes[keep], day[keep]
    ind = np.asarray(is_indeterminate, dtype=bool)[keep]
    order = np.lexsort((day, codes))
    codes, day, ind = codes[order], day[order], ind[order]
    rows = np.asarray(rows, dtype=np.int64)
    days = np.asarray(days, dtype=float)
    # lexicographic (patient, day) search: day + code * width with width above every day
    width = float(max(day.max(initial=0.0), days.max(initial=0.0))) + 2.0
    keys = codes * width + day
    start = np.searchsorted(keys, rows * width, side="left")
    last = np.searchsorted(keys, rows * width + days, side="right") - 1
    has = last >= start
    safe = np.where(has, last, 0)
    n = len(day)
    if not n:
        nan = np.full(len(days), np.nan)
        return {
            "scan_days_since_last": nan,
            "scan_last_indeterminate": nan.copy(),
            "scan_n_indeterminate": np.zeros(len(days)),
            "scan_days_since_indeterminate": nan.copy(),
        }
    count = np.concatenate([[0], np.cumsum(ind)])
    latest_ind = np.maximum.accumulate(np.where(ind, np.arange(n), -1))[safe]
    seen_ind = has & (latest_ind >= start)
    return {
        "scan_days_since_last": np.where(has, days - day[safe], np.nan),
        "scan_last_indeterminate": np.where(has, ind[safe].astype(float), np.nan),
        "scan_n_indeterminate": np.where(has, count[safe + 1] - count[start], 0).astype(float),
        "scan_days_since_indeterminate": np.where(
            seen_ind, days - day[np.where(seen_ind, latest_ind, 0)], np.nan
        ),
    }


def scans_as_arrays(
    codes: np.ndarray, day: np.ndarray, finding: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(patient code, day, indeterminate) of the scans; a scan that confirmed a recurrence
    is the outcome, not a predictor, and is left out."""
    finding = np.asarray(finding, dtype=object)
    keep = finding != FINDING_RECURRENCE
    return (
        np.asarray(codes, dtype=np.int64)[keep],
        np.asarray(day, dtype=float)[keep],
        indeterminate(finding[keep]),
    )
