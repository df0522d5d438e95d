"""The in-memory cohort: validated, unit-converted frames plus the manifest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import pandas as pd

from cohort.endpoints import derive_endpoint
from cohort.manifest import Manifest
from cohort.vocabulary import PATIENT_ID


@dataclass(frozen=True, eq=False)
class Cohort:
    """A cohort that passed the data contract.

    Frames (all ``patient_id`` are str; dates are ``datetime64[ns]``; each dated table also
    has float day columns since the patient's index date: ``day``, ``start_day``,
    ``last_followup_day``, ``recurrence_day``, ...):

    - ``patients``: patient_id, site_id, index_date, then the manifest's covariates
      (numeric/binary as float, categorical as str), sorted by patient_id.
    - ``measurements``: patient_id, date, day, marker, value (canonical unit), unit
      (canonical), qualifier ('<', '>' or NA), draw_id (NA if absent), original_value,
      original_unit; sorted by patient_id, day, marker.
    - ``imaging``: patient_id, date, day, modality, finding, response, criteria (may be empty).
    - ``outcomes``: patient_id and the four outcome dates with their ``*_day`` columns.
    - ``treatments``, ``adverse_events``: optional tables (empty with columns if absent).
    """

    manifest: Manifest
    patients: pd.DataFrame
    measurements: pd.DataFrame
    imaging: pd.DataFrame
    outcomes: pd.DataFrame
    treatments: pd.DataFrame
    adverse_events: pd.DataFrame
    source: Path | None = None
    has_imaging_file: bool = False
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def n_patients(self) -> int:
        return len(self.patients)

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the canonical content: same data, same digest, whatever the file format."""
        h = hashlib.sha256()
        h.update(self.manifest.model_dump_json().encode())
        for frame in (self.patients, self.measurements, self.imaging, self.outcomes):
            h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return h.hexdigest()

    def endpoint(
        self, endpoint: str | None = None, horizon_days: float | None = None
    ) -> pd.DataFrame:
        """Derived endpoint per patient (``patient_id``, ``time``, ``event``).

        Defaults to the manifest's endpoint and horizon.
        """
        return derive_endpoint(
            self.outcomes,
            endpoint or self.manifest.endpoint,
            horizon_days if horizon_days is not None else self.manifest.horizon_days,
        )

    def subset(self, patient_ids: Iterable[str]) -> Cohort:
        """The same cohort restricted to ``patient_ids`` (e.g. one CV fold)."""
        keep = set(map(str, patient_ids))

        def pick(df: pd.DataFrame) -> pd.DataFrame:
            return df[df[PATIENT_ID].isin(keep)].reset_index(drop=True)

        return replace(
            self,
            patients=pick(self.patients),
            measurements=pick(self.measurements),
            imaging=pick(self.imaging),
            outcomes=pick(self.outcomes),
            treatments=pick(self.treatments),
            adverse_events=pick(self.adverse_events),
            extra={k: pick(v) if PATIENT_ID in v else v for k, v in self.extra.items()},
        )
