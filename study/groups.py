"""Patients split into Overall and the levels of a grouping column."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from cohort.vocabulary import PATIENT_ID
from study.names import OVERALL
from study.survival import group_level_text


def patient_groups(patients: pd.DataFrame, group: str | None) -> Iterator[tuple[str, pd.Index]]:
    """(label, patient ids): Overall first, then each level of ``group`` (missing left out)."""
    ids = pd.Index(patients[PATIENT_ID].astype(str))
    yield OVERALL, ids
    if not group:
        return
    labels = group_level_text(patients[group]).to_numpy()
    for level in sorted({str(v) for v in labels if not pd.isna(v)}):
        yield level, ids[labels == level]
