"""Searchable draw histories: the vectorised core shared by every time-varying feature.

Each marker's draws are sorted once by (patient, day). A query point (patient, day s) is
then answered with three ``np.searchsorted`` calls on one packed int64 key, never a loop
over patients: the patient's first draw, its first post-index draw (day ≥ 0), and the last
draw dated ≤ s. Every feature at s is gathered from rows up to that last index, which is
what makes look-ahead impossible by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cohort.vocabulary import DAY, MARKER, PATIENT_ID, QUALIFIER, VALUE


@dataclass(frozen=True)
class DayCoder:
    """Exact integer ranks of float days, so a (patient, day) pair packs into one int64.

    Packing ``patient * width + day`` as floats would round for fractional days on large
    cohorts; ranks over the sorted distinct days keep every comparison exact.
    """

    days: np.ndarray  # sorted distinct days, always including 0.0

    @classmethod
    def of(cls, *arrays: np.ndarray) -> DayCoder:
        """A coder for every day in ``arrays`` (and day 0, the index date)."""
        return cls(np.unique(np.concatenate([*map(np.asarray, arrays), [0.0]])))

    @property
    def width(self) -> int:
        return len(self.days) + 1

    def keys(self, codes: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Packed keys; every day must be one the coder was built from."""
        ranks = np.searchsorted(self.days, days)
        return codes.astype(np.int64) * self.width + ranks

    def zero_rank(self) -> int:
        return int(np.searchsorted(self.days, 0.0))


@dataclass(frozen=True)
class Located:
    """Row indices into a Timeline, one per query point."""

    start: np.ndarray  # the patient's first draw
    first_post: np.ndarray  # the patient's first draw with day >= 0
    last: np.ndarray  # the last draw dated <= s (start - 1 when there is none)

    @property
    def n(self) -> np.ndarray:
        """Draws dated <= s (pre-operative ones included)."""
        return self.last - self.start + 1

    @property
    def has(self) -> np.ndarray:
        return self.last >= self.start

    @property
    def has_post(self) -> np.ndarray:
        """A post-index draw dated <= s exists (first_post then lies in the patient's rows)."""
        return self.first_post <= self.last

    @property
    def has_pre(self) -> np.ndarray:
        """A pre-operative draw exists; query days are >= 0, so it is always dated <= s."""
        return self.first_post > self.start


@dataclass(frozen=True)
class Timeline:
    """One marker's draws sorted by (patient code, day); ties keep their input order."""

    codes: np.ndarray
    keys: np.ndarray
    day: np.ndarray
    value: np.ndarray
    below_limit: np.ndarray  # qualifier '<': the true value is under the stored limit

    @classmethod
    def build(
        cls,
        coder: DayCoder,
        codes: np.ndarray,
        day: np.ndarray,
        value: np.ndarray,
        below_limit: np.ndarray,
    ) -> Timeline:
        keys = coder.keys(codes, day)
        order = np.argsort(keys, kind="stable")
        return cls(codes[order], keys[order], day[order], value[order], below_limit[order])

    def __len__(self) -> int:
        return len(self.keys)

    def locate(self, coder: DayCoder, codes: np.ndarray, days: np.ndarray) -> Located:
        """Where each query point's history sits; ``days`` must be >= 0."""
        # start and first_post depend on the patient only: search once per patient
        base = np.arange(int(codes.max()) + 1 if len(codes) else 0, dtype=np.int64) * coder.width
        return Located(
            start=np.searchsorted(self.keys, base, side="left")[codes],
            first_post=np.searchsorted(self.keys, base + coder.zero_rank(), side="left")[codes],
            last=np.searchsorted(self.keys, coder.keys(codes, days), side="right") - 1,
        )

    def row_starts(self) -> np.ndarray:
        """For every row, the index of its patient's first row."""
        return np.searchsorted(self.codes, self.codes, side="left")


def gather(
    values: np.ndarray, index: np.ndarray, ok: np.ndarray, fill: float = np.nan
) -> np.ndarray:
    """``values[index]`` where ``ok``, else ``fill``, as float (any shape of ``index``)."""
    if not len(values):
        return np.full(np.shape(index), fill, dtype=float)
    return np.where(ok, values[np.where(ok, index, 0)], fill).astype(float, copy=False)


def build_timelines(
    measurements: pd.DataFrame,
    patient_ids: pd.Index,
    markers: Sequence[str],
    query_days: np.ndarray,
) -> tuple[DayCoder, dict[str, Timeline]]:
    """One Timeline per marker over validated ``measurements``, coded by ``patient_ids``.

    Patient codes are positions in ``patient_ids``; rows of other patients or other
    markers are dropped. ``query_days`` are the days the timelines will be asked about.
    """
    arrays = measurement_arrays(measurements, patient_ids, markers)
    return timelines_from_arrays(
        codes=arrays["codes"],
        marker_codes=arrays["marker_codes"],
        day=arrays["day"],
        value=arrays["value"],
        below=arrays["below"],
        markers=markers,
        query_days=query_days,
    )


def measurement_arrays(
    measurements: pd.DataFrame, patient_ids: pd.Index, markers: Sequence[str]
) -> dict[str, np.ndarray]:
    """The arrays ``timelines_from_arrays`` reads: patient and marker codes (positions in
    ``patient_ids`` and ``markers``, -1 when absent), days, values, below-limit flags."""
    below = (
        measurements[QUALIFIER].isin(["<"]).to_numpy(dtype=bool)
        if QUALIFIER in measurements
        else np.zeros(len(measurements), dtype=bool)
    )
    return {
        "codes": positions(patient_ids, measurements[PATIENT_ID]),
        "marker_codes": positions(pd.Index(list(markers)), measurements[MARKER]),
        "day": measurements[DAY].to_numpy(dtype=float),
        "value": measurements[VALUE].to_numpy(dtype=float),
        "below": below,
    }


def timelines_from_arrays(
    *,
    codes: np.ndarray,
    marker_codes: np.ndarray,
    day: np.ndarray,
    value: np.ndarray,
    below: np.ndarray,
    markers: Sequence[str],
    query_days: np.ndarray,
    only: Sequence[str] | None = None,
) -> tuple[DayCoder, dict[str, Timeline]]:
    """``build_timelines`` on plain arrays: patient and marker codes (-1 = drop), days, values
    (``only``: build just these markers' timelines; the codes still follow ``markers``)."""
    coder = DayCoder.of(day, query_days)
    timelines = {}
    for j, marker in enumerate(markers):
        if only is not None and marker not in only:
            continue
        keep = (marker_codes == j) & (codes >= 0)
        timelines[marker] = Timeline.build(coder, codes[keep], day[keep], value[keep], below[keep])
    return coder, timelines


def positions(index: pd.Index, values: pd.Series | np.ndarray) -> np.ndarray:
    """Position of each value in ``index`` (-1 when absent)."""
    return np.asarray(index.get_indexer(pd.Index(values)))
