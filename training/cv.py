"""Patient-grouped cross-validation for landmark tables.

A landmark table holds many rows per patient (one per landmark), so rows must never be split
at random: the folds are assigned to *patients*, and every row of a patient follows it.

    folds = patient_folds(table[PATIENT_ID], n_splits=5, events=table[EVENT], seed=0)
    for fold, train_idx, test_idx in iter_folds(table, folds):
        model.fit(table.iloc[train_idx]); predict(table.iloc[test_idx])

``folds`` is a ``pd.Series`` indexed by ``patient_id`` (str) with integer values 1..k, named
``fold``; :func:`folds_from_file` reads the same shape from a ``patient_id,fold`` CSV so a run
can reproduce a published fold assignment (``cohort/datasets/pbcseq_folds.csv``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from os import PathLike

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from cohort.vocabulary import FOLD, PATIENT_ID

log = logging.getLogger(__name__)

# Not (yet) in cohort.vocabulary; kept here as the one spelling used by training/.

_MAX_LISTED = 10


def _listed(values: ArrayLike) -> str:
    """Up to ten values for an error message, with a count of the rest."""
    items = [str(v) for v in np.asarray(values).ravel()]
    more = f" (and {len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
    return ", ".join(items[:_MAX_LISTED]) + more


def _check_n_splits(n_splits: int, n_patients: int) -> None:
    if not isinstance(n_splits, int | np.integer) or isinstance(n_splits, bool):
        raise TypeError(f"n_splits must be an int, got {n_splits!r}")
    if n_splits < 2 or n_splits > n_patients:
        raise ValueError(
            f"n_splits={n_splits} must be between 2 and the number of patients ({n_patients})"
        )


def _patient_events(ids: pd.Series, events: ArrayLike | None) -> pd.Series | None:
    """One event flag per patient (1 if any of its rows has an event), or None."""
    if events is None:
        return None
    values = np.asarray(events).ravel()
    if len(values) != len(ids):
        raise ValueError(f"events has {len(values)} values but patient_ids has {len(ids)}")
    ev = pd.Series(values, index=ids.index)
    bad = ~ev.isin([0, 1, True, False])
    if bad.any():
        raise ValueError(f"events must be 0/1, got {_listed(ev[bad].unique())}")
    return ev.astype(int).groupby(ids.to_numpy(), sort=True).max()


def _check_strata(per_patient: pd.Series, n_splits: int) -> None:
    counts = per_patient.value_counts()
    if len(counts) < 2 or counts.min() < n_splits:
        raise ValueError(
            f"cannot stratify {n_splits} folds on events: patients per event class are "
            f"{counts.to_dict()}; each class needs at least n_splits patients "
            "(pass events=None for unstratified folds)"
        )


def patient_folds(
    patient_ids: ArrayLike, n_splits: int = 5, *, events: ArrayLike | None = None, seed: int = 0
) -> pd.Series:
    """Assign each patient to one of ``n_splits`` folds, numbered 1..n_splits.

    ``patient_ids`` may repeat (e.g. a landmark table's column); ``events``, aligned with it,
    stratifies the folds on whether the patient ever has an event (StratifiedGroupKFold).
    Without events the folds are balanced in size (GroupKFold). Shuffling uses ``seed``.
    Returns a Series indexed by patient_id (str), named ``fold``.
    """
    ids = pd.Series(np.asarray(patient_ids)).astype(str)
    per_patient = _patient_events(ids, events)
    patients = np.sort(ids.unique())
    _check_n_splits(n_splits, len(patients))
    if per_patient is not None:
        _check_strata(per_patient, n_splits)
        splitter: GroupKFold | StratifiedGroupKFold = StratifiedGroupKFold(
            n_splits=n_splits, shuffle=True, random_state=seed
        )
        y = per_patient.loc[patients].to_numpy()
    else:
        splitter = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        y = np.zeros(len(patients), dtype=int)
    fold = np.zeros(len(patients), dtype=int)
    for k, (_, test) in enumerate(splitter.split(patients, y, groups=patients), start=1):
        fold[test] = k
    return pd.Series(fold, index=pd.Index(patients, name=PATIENT_ID), name=FOLD)


def _check_folds_frame(frame: pd.DataFrame, path: str) -> None:
    missing = {PATIENT_ID, FOLD} - set(frame.columns)
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {sorted(missing)}; expected columns "
            f"{PATIENT_ID!r}, {FOLD!r}, got {list(frame.columns)}"
        )
    dup = frame[PATIENT_ID][frame[PATIENT_ID].duplicated()]
    if len(dup):
        raise ValueError(f"{path}: patient(s) listed more than once: {_listed(dup.unique())}")
    fold = pd.to_numeric(frame[FOLD], errors="coerce")
    bad = frame[FOLD][fold.isna() | (fold < 1) | (fold % 1 != 0)]
    if len(bad):
        raise ValueError(f"{path}: fold must be an integer >= 1, got {_listed(bad.unique())}")


def folds_from_file(path: str | PathLike[str]) -> pd.Series:
    """Read a ``patient_id,fold`` CSV into the Series shape of :func:`patient_folds`."""
    frame = pd.read_csv(path, dtype={PATIENT_ID: str})
    _check_folds_frame(frame, str(path))
    folds = frame.set_index(PATIENT_ID)[FOLD].astype(int)
    log.debug("read %d patients in %d folds from %s", len(folds), folds.nunique(), path)
    return folds.rename(FOLD)


def _check_iter_folds(table: pd.DataFrame, folds: pd.Series) -> pd.Series:
    """Fold of every row of ``table`` (as a Series aligned by position)."""
    if PATIENT_ID not in table.columns:
        raise ValueError(f"table has no {PATIENT_ID!r} column; columns are {list(table.columns)}")
    ids = table[PATIENT_ID].astype(str)
    fold_map = pd.Series(folds.to_numpy(), index=folds.index.astype(str))
    if fold_map.index.duplicated().any():
        dup = fold_map.index[fold_map.index.duplicated()].unique()
        raise ValueError(f"folds list patient(s) more than once: {_listed(dup)}")
    unknown = ids[~ids.isin(fold_map.index)].unique()
    if len(unknown):
        raise ValueError(
            f"{len(unknown)} patient(s) in the table have no fold: {_listed(unknown)}; "
            "the fold assignment must cover every patient of the table"
        )
    return ids.map(fold_map)


def iter_folds(
    table: pd.DataFrame, folds: pd.Series
) -> Iterator[tuple[int, NDArray[np.intp], NDArray[np.intp]]]:
    """Yield ``(fold, train_idx, test_idx)`` as positional row indices of ``table``.

    Every row of a patient lands on the same side, so no patient is in both train and test.
    Patient ids are compared as strings. A fold with no patient in ``table`` (e.g. at a late
    landmark) is skipped with a log message.
    """
    row_fold = _check_iter_folds(table, folds).to_numpy()
    for k in np.sort(folds.unique()):
        test = row_fold == k
        if not test.any():
            log.info("fold %s has no patient in the table; skipped", k)
            continue
        yield int(k), np.flatnonzero(~test), np.flatnonzero(test)
