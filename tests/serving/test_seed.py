"""serving.seed: a cohort's patients in the store as known on a clinic day, an assessment per
draw issued by the live model on the history up to that draw."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from cohort.load import load_cohort
from serving.auth import Principal
from serving.model import ModelHolder
from serving.seed import clinic_day, in_follow_up, load_cohort_patients
from serving.store import Assessment, Draw, Imaging, Measurement, Outcome, Patient, Store
from tests.serving.conftest import Keys, Registry

N = 12


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'ctcmon.db').as_posix()}"


def test_patients_load_as_known_on_the_clinic_day_with_dates_moved_to_yesterday(
    registry: Registry, holder: ModelHolder, store: Store, keys: Keys
) -> None:
    cohort = load_cohort(registry.cohort_dir)
    cut, shift = clinic_day(cohort, 0.6)
    assert cut + timedelta(days=shift) == date.today() - timedelta(days=1)
    some = cohort.patients.head(N)
    assert holder.current is not None
    key = Principal(keys.ids["clinician"], "clinician", "site-a")
    loaded = load_cohort_patients(
        store, holder.current, key, replace(cohort, patients=some), until=cut, shift_days=shift
    )
    operated = some[some["index_date"] <= pd.Timestamp(cut)]
    assert loaded.patients == len(operated)
    known = cohort.measurements[
        cohort.measurements["patient_id"].isin(operated["patient_id"])
        & (cohort.measurements["date"] <= pd.Timestamp(cut))
    ]
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(Measurement)) == len(known)
        assert s.scalar(select(func.max(Measurement.date))) <= date.today() - timedelta(days=1)
        assert s.scalar(select(func.max(Imaging.date))) <= date.today() - timedelta(days=1)
        # one assessment per draw, as of the draw's day, by the champion
        pairs = s.execute(
            select(Assessment.as_of, Draw.date, Assessment.model_version).join(
                Draw, Draw.id == Assessment.draw_pk
            )
        ).all()
        assert len(pairs) == loaded.draws == s.scalar(select(func.count()).select_from(Draw))
        assert all(a == d and v == "1" for a, d, v in pairs)
        # an event after the clinic day is not known yet
        outcomes = s.execute(select(Outcome.recurrence_date, Outcome.death_date)).all()
        assert all(r is None or r <= date.today() for row in outcomes for r in row)
        first = s.scalar(select(Patient).order_by(Patient.patient_id))
    raw = operated.sort_values("patient_id").iloc[0]
    assert first is not None
    assert first.index_date == (pd.Timestamp(raw["index_date"]).date() + timedelta(days=shift))
    assert first.site_id == "site-a"


def test_a_bad_clinic_day_or_batch_is_refused(
    registry: Registry, holder: ModelHolder, store: Store, keys: Keys
) -> None:
    cohort = load_cohort(registry.cohort_dir)
    with pytest.raises(ValueError, match=r"quantile must be in \(0, 1\], got 1.5"):
        clinic_day(cohort, 1.5)
    assert holder.current is not None
    key = Principal(keys.ids["clinician"], "clinician", "site-a")
    with pytest.raises(ValueError, match="batch must be at least 1 patient, got 0"):
        load_cohort_patients(store, holder.current, key, cohort, batch=0)


def test_in_follow_up_keeps_the_operated_patients_whose_follow_up_spans_the_day(
    registry: Registry,
) -> None:
    cohort = load_cohort(registry.cohort_dir)
    cut, _ = clinic_day(cohort, 0.6)
    followed = set(in_follow_up(cohort, cut))
    o = cohort.outcomes.set_index("patient_id")
    for pid, index in cohort.patients.set_index("patient_id")["index_date"].items():
        ends = o.loc[pid, ["last_followup_date", "recurrence_date", "death_date"]].dropna()
        expected = index <= pd.Timestamp(cut) and (ends >= pd.Timestamp(cut)).all()
        assert (pid in followed) == expected, pid
    assert 0 < len(followed) < len(cohort.patients)
