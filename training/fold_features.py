"""Fitted feature stages refitted inside each cross-validation fold.

Most landmark features are fixed functions of a patient's own history, computed once for
every row. The mixed-model summaries (``features.mixed``) are not: their fixed effects and
variance components are estimated from patients' draws. Were they estimated on the whole
cohort, the held-out patients' draws would shape the features their fold model is judged
on. So for each fold the featuriser is refitted on that fold's training patients only, and
the mixed-model columns of every row (fitted and scored) and of the held-out patients'
replayed draws are recomputed with it; the fold's model sees those columns. The whole-
cohort fit serves only the packaged model, refitted on everyone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from cohort.cohort import Cohort
from cohort.vocabulary import LANDMARK_DAY, PATIENT_ID
from features.landmark import LandmarkFeatures, LandmarkInput
from training.cv import iter_folds


@dataclass(frozen=True)
class FoldColumns:
    """Per fold: the stage's columns for every table row and for the fold's replay rows."""

    names: list[str]
    table: dict[int, pd.DataFrame]
    replay: dict[int, pd.DataFrame]  # indexed like the replay frame, the fold's patients only
    featurizers: dict[int, LandmarkFeatures]

    def table_for(self, table: pd.DataFrame, fold: int) -> pd.DataFrame:
        """``table`` with the stage's columns as fitted without ``fold``'s patients."""
        out = table.copy()
        out[self.names] = self.table[fold].to_numpy()
        return out

    def replay_for(self, replay: pd.DataFrame, fold: int, rows: np.ndarray) -> pd.DataFrame:
        """The replay ``rows`` (the fold's own patients) with the fold's columns."""
        out = replay.loc[rows].copy()
        out[self.names] = self.replay[fold].loc[out.index].to_numpy()
        return out


def fold_columns(
    cohort: Cohort,
    table: pd.DataFrame,
    featurizer: LandmarkFeatures,
    folds: pd.Series,
    replay: pd.DataFrame | None = None,
) -> FoldColumns | None:
    """The featuriser's fitted stage refitted per fold (None when it has none)."""
    names = featurizer.mixed_names()
    if not names:
        return None
    everyone = LandmarkInput.from_cohort(cohort, table[[PATIENT_ID, LANDMARK_DAY]])
    replay = None if replay is None else replay.reset_index(drop=True)  # as cross_validate's
    by_fold, replayed, fitted = {}, {}, {}
    fold_of = folds.copy()
    fold_of.index = fold_of.index.astype(str)
    for k, train, _ in iter_folds(table, folds):
        fit_points = table.iloc[train][[PATIENT_ID, LANDMARK_DAY]]
        est = clone(featurizer).fit(LandmarkInput.from_cohort(cohort, fit_points))
        fitted[k] = est
        by_fold[k] = est.mixed_transform(everyone)
        if replay is not None:
            mine = replay[replay[PATIENT_ID].astype(str).map(fold_of) == k]
            cols = est.mixed_transform(
                LandmarkInput.from_cohort(cohort, mine[[PATIENT_ID, LANDMARK_DAY]])
            )
            replayed[k] = cols.set_axis(mine.index)
    return FoldColumns(names, by_fold, replayed, fitted)
