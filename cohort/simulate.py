"""Synthetic post-resection HCC cohorts in the data contract, with the latent truth.

``simulate_cohort(out_dir, n_patients, seed)`` writes ``cohort.toml``, ``patients.csv``,
``measurements.csv``, ``imaging.csv``, ``outcomes.csv``, ``treatments.csv`` (the index
resection) and ``truth.csv``. The same seed gives the same bytes.

The latent process (figures in SimulationParams, sources in shared/clinical-facts.md):

- Some patients leave surgery with residual disease (logistic in AFP > 400, size > 5 cm,
  multiple tumours, MVI and CTC shedding, tuned to ≈39% recurrence at 2 years); others may
  grow a de novo tumour later (a constant hazard after a lag: no plateau, ≈60% at 5 years).
- Burden, in units of the imaging threshold (a ≈1 cm lesion = 1), grows exponentially with a
  per-patient log-normal doubling time (median 86 days). It reaches 1 on ``visible_day``.
- Expected CTC per 7.5 mL = shedding × (background + ``ctc_at_visible`` × burden, levelling
  off at ``ctc_saturation``); counts are Poisson-lognormal. Before surgery the primary
  (size, MVI) sets the expected count; its CTCs are gone by the one-month draw. AFP (60% secretors) and PIVKA-II add secretion ∝ burden to a
  background; the resected primary's share clears with the marker's half-life (AFP 5 days).
  So markers cross their cut-offs before imaging can see the lesion.
- Scans (3-monthly for 2 years, then 6-monthly; jittered, sometimes late or missed) detect a
  lesion of burden ≥ 1 with a modality's sensitivity rising with diameter; smaller lesions and
  benign nodules are sometimes ``indeterminate``. The first ``recurrence`` finding is the
  recurrence date: interval-censored between the last negative scan and that scan.
- Surveillance stops there: no scan after the confirming one and no draw after its visit
  (the draw of that visit is kept). Draws and scans also stop at death or loss to follow-up.

The pre-operative draw (day ``preop_draw_day`` ± a week) is not in the manifest's ``[draws]``
schedule because schedules hold days ≥ 0. ``horizon_days`` is left unset: follow-up runs to
the data cut (4-11 years), and training picks its own horizons.

Files beyond the contract — ``truth.csv``, one row per patient:

- ``patient_id``, ``site_id``
- ``recurrence_kind``: ``none``, ``residual`` (disease left at resection) or ``de_novo``
- ``residual_disease``: 1 for residual disease at resection, else 0
- ``afp_secretor``, ``pivka_secretor``: 1 if the tumour (and its recurrence) secretes
- ``ctc_shedding``: the patient's CTC shedding factor (log-normal, median 1)
- ``doubling_time_days``: tumour volume doubling time
- ``onset_day``: day the recurrent tumour starts to grow (0 for residual disease)
- ``visible_day``: latent day the burden reaches the imaging threshold
- ``ctc_detectable_day``, ``afp_detectable_day``: latent day the tumour-derived part of the
  expected CTC count (AFP) reaches ``ctc_positive_at`` (``afp_upper_normal``); never before
  onset; empty if never (no disease, non-secretor, or too little shedding)
- ``marker_detectable_day``: the earlier of the two
- ``lead_time_days``: ``visible_day`` − ``marker_detectable_day``, the latent lead available
- ``recurrence_day_observed``: day of the imaging-confirmed recurrence (empty if none)
- ``death_day``: latent day of death (empty if none is drawn), even past censoring
- ``censor_day``: latent loss to follow-up or data cut; follow-up ends at the earlier of
  ``death_day`` and ``censor_day``
Empty cells are missing values; days are since the index date (resection).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from cohort._simulate_latent import RESIDUAL, Population, draw_population
from cohort._simulate_markers import MARKER_CODES, UNIT_CODES, MarkerRows, marker_rows
from cohort._simulate_observe import Draws, Visits, collect_draws, observe_visits
from cohort._simulate_params import SimulationParams
from cohort._simulate_tables import (
    cohort_tables,
    manifest_dict,
    marker_detectable_days,
    recurrence_risk,
    to_toml,
)
from cohort.manifest import ScheduleSpec, parse_manifest
from cohort.vocabulary import MANIFEST_FILE, TRUTH_FILE

__all__ = ["SimulationParams", "SimulationSummary", "simulate_cohort"]

log = logging.getLogger(__name__)

# First line of every manifest the simulator writes: how it recognises its own folders
MANIFEST_HEADER = "# Synthetic cohort written by cohort.simulate (ctcmon simulate)."


@dataclass(frozen=True)
class SimulationSummary:
    """What was written, and the headline figures to compare with the literature."""

    out_dir: Path
    n_patients: int
    seed: int
    n_measurement_rows: int
    n_draws: int
    n_imaging_rows: int
    n_recurrences: int
    n_deaths: int
    recurrence_2y_fraction: float  # Kaplan-Meier, death and loss to follow-up censor
    recurrence_5y_fraction: float
    residual_fraction: float  # truth
    median_lead_days: float  # truth: visible − marker detectable, observed recurrences
    ctc_preop_positive_fraction: float  # ≥ ctc_positive_at per 7.5 mL, pre-operative draws
    ctc_1m_positive_fraction: float  # the same at the one-month draw
    afp_secretor_fraction: float
    seconds: float

    def lines(self) -> list[str]:
        """A short human summary, one fact a line."""
        return [
            f"wrote {self.n_patients} patients to {self.out_dir} (seed {self.seed})",
            f"{self.n_draws} draws, {self.n_measurement_rows} measurement rows, "
            f"{self.n_imaging_rows} scans",
            f"{self.n_recurrences} imaging-confirmed recurrences, {self.n_deaths} deaths",
            f"recurrence at 2 / 5 years: {self.recurrence_2y_fraction:.1%} / "
            f"{self.recurrence_5y_fraction:.1%} (published ≈39% / 60%)",
            f"CTC ≥2 before / 1 month after resection: {self.ctc_preop_positive_fraction:.1%} / "
            f"{self.ctc_1m_positive_fraction:.1%} (published 41.5% / 28%)",
            f"median latent lead of markers over imaging: {self.median_lead_days:.0f} days",
        ]


def simulate_cohort(
    out_dir: Path, n_patients: int = 500, seed: int = 0, params: SimulationParams | None = None
) -> SimulationSummary:
    """Simulate ``n_patients`` and write the cohort to ``out_dir`` (replacing an earlier run).

    Raises ValueError for ``n_patients < 1``, a negative seed, or an ``out_dir`` that holds
    something other than a simulated cohort. Nothing is left half-written on failure.
    """
    out_dir = _check_args(out_dir, n_patients, seed, params)
    params = params or SimulationParams()
    started = time.perf_counter()
    files, stats = _simulate(n_patients, seed, params)
    _write_atomically(out_dir, files)
    summary = SimulationSummary(
        out_dir=out_dir,
        n_patients=n_patients,
        seed=seed,
        seconds=time.perf_counter() - started,
        **stats,
    )
    log.info("simulated cohort: %s", "; ".join(summary.lines()))
    return summary


def _check_args(out_dir: Path, n_patients: int, seed: int, params: SimulationParams | None) -> Path:
    for name, value in (("n_patients", n_patients), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{name} must be an integer, got {value!r}")
    if n_patients < 1:
        raise ValueError(f"n_patients must be >= 1, got {n_patients}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if params is not None and not isinstance(params, SimulationParams):
        raise TypeError(f"params must be a SimulationParams, got {type(params).__name__}")
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"out_dir {str(path)!r} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not _written_by_simulator(path):
        raise ValueError(
            f"out_dir {str(path)!r} is a non-empty folder not written by the simulator; "
            "refusing to overwrite it (choose a new or empty folder)"
        )
    return path


def _written_by_simulator(folder: Path) -> bool:
    manifest = folder / MANIFEST_FILE
    if not (manifest.is_file() and (folder / TRUTH_FILE).is_file()):
        return False
    with manifest.open(encoding="utf-8", errors="replace") as fh:
        return fh.readline().rstrip("\n") == MANIFEST_HEADER


def _simulate(
    n: int, seed: int, p: SimulationParams
) -> tuple[dict[str, pa.Table | str], dict[str, Any]]:
    """Every file's content (frames and the manifest text) and the summary's figures."""
    rng = np.random.Generator(np.random.PCG64(seed))
    manifest = parse_manifest(manifest_dict(p))  # a bad manifest fails before any work
    draw_schedule = manifest.draws or ScheduleSpec()
    pop = draw_population(rng, n, p)
    visits = observe_visits(rng, pop, manifest.imaging_schedule(), draw_schedule, p)
    draws = collect_draws(rng, pop, visits, p)
    rows = marker_rows(rng, pop, draws, p)
    files: dict[str, pa.Table | str] = dict(cohort_tables(pop, visits, draws, rows, p))
    header = f"{MANIFEST_HEADER}\n# n_patients = {n}, seed = {seed}; truth in {TRUTH_FILE}.\n"
    files[MANIFEST_FILE] = header + to_toml(manifest.to_toml_dict())
    return files, _stats(pop, visits, draws, rows, p)


def _stats(
    pop: Population, visits: Visits, draws: Draws, rows: MarkerRows, p: SimulationParams
) -> dict[str, Any]:
    observed = np.isfinite(visits.recurrence_day)
    time_ = np.fmin(visits.recurrence_day, pop.end_day)
    lead = pop.visible_day - marker_detectable_days(pop, p)["marker_detectable_day"]
    lead = lead[observed & np.isfinite(lead)]
    return {
        "n_measurement_rows": len(rows.draw),
        "n_draws": len(draws.patient),
        "n_imaging_rows": int(visits.scan.sum()),
        "n_recurrences": int(observed.sum()),
        "n_deaths": int((pop.death_day <= pop.censor_day).sum()),
        "recurrence_2y_fraction": recurrence_risk(time_, observed, 730.0),
        "recurrence_5y_fraction": recurrence_risk(time_, observed, 1826.0),
        "residual_fraction": float(np.mean(pop.kind == RESIDUAL)),
        "median_lead_days": float(np.median(lead)) if len(lead) else float("nan"),
        "ctc_preop_positive_fraction": _ctc_positive(visits, draws, rows, p, preop=True),
        "ctc_1m_positive_fraction": _ctc_positive(visits, draws, rows, p, preop=False),
        "afp_secretor_fraction": float(pop.afp_secretor.mean()),
    }


def _ctc_positive(
    visits: Visits, draws: Draws, rows: MarkerRows, p: SimulationParams, preop: bool
) -> float:
    """Share of pre-operative (or one-month) CTC totals at or above the cut-off, per 7.5 mL."""
    total = rows.marker == MARKER_CODES.index("ctc_total")
    visit = draws.visit[rows.draw]
    planned = np.concatenate([[p.preop_draw_day], visits.planned])[visit]
    pick = total & ((visit == 0) if preop else (planned == 30))
    per_7_5 = rows.value[pick] * np.where(rows.unit[pick] == UNIT_CODES.index("cells/5mL"), 1.5, 1)
    return float(np.mean(per_7_5 >= p.ctc_positive_at)) if pick.any() else float("nan")


def _write_atomically(out_dir: Path, files: dict[str, pa.Table | str]) -> None:
    """Write into a hidden sibling folder, then swap it in: a crash leaves no half cohort."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a cohort folder is an ordinary one
        for name, content in files.items():
            _write_file(tmp / name, content)
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        tmp.rename(out_dir)
        return
    old = out_dir.with_name(f"{tmp.name}.old")
    out_dir.rename(old)
    try:
        tmp.rename(out_dir)
    except BaseException:
        old.rename(out_dir)  # put the earlier cohort back
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write_file(path: Path, content: pa.Table | str) -> None:
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="\n")
        return
    # Arrow quotes every header name; values never hold a comma, so nothing needs quoting
    with path.open("wb") as fh:
        fh.write((",".join(content.column_names) + "\n").encode("utf-8"))
        options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
        pa_csv.write_csv(content, fh, options)
