"""``ctcmon demo``, the README's main job, as a user runs it (a smaller cohort)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.ctcmon.test_cli import ctcmon

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    workdir = tmp_path_factory.mktemp("demo") / "out"
    res = ctcmon("demo", "--workdir", workdir, "--patients", "300", "--seed", "3")
    assert res.returncode == 0, res.stderr
    return workdir, {"text": res.stdout, "stderr": res.stderr}


def test_the_demo_prints_ctcmon_s_own_output_only(demo: tuple[Path, dict]) -> None:
    """No MLflow narration or serialisation warnings for a newcomer (issue #14 item 7):
    the model is logged from code with a typed signature, not cloudpickled with ``Any``."""
    assert demo[1]["stderr"].strip() == ""


def test_the_demo_summary_names_the_champion_its_gain_and_both_lead_times(
    demo: tuple[Path, dict],
) -> None:
    text = demo[1]["text"]
    assert "best model:" in text and "vs baseline (no markers): AUC" in text
    assert "registered as ctcmon-recurrence version 1 (alias champion)" in text
    ctc = next(line for line in text.splitlines() if "lead time, ctc_total>=2" in line)
    assert "median lead over imaging" in ctc and "from the ongoing alarm episode" in ctc
    assert "Traceback" not in text


def test_the_demo_leaves_a_registered_champion_and_its_reports(demo: tuple[Path, dict]) -> None:
    workdir = demo[0]
    uri = f"sqlite:///{(workdir / 'mlflow.db').as_posix()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("ctcmon-recurrence", "champion")
    assert str(champion.version) == "1"
    for report in ("describe/report.html", "leadtime/report.html"):
        assert (workdir / report).stat().st_size > 1000


def test_the_demo_leaves_a_populated_service_store_and_a_working_clinician_key(
    demo: tuple[Path, dict],
) -> None:
    from sqlalchemy import func, select

    from serving.auth import KEY_BY_HASH, token_hash
    from serving.store import Assessment, Draw, Patient, Store

    workdir, out = demo
    token = out["text"].strip().splitlines()[-1].strip()
    assert token.startswith("ctc_"), out["text"]
    store = Store(f"sqlite:///{(workdir / 'ctcmon.db').as_posix()}")
    try:
        with store.connect() as conn:
            key = conn.execute(KEY_BY_HASH, {"digest": token_hash(token)}).first()
        assert key is not None and key.role == "clinician" and key.revoked_at is None
        with store.reading() as s:
            patients = s.scalar(select(func.count()).where(Patient.site_id == key.site_id))
            draws = s.scalar(select(func.count()).select_from(Draw))
            assessed = s.scalar(select(func.count()).where(Assessment.draw_pk.is_not(None)))
    finally:
        store.dispose()
    assert patients is not None and patients > 50
    assert draws == assessed and draws > patients
    assert f"service store: {patients} patients with {draws} draws" in out["text"]


def test_the_demo_s_clinic_patients_are_new_to_the_model(demo: tuple[Path, dict]) -> None:
    """The worklist holds patients the champion was never trained on, as a clinic's are."""
    import pandas as pd
    from sqlalchemy import select

    from serving.store import Assessment, Draw, Patient, Store

    workdir = demo[0]
    trained = pd.read_csv(workdir / "cohort" / "patients.csv")
    clinic = pd.read_csv(workdir / "clinic-cohort" / "patients.csv")
    store = Store(f"sqlite:///{(workdir / 'ctcmon.db').as_posix()}")
    try:
        with store.reading() as s:
            stored = set(s.scalars(select(Patient.patient_id)))
            n_draws = len(s.execute(select(Draw.id)).all())
            documents = list(s.scalars(select(Assessment.body)))
    finally:
        store.dispose()
    # the same ids at the demo's own site: new patients, served by the packaged model
    assert documents and not any(d.get("cross_fitted") for d in documents)
    assert set(stored) <= set(clinic["patient_id"]) and n_draws > 0
    # the simulator numbers patients alike: the same id in both cohorts is another patient
    # (the CSVs' dates are the simulated calendar's, unshifted)
    ours = clinic.set_index("patient_id")["index_date"]
    theirs = trained.set_index("patient_id")["index_date"]
    same = [p for p in stored if p in theirs.index and theirs[p] == ours[p]]
    assert len(same) < len(stored) / 10
    assert "new patients, not trained on" in demo[1]["text"]


def test_the_demo_json_carries_the_same_figures(tmp_path: Path) -> None:
    res = ctcmon("demo", "--workdir", tmp_path / "j", "--patients", "120", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] is True and str(out["champion"]["version"]) == "1"
    ctc = out["leadtime"]["ctc_total>=2"]
    assert ctc["lead_median"] > 0 and ctc["episode_lead_median"] > 0
    assert set(out["steps_seconds"]) >= {"simulate", "train", "leadtime", "store"}
    assert out["store"]["patients"] > 0 and out["store"]["clinician_key"].startswith("ctc_")
