"""The figures of a training run: per model (AUC by landmark, calibration, decision curve)
and shared by every model of the run (Kaplan–Meier by marker status), rendered to PNG bytes
where they were drawn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cohort.cohort import Cohort
from cohort.vocabulary import CTC_TOTAL, LANDMARK_DAY, feature_name
from training.calibration import calibration_table, smooth_calibration
from training.evaluate import OOF_RISK, CVResult
from training.plots import (
    plot_auc_by_landmark,
    plot_calibration,
    plot_decision_curve,
    plot_km_by_group,
    png_bytes,
)


def rendered(figures: dict[str, Any]) -> dict[str, bytes]:
    """Figures as PNG bytes: rendered once, picklable, logged to any number of runs."""
    return {name: png_bytes(fig) for name, fig in figures.items()}


def model_figures(result: CVResult) -> dict[str, Any]:
    figs: dict[str, Any] = {}
    if not result.by_landmark.empty:
        figs["auc_by_landmark"] = plot_auc_by_landmark(
            {result.name: result.by_landmark}, horizon_days=result.horizon_days
        )
    smooth = result.calibration.pop("smooth", None)  # fitted for the ICI, unless it failed there
    try:
        grouped = calibration_table(result.oof, OOF_RISK, result.horizon_days)
        if smooth is None:
            smooth = smooth_calibration(result.oof, OOF_RISK, result.horizon_days)
        result.calibration["calibration_table"] = grouped
        figs["calibration"] = plot_calibration(grouped, smooth, horizon_days=result.horizon_days)
    except ValueError as exc:
        result.notes.append(f"calibration plot: {exc}")
    if not result.decision_curve.empty:
        figs["decision_curve"] = plot_decision_curve({result.name: result.decision_curve})
    return figs


def primary_marker(cohort: Cohort) -> tuple[str, float] | None:
    """The marker with a clinical cut-off to stratify by (CTC first), if any."""
    specs = cohort.manifest.markers
    ordered = [CTC_TOTAL, *sorted(m for m in specs if m != CTC_TOTAL)]
    for marker in ordered:
        if marker in specs and specs[marker].positive_at is not None:
            return marker, float(specs[marker].positive_at)  # type: ignore[arg-type]
    return None


def cohort_figures(table: pd.DataFrame, cohort: Cohort, horizon: float) -> dict[str, Any]:
    """Kaplan–Meier from the first landmark by marker status (e.g. CTC ≥ 2 vs < 2)."""
    found = primary_marker(cohort)
    if found is None:
        return {}
    marker, cut = found
    col = feature_name(marker, "last")
    first = table[table[LANDMARK_DAY] == table[LANDMARK_DAY].min()].copy()
    first = first[np.isfinite(first[col])]
    if first.empty or first[col].ge(cut).nunique() < 2:
        return {}
    status = f"{marker} ≥ {cut:g}"
    first[status] = np.where(first[col] >= cut, "positive", "negative")
    title = f"Recurrence-free by {marker} status at day {first[LANDMARK_DAY].iloc[0]:g}"
    return {"km_by_marker_status": plot_km_by_group(first, status, title=title)}
