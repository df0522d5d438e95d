"""Safety: share of patients with any CTCAE v5.0 grade ≥ 3 event, overall and by term."""

from __future__ import annotations

import pandas as pd

from cohort.cohort import Cohort
from cohort.vocabulary import GRADE, PATIENT_ID, TERM
from study.groups import patient_groups
from study.names import ANY_TERM, GROUP, WORST_GRADE, N
from study.parts import Part, skip
from study.proportions import proportion

N_ANY_GRADE = "n_any_grade"


def worst_grades(adverse_events: pd.DataFrame) -> pd.DataFrame:
    """Worst grade per patient and term, plus a row per patient for any term."""
    ae = adverse_events[[PATIENT_ID, TERM, GRADE]].dropna(subset=[GRADE])
    ae = ae.assign(**{GRADE: pd.to_numeric(ae[GRADE]), TERM: ae[TERM].astype(str)})
    per_term = ae.groupby([PATIENT_ID, TERM], as_index=False)[GRADE].max()
    overall = ae.groupby(PATIENT_ID, as_index=False)[GRADE].max().assign(**{TERM: ANY_TERM})
    both = pd.concat([overall, per_term], ignore_index=True)
    return both.rename(columns={GRADE: WORST_GRADE})


def safety_table(
    patients: pd.DataFrame, adverse_events: pd.DataFrame, group: str | None, min_grade: int = 3
) -> pd.DataFrame:
    """Per term (any event first) and group: n with any grade, n (%) with grade ≥ ``min_grade``."""
    worst = worst_grades(adverse_events)
    severe = worst[worst[WORST_GRADE] >= min_grade]
    order = severe[TERM].value_counts().index.tolist()
    terms = [ANY_TERM, *[t for t in order if t != ANY_TERM]]
    terms += sorted(set(worst[TERM]) - set(terms))
    rows = []
    for label, ids in patient_groups(patients, group):
        for term in terms:
            mine = worst[(worst[TERM] == term) & worst[PATIENT_ID].isin(ids)]
            k = int((mine[WORST_GRADE] >= min_grade).sum())
            rows.append(
                {TERM: term, GROUP: label, N_ANY_GRADE: len(mine), **proportion(k, len(ids))}
            )
    return pd.DataFrame(rows).rename(columns={N: f"n_grade_{min_grade}plus"})


def safety_part(cohort: Cohort, group: str | None) -> Part:
    """Safety table, or a skipped note when the cohort records no adverse events."""
    if cohort.adverse_events.empty:
        return skip(
            "Safety", "the cohort has no adverse events (adverse_events.csv absent or empty)"
        )
    table = safety_table(cohort.patients, cohort.adverse_events, group)
    return Part(
        tables={"safety": table},
        notes=[
            "Safety denominators are all patients of the group; percent is patients with "
            "a worst CTCAE grade ≥ 3 (exact 95% CI)."
        ],
    )
