"""GET /v1/export: the site as a cohort in the data contract, plus the issued assessments."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

from cohort.load import load_cohort
from tests.serving.conftest import Api, draw

ASSESSMENT_COLUMNS = [
    "patient_id", "assessment_id", "issued_at", "as_of", "model_name", "model_version",
    "risk_180", "risk_365", "risk_730", "risk_band", "alarm", "alarm_threshold", "alarm_horizon_days",
]  # fmt: skip


def test_the_export_is_a_cohort_that_loads_with_its_assessments(
    api: Api, patient: dict[str, Any], tmp_path: Path
) -> None:
    for day, ctc in (("2024-02-10", 1), ("2024-05-10", 6)):
        assert (
            api.clinician.post("/v1/patients/p-0042/draws", json=draw(day, ctc=ctc)).status_code
            == 201
        )
    scan = {"date": "2024-05-12", "modality": "CT", "finding": "indeterminate"}
    assert api.clinician.post("/v1/patients/p-0042/imaging", json=scan).status_code == 201
    api.other_site.post("/v1/patients", json={"patient_id": "b-1", "index_date": "2024-01-01"})
    r = api.researcher.get("/v1/export")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    zipfile.ZipFile(io.BytesIO(r.content)).extractall(tmp_path)
    cohort = load_cohort(tmp_path)
    assert list(cohort.patients["patient_id"]) == ["p-0042"]
    assert len(cohort.measurements) == 4 and len(cohort.imaging) == 1
    assessments = pd.read_csv(tmp_path / "assessments.csv", dtype=str)
    assert list(assessments.columns) == ASSESSMENT_COLUMNS
    assert list(assessments["as_of"]) == ["2024-02-10", "2024-05-10"]
    assert set(assessments["model_version"]) == {"1"}
