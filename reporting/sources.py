"""Data-source and predictor facts: the run's dataset input, the cohort files it points to
(read only when their digest still matches the run's), and the packaged manifest."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Final

import pandas as pd
from mlflow.entities import Run

from cohort.cohort import Cohort
from cohort.load import load_cohort
from cohort.summary import summarize
from cohort.vocabulary import INDEX_DATE, OUTCOME_DATES, feature_name
from features.marker_stats import Thresholds, stat_names
from models.pipeline import RiskPipeline
from tracking.vocabulary import Tag

log = logging.getLogger(__name__)

_SIMULATED_NAME: Final = re.compile(r"(^|[-_ .])(sim|simulated|synthetic)([-_ .]|$)", re.I)
TRUTH_FILE: Final = "truth.csv"  # written beside a cohort by ``ctcmon simulate`` only

# What each marker statistic (``<marker>_<stat>``) means, for the predictor table.
STAT_MEANING: Final = {
    "last": "last value up to the landmark",
    "log_last": "log(1 + last value)",
    "days_since_last": "days since the last draw",
    "n_draws": "number of draws so far",
    "log_slope": "least-squares slope of log(1 + value) over the last draws, per 30 days",
    "change_post": "log(1 + last value) − log(1 + first post-index value)",
    "max": "highest post-index value so far",
    "pre": "pre-operative value (last draw before time zero)",
    "rise_nadir": "log(1 + last value) − log(1 + lowest post-index value so far)",
    "days_since_nadir": "days since the lowest post-index value so far (how long it has risen)",
    "rise_baseline": "log(1 + last value) − mean log(1 + value) of the earlier post-index draws",
    "n_positive": "number of draws at or above the cut-off so far (below-limit values never count)",
    "consec_positive": "current run of consecutive positive draws",
    "normalised": "1 when the last value is within the upper limit of normal, else 0",
    "doubling_days": "doubling time between the last two draws, days (only while rising)",
    "log_velocity": "change in log(1 + value) between the last two draws, per 30 days",
}


def cohort_facts(run: Run, metrics: dict[str, float], pipeline: RiskPipeline) -> dict[str, Any]:
    """Cohort identity and counts from the run; dates and sites from its files when unchanged."""
    tags, params = run.data.tags, run.data.params
    dataset = dataset_input(run)
    source = dataset.get("source")
    facts: dict[str, Any] = {
        "name": tags.get(Tag.COHORT),
        "digest": tags.get(Tag.COHORT_DIGEST),
        "endpoint": tags.get(Tag.ENDPOINT) or pipeline.manifest.endpoint,
        "time_zero": pipeline.manifest.time_zero,
        "source": source,
        "dataset": dataset,
        "n_patients": metrics.get("n_patients"),
        "n_events": metrics.get("n_events"),
        "n_rows": metrics.get("n_rows", _number(params.get("n_landmark_rows"))),
        "landmarks": [float(x) for x in params.get("landmarks", "").split(",") if x],
    }
    facts.update(_from_files(source, facts["digest"]))
    facts["simulated"] = is_simulated(facts["name"], source)
    return facts


def dataset_input(run: Run) -> dict[str, Any]:
    """Name, digest, source and row count of the run's logged training dataset."""
    inputs = run.inputs.dataset_inputs if run.inputs else []
    if not inputs:
        return {}
    ds = inputs[0].dataset
    profile = _json(ds.profile)
    return {
        "name": ds.name,
        "digest": ds.digest,
        "source": _json(ds.source).get("uri"),
        "source_type": ds.source_type,
        "rows": profile.get("num_rows"),
    }


def is_simulated(name: str | None, source: str | None) -> bool:
    """The simulator's cohorts: a ``sim``/``synthetic`` name, or its ``truth.csv`` beside them."""
    if name and _SIMULATED_NAME.search(name):
        return True
    return bool(source) and (Path(str(source)) / TRUTH_FILE).is_file()


def _from_files(source: str | None, digest: str | None) -> dict[str, Any]:
    """Accrual dates, follow-up and sites, only from the very data the run was trained on."""
    if not source or not Path(source).is_dir():
        return {"files": "missing"}
    try:
        cohort = load_cohort(source)
    except (OSError, ValueError) as exc:
        log.info("cohort at %s not readable for the report: %s", source, exc)
        return {"files": "unreadable"}
    if digest and cohort.digest != digest:
        return {"files": "changed"}
    return {"files": "match", **_dates(cohort), **_summary(cohort)}


def _dates(cohort: Cohort) -> dict[str, Any]:
    index = cohort.patients[INDEX_DATE]
    outcome_dates = cohort.outcomes[[c for c in OUTCOME_DATES if c in cohort.outcomes]]
    last = pd.to_datetime(outcome_dates.stack(), errors="coerce").max()
    return {
        "accrual_start": _iso(index.min()),
        "accrual_end": _iso(index.max()),
        "last_date": _iso(last),
    }


def _summary(cohort: Cohort) -> dict[str, Any]:
    s = summarize(cohort)
    keep = ("sites", "draws", "draws_per_patient_median", "imaging_exams", "events")
    return {**{k: s[k] for k in keep}, "median_followup_days": s["median_followup_days"]}


def predictor_facts(pipeline: RiskPipeline) -> dict[str, Any]:
    """Features grouped by marker (unit, cut-offs) and covariate, and those the model uses."""
    names = [str(n) for n in pipeline.featurizer.get_feature_names_out()]
    used = getattr(pipeline.model, "columns_", None)
    used_set = set(names if used is None else used)
    markers = [
        _marker(code, spec.model_dump(), used_set)
        for code, spec in pipeline.manifest.markers.items()
    ]
    covariates = [
        _covariate(name, kind, names, used_set)
        for name, kind in pipeline.manifest.covariates.items()
    ]
    grouped = {f["name"] for m in markers for f in m["features"]}
    grouped |= {f for c in covariates for f in c["features"]}
    return {
        "n_features": len(names),
        "n_used": len(used_set),
        "markers": markers,
        "covariates": covariates,
        "other": [n for n in names if n not in grouped],
        "uses_markers": any(f["used"] for m in markers for f in m["features"]),
    }


def _marker(code: str, spec: dict[str, Any], used: set[str]) -> dict[str, Any]:
    stats = stat_names(Thresholds(spec.get("positive_at"), spec.get("upper_normal")))
    features = [
        {
            "name": feature_name(code, s),
            "stat": s,
            "meaning": STAT_MEANING.get(s, s),
            "used": feature_name(code, s) in used,
        }
        for s in stats
    ]
    keep = ("label", "unit", "positive_at", "upper_normal", "conversions", "loinc")
    return {"code": code, **{k: spec.get(k) for k in keep}, "features": features}


def _covariate(name: str, kind: str, names: list[str], used: set[str]) -> dict[str, Any]:
    cols = [n for n in names if n == name or (kind == "categorical" and n.startswith(f"{name}_"))]
    return {"name": name, "type": kind, "features": cols, "used": any(c in used for c in cols)}


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _iso(value: Any) -> str | None:
    stamp = pd.Timestamp(value) if value is not None else pd.NaT
    return None if pd.isna(stamp) else stamp.strftime("%Y-%m-%d")
