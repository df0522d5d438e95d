"""The alarm's operating point and each risk's interval, as the service states them."""

from __future__ import annotations

from typing import Any

from tests.serving.conftest import Api

FIGURES = (
    "patient_specificity",
    "sensitivity",
    "false_alarms_per_patient_year",
    "median_lead_days",
)


def test_the_model_route_states_the_patient_level_operating_point_with_its_intervals(
    api: Api,
) -> None:
    r = api.clinician.get("/v1/model")
    assert r.status_code == 200
    alarm = r.json()["alarm"]
    op = alarm["operating_point"]
    assert op["threshold"] == alarm["threshold"] and op["confirm"] == alarm["confirm"]
    for name in FIGURES:
        assert op[f"{name}_low"] <= op[name] <= op[f"{name}_high"], name
    assert op["target"] == "patient_specificity>=0.9"
    assert "recurrence-free patients never alarmed" in op["definition"]
    assert 0 < op["per_draw_specificity"] <= 1
    assert alarm["expected_lead_days"] == op["median_lead_days"]


def test_every_assessment_states_its_rule_and_an_interval_around_each_risk(
    api: Api, patient: dict[str, Any]
) -> None:
    draw = {
        "date": "2024-03-10",
        "measurements": [
            {"marker": "ctc_total", "value": 4, "unit": "cells/7.5mL"},
            {"marker": "afp", "value": 35.0, "unit": "ng/mL"},
        ],
    }
    r = api.clinician.post("/v1/patients/p-0042/draws", json=draw)
    assert r.status_code in (200, 201), r.text
    a = r.json()
    model = api.clinician.get("/v1/model").json()
    assert a["alarm_rule"]["operating_point"] == model["alarm"]["operating_point"]
    assert a["alarm_rule"]["threshold"] == a["alarm_threshold"]
    assert set(a["risk_interval"]) == set(a["risk"])
    for h, risk in a["risk"].items():
        band = a["risk_interval"][h]
        assert 0 <= band["low"] <= risk <= band["high"] <= 1
    listed = api.clinician.get("/v1/patients/p-0042/assessments").json()
    assert listed[-1]["risk_interval"] == a["risk_interval"]
    assert listed[-1]["alarm_rule"] == a["alarm_rule"]
