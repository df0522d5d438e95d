"""Landmark features: what is known about a patient at day s, one row per (patient, landmark).

A risk is served after every draw, so the features at landmark s use only measurements
dated ≤ s (a draw on day s included) and nothing from the outcomes. Everything is
vectorised: the per-marker histories are sorted once and every (patient, landmark) point
finds its last draw with ``np.searchsorted`` (see ``features._timeline``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from cohort.cohort import Cohort
from cohort.endpoints import derive_endpoint
from cohort.manifest import Manifest
from cohort.vocabulary import (
    DAY,
    EVENT,
    EVENT_FULL,
    FINDING,
    LANDMARK_DAY,
    MARKER,
    PATIENT_ID,
    RESIDUAL_TIME,
    RESIDUAL_TIME_FULL,
    TIME,
    feature_name,
)
from features._checks import (
    check_day,
    check_frame,
    check_horizon,
    check_landmarks,
    check_measurements,
    check_non_negative,
    numeric_column,
)
from features._timeline import (
    DayCoder,
    Timeline,
    measurement_arrays,
    positions,
    timelines_from_arrays,
)
from features.covariates import (
    check_covariate_columns,
    check_covariate_types,
    covariate_names,
    encode_covariates,
    infer_covariate_types,
    learn_levels,
)
from features.imaging import (
    SCAN_STATS,
    indeterminate,
    scan_statistics,
    scans_as_arrays,
)
from features.marker_stats import (
    BASE_STATS,
    POSITIVE_STATS,
    UPPER_NORMAL_STATS,
    Thresholds,
    marker_statistics,
    markers_as_points_statistics,
    stat_names,
)
from features.mixed import MIXED_STATS, MarkerLME, fit_lme, mixed_statistics, statistics_each

log = logging.getLogger(__name__)

# Untruncated targets for IPCW scoring (the censoring distribution needs the full follow-up).
# Candidates for cohort/vocabulary.py.

_THRESHOLD_KEYS = ("positive_at", "upper_normal")
_DAYS_PER_YEAR = 365.25
# Landmarks past the 90th percentile of follow-up leave too few patients at risk to fit
# or score a model, so default landmarks stop there.
_FOLLOW_UP_QUANTILE = 0.9
# A mixed model needs a between-patient spread to estimate: fewer patients, no model.
_MIN_MIXED_PATIENTS = 3


@dataclass(frozen=True)
class LandmarkInput:
    """The data a featuriser reads: patients, long-format measurements, and query points.

    - ``patients``: ``patient_id`` (unique) plus covariate columns;
    - ``measurements``: ``patient_id``, ``day``, ``marker``, ``value`` [, ``qualifier``];
    - ``points``: ``patient_id``, ``landmark_day`` — the (patient, landmark) pairs to featurise;
    - ``imaging`` (optional): ``patient_id``, ``day``, ``finding`` of the scans read.

    Frames are checked and copied on construction: later edits to the caller's frames
    change nothing here, and nothing here ever edits them.
    """

    patients: pd.DataFrame
    measurements: pd.DataFrame
    points: pd.DataFrame
    imaging: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        patients, measurements, points = _check_input_frames(
            self.patients, self.measurements, self.points
        )
        object.__setattr__(self, "patients", patients)
        object.__setattr__(self, "measurements", measurements)
        object.__setattr__(self, "points", points)
        if self.imaging is not None:
            scans = check_frame(self.imaging, "imaging", [PATIENT_ID, DAY, FINDING])
            scans = scans[[PATIENT_ID, DAY, FINDING]].copy()
            scans[DAY] = numeric_column(scans, DAY, "imaging")
            indeterminate(scans[FINDING].to_numpy(dtype=object))  # refuses unknown findings
            object.__setattr__(self, "imaging", scans)

    def scan_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scans as (patient position, day, indeterminate); empty without ``imaging``."""
        if self.imaging is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=bool)
        scans = self.imaging
        return scans_as_arrays(
            positions(_patient_index(self.patients), scans[PATIENT_ID]),
            scans[DAY].to_numpy(dtype=float),
            scans[FINDING].to_numpy(dtype=object),
        )

    @classmethod
    def from_cohort(cls, cohort: Cohort, points: pd.DataFrame | Iterable[float]) -> LandmarkInput:
        """Input over a cohort; ``points`` is a frame of pairs, or landmark days for everyone."""
        if not isinstance(points, pd.DataFrame):
            days = check_landmarks(points)
            ids = cohort.patients[PATIENT_ID].to_numpy()
            points = pd.DataFrame(
                {PATIENT_ID: np.repeat(ids, len(days)), LANDMARK_DAY: np.tile(days, len(ids))}
            )
        return cls(cohort.patients, cohort.measurements, points, cohort.imaging)

    def point_rows(self) -> np.ndarray:
        """Position in ``patients`` of each point's patient."""
        return positions(_patient_index(self.patients), self.points[PATIENT_ID])


def _patient_index(patients: pd.DataFrame) -> pd.Index:
    return pd.Index(patients[PATIENT_ID])


def _check_input_frames(
    patients: object, measurements: object, points: object
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    patients = check_frame(patients, "patients", [PATIENT_ID]).reset_index(drop=True)
    _check_unique_ids(patients)
    measurements = check_measurements(measurements)
    points = check_frame(points, "points", [PATIENT_ID, LANDMARK_DAY])
    days = numeric_column(points, LANDMARK_DAY, "points")
    check_non_negative(days, f"points column {LANDMARK_DAY!r}")
    points = pd.DataFrame({PATIENT_ID: points[PATIENT_ID].to_numpy(), LANDMARK_DAY: days})
    unknown = positions(_patient_index(patients), points[PATIENT_ID]) < 0
    if unknown.any():
        raise ValueError(
            f"points name patients absent from patients, e.g. "
            f"{points[PATIENT_ID][unknown].unique()[:5].tolist()}"
        )
    return patients.copy(), measurements, points


def _check_unique_ids(patients: pd.DataFrame) -> None:
    dup = patients[PATIENT_ID].duplicated()
    if dup.any():
        raise ValueError(
            f"patients must have one row per patient_id, got duplicates "
            f"{patients[PATIENT_ID][dup].unique()[:5].tolist()}"
        )


# auto_wrap_output_keys=None: transform already returns a labelled frame (with patient_id),
# which scikit-learn's set_output wrapper must not re-label.
class LandmarkFeatures(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):  # type: ignore[call-arg]
    """Landmark features of each (patient, landmark) point, as a scikit-learn transformer.

    Parameters
    ----------
    markers : dict marker -> {"positive_at": float|None, "upper_normal": float|None}, optional
        Markers to featurise, in output order, with their clinical cut-offs. None: every
        marker seen at fit, sorted, without cut-offs.
    covariates : dict name -> "numeric"|"binary"|"categorical", optional
        Static covariates. None: every non-identifier column of ``patients`` at fit
        (numeric dtypes numeric, the rest categorical).
    slope_draws : int, default 4
        Number of most recent draws the log-slope is fitted on (>= 2).
    include_landmark_day : bool, default True
        Whether ``landmark_day`` is itself a feature (it is always an output column).
    mixed : bool, default False
        Whether to add the mixed-model summaries of each marker (``features.mixed``: BLUP
        level and slope, deviation from the patient's own prediction, draws, below-limit).
        ``fit`` then fits one linear mixed model per marker on the post-index draws of the
        patients in ``X.points`` only (the training patients).
    imaging : bool, default True
        Whether to add the scans' statistics (``features.imaging``: days since the last scan,
        indeterminate readings) when ``X.imaging`` holds a post-index scan at fit.
    marker_stats : tuple of str, optional
        The per-marker statistics output (the ``<stat>`` of ``<marker>_<stat>``, e.g.
        ``("mm_level", "mm_slope")``: the mixed model's BLUPs alone, as two-stage landmarking
        feeds its Cox model). None: every statistic the marker has.

    Fitted attributes: ``markers_`` (marker -> Thresholds), ``covariates_``, ``levels_``
    (categorical covariate -> levels), ``mixed_`` (marker -> MarkerLME or None; empty
    unless ``mixed``), ``scans_`` (whether the scan statistics are features),
    ``feature_names_out_``.

    ``transform`` returns one row per point, in the points' order: ``patient_id``, then
    ``feature_names_out_`` (which starts with ``landmark_day`` unless excluded, in which
    case ``landmark_day`` still follows ``patient_id``). Features are NaN where undefined.
    The class puts the mixin first, as scikit-learn requires for its method resolution.
    """

    def __init__(
        self,
        *,
        markers: dict[str, dict[str, float | None]] | None = None,
        covariates: dict[str, str] | None = None,
        slope_draws: int = 4,
        include_landmark_day: bool = True,
        mixed: bool = False,
        imaging: bool = True,
        marker_stats: tuple[str, ...] | None = None,
    ) -> None:
        self.markers = markers
        self.covariates = covariates
        self.slope_draws = slope_draws
        self.include_landmark_day = include_landmark_day
        self.mixed = mixed
        self.imaging = imaging
        self.marker_stats = marker_stats

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle a featuriser packaged before the mixed-model or scan stage: without it."""
        defaults = {
            "mixed": False,
            "mixed_": {},
            "imaging": False,
            "scans_": False,
            "marker_stats": None,
        }
        super().__setstate__({**defaults, **state})

    @classmethod
    def from_manifest(cls, manifest: Manifest, **params: Any) -> LandmarkFeatures:
        """Markers (with their cut-offs) and covariates as the manifest declares them."""
        markers = {
            code: {"positive_at": spec.positive_at, "upper_normal": spec.upper_normal}
            for code, spec in manifest.markers.items()
        }
        return cls(markers=markers, covariates=dict(manifest.covariates), **params)

    def fit(self, X: LandmarkInput, y: object = None) -> LandmarkFeatures:
        """Learn the marker list, covariate levels, mixed models and the output columns."""
        X = _check_landmark_input(X)
        markers = self._check_params()
        self.markers_ = markers if markers is not None else _markers_seen(X.measurements)
        self.covariates_ = (
            check_covariate_types(self.covariates)
            if self.covariates is not None
            else infer_covariate_types(X.patients)
        )
        check_covariate_columns(X.patients, self.covariates_)
        self.levels_ = learn_levels(X.patients, self.covariates_)
        self.mixed_ = self._fit_mixed(X) if self.mixed else {}
        codes, scan_day, _ = X.scan_arrays()
        self.scans_ = bool(self.imaging) and bool(((codes >= 0) & (scan_day >= 0)).any())
        self.feature_names_out_ = self._feature_names()
        return self

    def _fit_mixed(self, X: LandmarkInput) -> dict[str, MarkerLME | None]:
        """One mixed model per marker on the post-index draws of the patients in the points.

        Only those patients enter the fit: in cross-validation the points are the training
        fold's, so a held-out patient's draws never shape the model that summarises them.
        """
        arrays = measurement_arrays(X.measurements, _patient_index(X.patients), list(self.markers_))
        fitted = np.zeros(len(X.patients), dtype=bool)
        fitted[X.point_rows()] = True
        codes = arrays["codes"]
        use = (codes >= 0) & (arrays["day"] >= 0) & np.isfinite(arrays["value"])
        use[use] = fitted[codes[use]]
        out: dict[str, MarkerLME | None] = {}
        for j, marker in enumerate(self.markers_):
            rows = use & (arrays["marker_codes"] == j)
            if len(np.unique(codes[rows])) < _MIN_MIXED_PATIENTS:
                log.warning("%s: too few patients with draws for a mixed model", marker)
                out[marker] = None
                continue
            out[marker] = fit_lme(codes[rows], arrays["day"][rows], arrays["value"][rows])
        return out

    def mixed_transform(self, X: LandmarkInput) -> pd.DataFrame:
        """Only the mixed-model columns of ``transform`` (e.g. refitted per CV fold)."""
        check_is_fitted(self, "feature_names_out_")
        X = _check_landmark_input(X)
        columns = self._input_columns(X, mixed_only=True)
        return pd.DataFrame({c: columns[c] for c in self.mixed_names()})

    def mixed_names(self) -> list[str]:
        """The mixed-model feature columns (empty without the stage)."""
        return [feature_name(m, s) for m in getattr(self, "mixed_", {}) for s in MIXED_STATS]

    def transform(self, X: LandmarkInput) -> pd.DataFrame:
        """One row per point: ``patient_id``, ``landmark_day``, then the features."""
        check_is_fitted(self, "feature_names_out_")
        X = _check_landmark_input(X)
        check_covariate_columns(X.patients, self.covariates_)
        columns = self._input_columns(X)
        columns[PATIENT_ID] = X.points[PATIENT_ID].to_numpy()
        order = [
            PATIENT_ID,
            LANDMARK_DAY,
            *(c for c in self.feature_names_out_ if c != LANDMARK_DAY),
        ]
        return pd.DataFrame({c: columns[c] for c in order})

    def _input_columns(self, X: LandmarkInput, mixed_only: bool = False) -> dict[str, Any]:
        arrays: dict[str, Any] = measurement_arrays(
            X.measurements, _patient_index(X.patients), list(self.markers_)
        )
        return self._columns(
            **arrays,
            patients=X.patients,
            rows=X.point_rows(),
            days=X.points[LANDMARK_DAY].to_numpy(dtype=float),
            mixed_only=mixed_only,
            scans=X.scan_arrays(),
        )

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """The numeric feature columns, in output order."""
        check_is_fitted(self, "feature_names_out_")
        return np.asarray(self.feature_names_out_, dtype=object)

    def features_at(
        self,
        *,
        day: np.ndarray,
        marker: np.ndarray,
        value: np.ndarray,
        below: np.ndarray,
        covariates: Mapping[str, float | str | None],
        landmark_day: float,
        scan_day: np.ndarray | None = None,
        scan_finding: np.ndarray | None = None,
    ) -> np.ndarray:
        """One patient's feature vector at one landmark, in ``feature_names_out_`` order.

        The same computation as ``transform`` on plain arrays (one patient's measurements:
        days, marker codes, canonical values, below-limit flags; covariates by name), for
        the service, where building frames would cost more than the features themselves.
        Inputs are trusted: they come from a validated history (``cohort.parsed``). Scans
        (days and findings, as in ``LandmarkInput.imaging``) matter only with ``scans_``.
        """
        check_is_fitted(self, "feature_names_out_")
        marker_codes = self._marker_codes(marker)
        day, value = np.asarray(day, dtype=float), np.asarray(value, dtype=float)
        below = np.asarray(below, dtype=bool)
        landmark_day = check_day(landmark_day, "landmark_day")
        columns = self._columns(
            codes=np.zeros(len(day), dtype=np.int64),
            marker_codes=marker_codes,
            day=day,
            value=value,
            below=below,
            patients={
                name: np.array(
                    [covariates.get(name)], dtype=float if kind != "categorical" else object
                )
                for name, kind in self.covariates_.items()
            },
            rows=np.zeros(1, dtype=np.int64),
            days=np.array([landmark_day]),
            scans=scans_as_arrays(
                np.zeros(0 if scan_day is None else len(scan_day), dtype=np.int64),
                np.zeros(0) if scan_day is None else scan_day,
                np.zeros(0, dtype=object) if scan_finding is None else scan_finding,
            ),
            summaries=False,
        )
        summaries = (*BASE_STATS, *POSITIVE_STATS, *UPPER_NORMAL_STATS)
        if self.marker_stats is None or set(summaries) & set(self.marker_stats):
            columns.update(self._summaries_at(marker_codes, day, value, below, landmark_day))
        return np.array([columns[c][0] for c in self.feature_names_out_], dtype=float)

    def mixed_at(
        self,
        fits: Mapping[str, MarkerLME | None],
        *,
        day: np.ndarray,
        marker: np.ndarray,
        value: np.ndarray,
        below: np.ndarray,
        landmark_day: float,
    ) -> dict[str, float]:
        """One patient's mixed-model columns at one landmark (as in ``features_at``) with
        other fits of the same markers (``mixed_`` of this featuriser refitted on a CV
        fold's training patients): name -> value."""
        each = self.mixed_at_each(
            [fits], day=day, marker=marker, value=value, below=below, landmark_day=landmark_day
        )
        return {name: each[0][name] for name in self.mixed_names()}

    def mixed_at_each(
        self,
        fits_list: Sequence[Mapping[str, MarkerLME | None]],
        *,
        day: np.ndarray,
        marker: np.ndarray,
        value: np.ndarray,
        below: np.ndarray,
        landmark_day: float,
        exact: bool = True,
    ) -> list[dict[str, float]]:
        """``mixed_at`` for several fits of the same markers (every CV fold's), the patient's
        draws sorted and located once. ``exact``: for each fits, the numbers of its own
        ``mixed_at`` call to the last bit (the same functions on the same arrays); else each
        marker's fits side by side (``statistics_each``: the same to ~1e-12, several times
        faster), for figures that are not a stated risk."""
        check_is_fitted(self, "feature_names_out_")
        days = np.array([check_day(landmark_day, "landmark_day")])
        rows = np.zeros(1, dtype=np.int64)
        needed = [m for m in self.markers_ if any(m in fits for fits in fits_list)]
        coder, timelines = timelines_from_arrays(
            codes=np.zeros(len(day), dtype=np.int64),
            marker_codes=self._marker_codes(marker),
            day=np.asarray(day, dtype=float),
            value=np.asarray(value, dtype=float),
            below=np.asarray(below, dtype=bool),
            markers=list(self.markers_),
            query_days=days,
            only=needed,
        )
        out: list[dict[str, float]] = [{} for _ in fits_list]
        for name in needed:
            tl = timelines[name]
            loc = tl.locate(coder, rows, days)
            lmes = [fits.get(name) for fits in fits_list]
            if not exact and all(lme is not None for lme in lmes):
                each = statistics_each(tl, loc, float(days[0]), lmes)  # type: ignore[arg-type]
                for f, columns in enumerate(out):
                    columns.update({feature_name(name, k): float(each[k][f]) for k in MIXED_STATS})
                continue
            for columns, fits in zip(out, fits_list, strict=True):
                if name in fits:
                    stats = mixed_statistics(tl, loc, days, fits[name])
                    columns.update({feature_name(name, k): float(stats[k][0]) for k in MIXED_STATS})
        return out

    def _marker_codes(self, marker: np.ndarray) -> np.ndarray:
        """Each value's marker as its position in ``markers_`` (−1: a marker not modelled)."""
        lookup = {code: j for j, code in enumerate(self.markers_)}
        return np.fromiter((lookup.get(m, -1) for m in marker), np.int64, len(marker))

    def _summaries_at(
        self,
        marker_codes: np.ndarray,
        day: np.ndarray,
        value: np.ndarray,
        below: np.ndarray,
        landmark_day: float,
    ) -> dict[str, np.ndarray]:
        """One patient's marker statistics at one landmark, every marker in one pass: the
        markers stand where a cohort call has patients (``markers_as_points_statistics``),
        so the values are a cohort call's to the last bit at a third of the calls."""
        keep = marker_codes >= 0
        points = np.arange(len(self.markers_), dtype=np.int64)
        days = np.full(len(points), landmark_day)
        coder = DayCoder.of(day, days[:1])
        tl = Timeline.build(coder, marker_codes[keep], day[keep], value[keep], below[keep])
        loc = tl.locate(coder, points, days)
        stats = markers_as_points_statistics(
            tl, loc, days, list(self.markers_.values()), self.slope_draws
        )
        return {
            feature_name(marker, s): stats[s][j : j + 1]
            for j, (marker, thresholds) in enumerate(self.markers_.items())
            for s in stat_names(thresholds)
        }

    def _columns(
        self,
        *,
        codes: np.ndarray,
        marker_codes: np.ndarray,
        day: np.ndarray,
        value: np.ndarray,
        below: np.ndarray,
        patients: pd.DataFrame | Mapping[str, np.ndarray],
        rows: np.ndarray,
        days: np.ndarray,
        mixed_only: bool = False,
        scans: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        summaries: bool = True,
    ) -> dict[str, Any]:
        """Every feature column for the points (patient ``rows``, landmark ``days``); with
        ``summaries=False`` all but the marker statistics (the caller computes them)."""
        fits = self.mixed_
        summaries = summaries and not mixed_only
        needed = [m for m in self.markers_ if summaries or m in fits]
        coder, timelines = timelines_from_arrays(
            codes=codes,
            marker_codes=marker_codes,
            day=day,
            value=value,
            below=below,
            markers=list(self.markers_),
            query_days=days,
            only=needed,
        )
        columns: dict[str, Any] = {LANDMARK_DAY: days}
        for marker in needed:
            tl = timelines[marker]
            loc = tl.locate(coder, rows, days)
            if marker in fits:
                stats = mixed_statistics(tl, loc, days, fits[marker])
                columns.update({feature_name(marker, s): stats[s] for s in MIXED_STATS})
            if not summaries:
                continue
            thresholds = self.markers_[marker]
            stats = marker_statistics(tl, loc, days, thresholds, self.slope_draws)
            columns.update({feature_name(marker, s): stats[s] for s in stat_names(thresholds)})
        if not mixed_only:
            if getattr(self, "scans_", False) and scans is not None:
                columns.update(scan_statistics(*scans, rows, days))
            columns.update(encode_covariates(patients, self.covariates_, self.levels_, rows))
        return columns

    def _feature_names(self) -> list[str]:
        names = [LANDMARK_DAY] if self.include_landmark_day else []
        keep = self.marker_stats
        for marker, thresholds in self.markers_.items():
            stats = [*stat_names(thresholds), *(MIXED_STATS if marker in self.mixed_ else ())]
            names += [feature_name(marker, s) for s in stats if keep is None or s in keep]
        names += list(SCAN_STATS) if self.scans_ else []
        names += covariate_names(self.covariates_, self.levels_)
        clash = sorted({n for n in names if names.count(n) > 1} | ({PATIENT_ID} & set(names)))
        if clash:
            raise ValueError(f"feature names collide: {clash}; rename the covariate or marker")
        return names

    def _check_params(self) -> dict[str, Thresholds] | None:
        if isinstance(self.slope_draws, bool) or not isinstance(self.slope_draws, int | np.integer):
            raise TypeError(f"slope_draws must be an int >= 2, got {self.slope_draws!r}")
        if self.slope_draws < 2:
            raise ValueError(f"slope_draws must be >= 2, got {self.slope_draws!r}")
        for name in ("mixed", "imaging"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.include_landmark_day, bool):
            raise TypeError(
                f"include_landmark_day must be True or False, got {self.include_landmark_day!r}"
            )
        _check_marker_stats(self.marker_stats, bool(self.mixed))
        return None if self.markers is None else _check_markers(self.markers)


def _check_landmark_input(X: object) -> LandmarkInput:
    if not isinstance(X, LandmarkInput):
        raise TypeError(
            f"X must be a LandmarkInput (see LandmarkInput.from_cohort), got {type(X).__name__}"
        )
    return X


def _check_marker_stats(marker_stats: object, mixed: bool) -> None:
    if marker_stats is None:
        return
    known = [*BASE_STATS, *POSITIVE_STATS, *UPPER_NORMAL_STATS, *(MIXED_STATS if mixed else ())]
    if isinstance(marker_stats, str) or not isinstance(marker_stats, Sequence) or not marker_stats:
        raise TypeError(f"marker_stats must be a non-empty tuple of str, got {marker_stats!r}")
    unknown = [s for s in marker_stats if s not in known]
    if unknown:
        raise ValueError(f"unknown marker statistic(s) {unknown}; choose from {known}")


def _check_markers(markers: object) -> dict[str, Thresholds]:
    if not isinstance(markers, Mapping) or not markers:
        raise ValueError(f"markers must be a non-empty dict marker -> cut-offs, got {markers!r}")
    return {str(code): _check_thresholds(code, spec) for code, spec in markers.items()}


def _check_thresholds(code: object, spec: object) -> Thresholds:
    spec = {} if spec is None else spec
    if not isinstance(spec, Mapping):
        raise ValueError(f"marker {code!r}: cut-offs must be a dict, got {spec!r}")
    unknown = sorted(set(spec) - set(_THRESHOLD_KEYS))
    if unknown:
        raise ValueError(f"marker {code!r}: unknown key(s) {unknown}; expected {_THRESHOLD_KEYS}")
    for key in _THRESHOLD_KEYS:
        value = spec.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, Real) or value < 0
        ):
            raise ValueError(f"marker {code!r}: {key} must be a number >= 0 or None, got {value!r}")
    return Thresholds(spec.get("positive_at"), spec.get("upper_normal"))


def _markers_seen(measurements: pd.DataFrame) -> dict[str, Thresholds]:
    return {str(m): Thresholds() for m in sorted(measurements[MARKER].astype(str).unique())}


def default_landmarks(cohort: Cohort, max_day: float | None = None) -> list[float]:
    """Landmark days: the manifest's draw schedule, else its imaging schedule, else yearly.

    Days >= 0 up to ``max_day`` (default: the 90th percentile of the endpoint's follow-up,
    past which too few patients remain at risk).
    """
    cap = _follow_up_cap(cohort) if max_day is None else check_day(max_day, "max_day")
    schedule = cohort.manifest.draws or cohort.manifest.imaging
    if schedule is not None:
        return [float(d) for d in schedule.days_until(cap) if d >= 0]
    return [float(_DAYS_PER_YEAR * k) for k in range(1, int(cap // _DAYS_PER_YEAR) + 1)]


def _follow_up_cap(cohort: Cohort) -> float:
    times = _endpoint_frame(cohort, None)[TIME].to_numpy(dtype=float)
    times = times[np.isfinite(times)]
    return float(np.quantile(times, _FOLLOW_UP_QUANTILE)) if len(times) else 0.0


def build_landmark_table(
    cohort: Cohort,
    landmarks: Iterable[float] | None = None,
    horizon_days: float | None = None,
    endpoint: str | pd.DataFrame | None = None,
    featurizer: LandmarkFeatures | None = None,
    points: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The stacked landmark table: one row per patient at risk at each landmark.

    At risk at s: the endpoint time T > s (event-free and still followed after s). Columns:
    ``patient_id``, ``landmark_day``, the features, then the targets ``residual_time`` =
    min(T − s, horizon) and ``event`` (the event falls in (s, s + horizon]), and the
    untruncated ``residual_time_full`` = T − s and ``event_full`` for IPCW scoring.

    ``horizon_days`` defaults to the manifest's, else no truncation. ``endpoint`` is a name
    (rfs|pfs|os, default the manifest's; the follow-up is NOT administratively censored at
    the manifest horizon here, the window from s does that) or a frame ``patient_id``,
    ``time``, ``event``. ``featurizer``: a fitted one is used as is, an unfitted one is
    cloned and fitted, None builds one from the manifest. ``points``: per-patient
    (``patient_id``, ``landmark_day``) pairs instead of one grid for everyone (e.g.
    ``draw_points``: each patient's own draw days); pairs not at risk are dropped.
    """
    horizon = check_horizon(cohort.manifest.horizon_days if horizon_days is None else horizon_days)
    if featurizer is not None and not isinstance(featurizer, LandmarkFeatures):
        raise TypeError(f"featurizer must be a LandmarkFeatures, got {type(featurizer).__name__}")
    ep = _endpoint_frame(cohort, endpoint)
    if points is None:
        days = check_landmarks(default_landmarks(cohort) if landmarks is None else landmarks)
        points = grid_points(cohort.patients[PATIENT_ID], days)
    points, targets = _at_risk(points, ep, horizon)
    X = LandmarkInput.from_cohort(cohort, points)
    table = _fitted(featurizer, X, cohort.manifest).transform(X)
    for name, values in targets.items():
        table[name] = values
    log.info("landmark table: %d rows", len(table))
    return table


def grid_points(patient_ids: pd.Series, days: np.ndarray) -> pd.DataFrame:
    """Every (patient, day) pair of one grid of days, patient-major."""
    n, k = len(patient_ids), len(days)
    return pd.DataFrame(
        {PATIENT_ID: np.repeat(patient_ids.to_numpy(), k), LANDMARK_DAY: np.tile(days, n)}
    )


def draw_points(cohort: Cohort) -> pd.DataFrame:
    """Each patient's own post-index draw days (a day with any declared marker measured).

    These are the moments the service scores: right after each blood draw, on whatever day
    it fell. Patient-major, days ascending; no outcome is read.
    """
    m = cohort.measurements
    m = m.loc[m[MARKER].isin(list(cohort.manifest.markers)), [PATIENT_ID, DAY]]
    m = m[m[DAY] > 0].drop_duplicates().sort_values([PATIENT_ID, DAY], kind="stable")
    return pd.DataFrame(
        {PATIENT_ID: m[PATIENT_ID].to_numpy(), LANDMARK_DAY: m[DAY].to_numpy(dtype=float)}
    )


def _endpoint_frame(cohort: Cohort, endpoint: str | pd.DataFrame | None) -> pd.DataFrame:
    if isinstance(endpoint, pd.DataFrame):
        frame = check_frame(endpoint, "endpoint", [PATIENT_ID, TIME, EVENT])
        return frame[[PATIENT_ID, TIME, EVENT]].copy()
    return derive_endpoint(cohort.outcomes, endpoint or cohort.manifest.endpoint, None)


def _at_risk(
    points: pd.DataFrame, ep: pd.DataFrame, horizon: float | None
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The (patient, landmark) pairs with T > s, in their order, and their targets."""
    points = check_frame(points, "points", [PATIENT_ID, LANDMARK_DAY])
    at = positions(pd.Index(ep[PATIENT_ID]), points[PATIENT_ID])
    t = np.where(at >= 0, ep[TIME].to_numpy(dtype=float)[at], np.nan)
    e = np.where(at >= 0, ep[EVENT].to_numpy(dtype=float)[at], 0.0) > 0
    s = points[LANDMARK_DAY].to_numpy(dtype=float)
    keep = t > s
    s, t, e = s[keep], t[keep], e[keep]
    full = t - s
    within = full <= horizon if horizon is not None else np.ones(len(full), dtype=bool)
    kept = pd.DataFrame({PATIENT_ID: points[PATIENT_ID].to_numpy()[keep], LANDMARK_DAY: s})
    targets = {
        RESIDUAL_TIME: np.minimum(full, horizon) if horizon is not None else full,
        EVENT: (e & within).astype(int),
        RESIDUAL_TIME_FULL: full,
        EVENT_FULL: e.astype(int),
    }
    return kept, targets


def _fitted(
    featurizer: LandmarkFeatures | None, X: LandmarkInput, manifest: Manifest
) -> LandmarkFeatures:
    if featurizer is None:
        return LandmarkFeatures.from_manifest(manifest).fit(X)
    try:
        check_is_fitted(featurizer, "feature_names_out_")
    except NotFittedError:
        return clone(featurizer).fit(X)
    return featurizer


__all__: Sequence[str] = (
    "EVENT_FULL",
    "RESIDUAL_TIME_FULL",
    "LandmarkFeatures",
    "LandmarkInput",
    "build_landmark_table",
    "default_landmarks",
    "draw_points",
    "grid_points",
)
