"""Static covariates as numeric columns: numeric/binary as float, categorical one-hot.

Shared by the landmark table and the counting-process table so a covariate is encoded the
same way everywhere. Categorical levels are learned once (``learn_levels``) and then fixed:
an unseen or missing level encodes as all zeros, never an error, so a model trained on one
centre can score another.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from cohort.vocabulary import COVARIATE_TYPES, INDEX_DATE, PATIENT_ID, SITE_ID, feature_name
from features._checks import first_of

_NOT_COVARIATES = (PATIENT_ID, SITE_ID, INDEX_DATE)


def check_covariate_types(covariates: Mapping[str, str]) -> dict[str, str]:
    """The mapping name → type, each type one of numeric|binary|categorical."""
    if not isinstance(covariates, Mapping):
        raise TypeError(f"covariates must be a dict name -> type, got {covariates!r}")
    bad = {k: v for k, v in covariates.items() if v not in COVARIATE_TYPES}
    if bad:
        raise ValueError(f"covariate types must be one of {COVARIATE_TYPES}, got {bad}")
    return dict(covariates)


def infer_covariate_types(patients: pd.DataFrame) -> dict[str, str]:
    """Every non-identifier column: numeric dtypes as numeric, the rest categorical."""
    return {
        col: "numeric" if pd.api.types.is_numeric_dtype(patients[col]) else "categorical"
        for col in patients.columns
        if col not in _NOT_COVARIATES and not pd.api.types.is_datetime64_any_dtype(patients[col])
    }


def check_covariate_columns(patients: pd.DataFrame, covariates: Mapping[str, str]) -> None:
    missing = [c for c in covariates if c not in patients.columns]
    if missing:
        raise ValueError(
            f"patients has no column for covariate(s) {missing}; columns are {list(patients.columns)}"
        )


# One column per level: an identifier declared categorical (a real cohort did this) grew a
# landmark table from 70 to ~3,900 columns and its build from 10 s to 101 s.
MAX_LEVELS = 50


def learn_levels(patients: pd.DataFrame, covariates: Mapping[str, str]) -> dict[str, list[str]]:
    """Sorted observed levels (as text) of each categorical covariate (at most ``MAX_LEVELS``)."""
    levels = {
        name: sorted(patients[name].dropna().astype(str).unique().tolist())
        for name, kind in covariates.items()
        if kind == "categorical"
    }
    for name, found in levels.items():
        _check_level_count(name, found)
    return levels


def _check_level_count(name: str, levels: list[str]) -> None:
    if len(levels) > MAX_LEVELS:
        raise ValueError(
            f"categorical covariate {name!r} has {len(levels)} levels (e.g. {levels[:3]}), "
            f"more than {MAX_LEVELS}: one feature column each. If it identifies patients or "
            "visits, remove it from the manifest's [covariates]; otherwise declare it numeric "
            "or group its levels into fewer categories"
        )


def covariate_names(covariates: Mapping[str, str], levels: Mapping[str, list[str]]) -> list[str]:
    """Output columns: the covariate itself, or ``<covariate>_<level>`` per level."""
    names: list[str] = []
    for name, kind in covariates.items():
        if kind == "categorical":
            names += [feature_name(name, level) for level in levels[name]]
        else:
            names.append(name)
    return names


def encode_covariates(
    patients: pd.DataFrame | Mapping[str, np.ndarray],
    covariates: Mapping[str, str],
    levels: Mapping[str, list[str]],
    rows: np.ndarray,
) -> dict[str, np.ndarray]:
    """Encoded columns for the patients at positions ``rows`` (one output row each).

    ``patients`` is a frame, or a mapping covariate -> array (the service's one patient:
    numbers as float, categories as str or None).
    """
    out: dict[str, np.ndarray] = {}
    for name, kind in covariates.items():
        if kind == "categorical":
            picked = level_codes(_as_text(patients[name]), levels[name])[rows]
            for j, level in enumerate(levels[name]):
                out[feature_name(name, level)] = (picked == j).astype(float)
        else:
            out[name] = _as_float(patients[name], name, kind)[rows]
    return out


def level_codes(values: np.ndarray, levels: list[str]) -> np.ndarray:
    """Position of each value among ``levels``; -1 for a missing or unseen level."""
    lookup = {level: j for j, level in enumerate(levels)}
    return np.fromiter(
        (lookup.get(v, -1) if isinstance(v, str) else -1 for v in values),
        dtype=np.int64,
        count=len(values),
    )


def _as_text(column: pd.Series | np.ndarray) -> np.ndarray:
    if isinstance(column, pd.Series):
        text = column.astype("string")
        return np.asarray([v if isinstance(v, str) else None for v in text], dtype=object)
    return np.asarray(column, dtype=object)


def _as_float(column: pd.Series | np.ndarray, name: str, kind: str) -> np.ndarray:
    if isinstance(column, np.ndarray) and column.dtype.kind == "f":
        return _check_binary(column, name, kind)
    try:
        values = pd.to_numeric(pd.Series(column), errors="raise").to_numpy(dtype=float)
    except (ValueError, TypeError) as exc:
        raise TypeError(
            f"covariate {name!r} is declared {kind} but holds non-numbers: {exc}"
        ) from exc
    return _check_binary(values, name, kind)


def _check_binary(values: np.ndarray, name: str, kind: str) -> np.ndarray:
    if kind == "binary":
        bad = ~np.isnan(values) & (values != 0) & (values != 1)
        if bad.any():
            raise ValueError(
                f"binary covariate {name!r} must be 0/1, got {first_of(values, bad)!r}"
            )
    return values
