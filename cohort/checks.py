"""Cross-file rules of the data contract, as a checklist of named validators.

Each validator takes the parsed frames (cells that failed to parse are NaN/NaT and were
already reported by the per-file schemas, so they are skipped here) and returns problems.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from cohort.errors import Problem, row_patient
from cohort.manifest import Manifest
from cohort.rules import COUNT_RULE, is_count_unit, is_plausible_count
from cohort.units import KNOWN_CONVERSIONS, conversion_factor
from cohort.vocabulary import (
    ADVERSE_EVENTS_FILE,
    DATE,
    DEATH_DATE,
    DRAW_ID,
    END_DATE,
    IMAGING_FILE,
    INDEX_DATE,
    LAST_FOLLOWUP_DATE,
    MARKER,
    MEASUREMENTS_FILE,
    OUTCOMES_FILE,
    PATIENT_ID,
    PATIENTS_FILE,
    PROGRESSION_DATE,
    RECURRENCE_DATE,
    START_DATE,
    TREATMENTS_FILE,
    UNIT,
    VALUE,
)

Frames = dict[str, pd.DataFrame]
ROW_OFFSET = 2  # spreadsheet rows: the header is row 1


def _problems(
    frame: pd.DataFrame,
    mask: pd.Series,
    column: str,
    reason: Callable[[pd.Series], str] | str,
    **context: object,
) -> list[Problem]:
    """A problem per row where ``mask``; ``reason`` is a function of the row or a template
    formatted with the row's cells (dates as ISO) and ``context``."""
    file = frame.attrs["file"]
    rows = frame[mask.fillna(False).astype(bool)]
    return [
        Problem(
            file,
            int(i) + ROW_OFFSET,  # type: ignore[call-overload]
            column,
            _reason(reason, row, context),
            row_patient(frame, i),
        )
        for i, row in rows.iterrows()
    ]


def _reason(reason: Callable[[pd.Series], str] | str, row: pd.Series, context: dict) -> str:
    if callable(reason):
        return reason(row)
    cells = {str(k): _date(v) if isinstance(v, pd.Timestamp) else v for k, v in row.items()}
    return reason.format(**cells, **context)


def _date(v: object) -> str:
    return pd.Timestamp(v).strftime("%Y-%m-%d")  # type: ignore[arg-type]


def unique_patient_ids(frames: Frames, manifest: Manifest) -> list[Problem]:
    problems = []
    for stem in (PATIENTS_FILE, OUTCOMES_FILE):
        frame = frames.get(stem)
        if frame is None or PATIENT_ID not in frame:
            continue
        dup = frame[PATIENT_ID].duplicated(keep="first") & (frame[PATIENT_ID] != "")
        first = frame.reset_index().drop_duplicates(PATIENT_ID).set_index(PATIENT_ID)["index"]
        problems += _problems(
            frame.assign(first_row=frame[PATIENT_ID].map(first) + ROW_OFFSET),
            dup,
            PATIENT_ID,
            "duplicate patient_id {patient_id!r} (first at row {first_row})",
        )
    return problems


def known_patients(frames: Frames, manifest: Manifest) -> list[Problem]:
    patients = frames.get(PATIENTS_FILE)
    if patients is None or PATIENT_ID not in patients:
        return []
    known = set(patients[PATIENT_ID])
    problems = []
    for stem in (
        MEASUREMENTS_FILE,
        IMAGING_FILE,
        OUTCOMES_FILE,
        TREATMENTS_FILE,
        ADVERSE_EVENTS_FILE,
    ):
        frame = frames.get(stem)
        if frame is None or PATIENT_ID not in frame:
            continue
        unknown = ~frame[PATIENT_ID].isin(known) & (frame[PATIENT_ID] != "")
        problems += _problems(
            frame,
            unknown,
            PATIENT_ID,
            lambda r: f"unknown patient {r[PATIENT_ID]!r} (not in patients)",
        )
    return problems


def every_patient_has_outcome(frames: Frames, manifest: Manifest) -> list[Problem]:
    patients, outcomes = frames.get(PATIENTS_FILE), frames.get(OUTCOMES_FILE)
    if (
        patients is None
        or outcomes is None
        or PATIENT_ID not in outcomes
        or PATIENT_ID not in patients
    ):
        return []
    missing = ~patients[PATIENT_ID].isin(set(outcomes[PATIENT_ID])) & (patients[PATIENT_ID] != "")
    file = outcomes.attrs["file"]
    return [
        Problem(
            file, None, PATIENT_ID, f"patient {pid!r} has no outcome row (needs last_followup_date)"
        )
        for pid in patients.loc[missing, PATIENT_ID]
    ]


def declared_markers_and_units(frames: Frames, manifest: Manifest) -> list[Problem]:
    frame = frames.get(MEASUREMENTS_FILE)
    if frame is None or MARKER not in frame or UNIT not in frame:
        return []
    declared = sorted(manifest.markers)
    unknown = ~frame[MARKER].isin(declared) & (frame[MARKER] != "")
    problems = _problems(
        frame,
        unknown,
        MARKER,
        lambda r: f"unknown marker {r[MARKER]!r}; cohort.toml declares {declared}",
    )
    # only declared markers have units to check: an empty marker was reported by the schema
    pairs = frame.loc[frame[MARKER].isin(declared) & (frame[UNIT] != ""), [MARKER, UNIT]]
    pairs = pairs.drop_duplicates()
    bad_pairs = {
        (m, u)
        for m, u in pairs.itertuples(index=False)
        if conversion_factor(u, manifest.markers[m].unit, manifest.markers[m].conversions) is None
    }
    if bad_pairs:
        is_bad = pd.Series(
            list(zip(frame[MARKER], frame[UNIT], strict=True)), index=frame.index
        ).isin(bad_pairs)
        problems += _problems(frame, is_bad, UNIT, lambda r: _unit_reason(r, manifest))
    return problems


def whole_counts(frames: Frames, manifest: Manifest) -> list[Problem]:
    """A marker counted in cells (``rules.is_plausible_count``) has whole-number values."""
    frame = frames.get(MEASUREMENTS_FILE)
    if frame is None or not {MARKER, VALUE, UNIT} <= set(frame.columns):
        return []
    counted = [m for m, spec in manifest.markers.items() if is_count_unit(spec.unit)]
    rows = frame[frame[MARKER].isin(counted) & frame[VALUE].notna()]
    bad = [
        i
        for i, m, v, u in zip(rows.index, rows[MARKER], rows[VALUE], rows[UNIT], strict=True)
        if not is_plausible_count(v, u, manifest.markers[m].unit, manifest.markers[m].conversions)
    ]
    mask = frame.index.isin(bad)
    return _problems(
        frame,
        pd.Series(mask, index=frame.index),
        VALUE,
        lambda r: f"{COUNT_RULE} (got {r[VALUE]!r})",
    )


def _unit_reason(row: pd.Series, manifest: Manifest) -> str:
    spec = manifest.markers[row[MARKER]]
    known = sorted({u for (u, to) in KNOWN_CONVERSIONS if to == spec.unit} | set(spec.conversions))
    return (
        f"unknown unit {row[UNIT]!r} for marker {row[MARKER]!r}: expected {spec.unit!r}"
        + (f" or one of {known}" if known else "")
        + " (declare a factor under conversions)"
    )


def no_duplicate_measurements(frames: Frames, manifest: Manifest) -> list[Problem]:
    frame = frames.get(MEASUREMENTS_FILE)
    if frame is None or not {PATIENT_ID, DATE, MARKER} <= set(frame.columns):
        return []
    key = [PATIENT_ID, DATE, MARKER] + ([DRAW_ID] if DRAW_ID in frame else [])
    dup = frame.duplicated(key, keep="first") & frame[DATE].notna()
    return _problems(
        frame,
        dup,
        MARKER,
        lambda r: (
            f"duplicate measurement of {r[MARKER]!r} for patient "
            f"{r[PATIENT_ID]!r} on {_date(r[DATE])}"
        ),
    )


def _index_and_outcomes(frames: Frames) -> pd.DataFrame | None:
    patients, outcomes = frames.get(PATIENTS_FILE), frames.get(OUTCOMES_FILE)
    if patients is None or outcomes is None or INDEX_DATE not in patients:
        return None
    if LAST_FOLLOWUP_DATE not in outcomes:
        return None
    idx = patients.drop_duplicates(PATIENT_ID).set_index(PATIENT_ID)[INDEX_DATE]
    out = outcomes.drop_duplicates(PATIENT_ID).set_index(PATIENT_ID)
    for col in (RECURRENCE_DATE, PROGRESSION_DATE, DEATH_DATE):
        if col not in out:
            out[col] = pd.NaT
    out[INDEX_DATE] = idx
    return out


def outcome_dates_consistent(frames: Frames, manifest: Manifest) -> list[Problem]:
    ref = _index_and_outcomes(frames)
    if ref is None:
        return []
    outcomes = frames[OUTCOMES_FILE]
    aligned = ref.reindex(outcomes[PATIENT_ID]).set_index(outcomes.index)
    problems = _problems(
        outcomes,
        aligned[LAST_FOLLOWUP_DATE] < aligned[INDEX_DATE],
        LAST_FOLLOWUP_DATE,
        lambda r: f"follow-up ends ({_date(r[LAST_FOLLOWUP_DATE])}) before index date",
    )
    for col in (RECURRENCE_DATE, PROGRESSION_DATE, DEATH_DATE):
        if col not in outcomes:
            continue
        what = col.removesuffix("_date")
        dated = outcomes.assign(event_date=outcomes[col])
        problems += _problems(
            dated,
            aligned[col] > aligned[LAST_FOLLOWUP_DATE],
            col,
            "{what} ({event_date}) after last follow-up ({last_followup_date})",
            what=what,
        )
        problems += _problems(
            dated,
            aligned[col] < aligned[INDEX_DATE],
            col,
            "{what} ({event_date}) before index date",
            what=what,
        )
    return problems


def nothing_after_death_or_followup(frames: Frames, manifest: Manifest) -> list[Problem]:
    ref = _index_and_outcomes(frames)
    if ref is None:
        return []
    problems = []
    for stem, what in (
        (MEASUREMENTS_FILE, "draw"),
        (IMAGING_FILE, "scan"),
        (ADVERSE_EVENTS_FILE, "adverse event"),
    ):
        frame = frames.get(stem)
        if frame is None or DATE not in frame:
            continue
        aligned = ref.reindex(frame[PATIENT_ID]).set_index(frame.index)
        after_death = frame[DATE] > aligned[DEATH_DATE]
        problems += _problems(frame, after_death, DATE, "{what} on {date} after death", what=what)
        after_fu = (frame[DATE] > aligned[LAST_FOLLOWUP_DATE]) & ~after_death.fillna(False)
        problems += _problems(
            frame, after_fu, DATE, "{what} on {date} after last follow-up", what=what
        )
    return problems


def treatment_dates_ordered(frames: Frames, manifest: Manifest) -> list[Problem]:
    frame = frames.get(TREATMENTS_FILE)
    if frame is None or END_DATE not in frame or START_DATE not in frame:
        return []
    return _problems(
        frame,
        frame[END_DATE] < frame[START_DATE],
        END_DATE,
        lambda r: (
            f"treatment ends ({_date(r[END_DATE])}) before it starts ({_date(r[START_DATE])})"
        ),
    )


CHECKLIST: tuple[Callable[[Frames, Manifest], list[Problem]], ...] = (
    unique_patient_ids,
    known_patients,
    every_patient_has_outcome,
    declared_markers_and_units,
    whole_counts,
    no_duplicate_measurements,
    outcome_dates_consistent,
    nothing_after_death_or_followup,
    treatment_dates_ordered,
)


def cross_file_problems(frames: Frames, manifest: Manifest) -> list[Problem]:
    """Run every validator of the checklist and return all problems found."""
    problems: list[Problem] = []
    for check in CHECKLIST:
        problems += check(frames, manifest)
    return problems
