"""A stack champion, loaded from the registry like any champion, answers ``POST /v1/risk``
with each risk's interval (from its fold stacks)."""

from __future__ import annotations

from typing import Any

import pytest

from serving.model import ModelHolder
from serving.store import Store
from tests.serving.conftest import CHAMPION, Api, Keys, quiet_mlflow, serve
from tests.serving.test_risk import HISTORY

pytestmark = pytest.mark.slow


def test_a_stack_champion_answers_a_risk_request(
    stack_store: dict[str, Any], store: Store, keys: Keys
) -> None:
    holder = ModelHolder(CHAMPION, stack_store["uri"])
    with quiet_mlflow():
        holder.refresh()
    with serve(store, holder) as server:
        api = Api(server.url, keys)
        r = api.clinician.post("/v1/risk", json=HISTORY)
        info = api.researcher.get("/v1/model")
        api.close()
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["model"]["algorithm"] == "stack"
    assert set(a["risk"]) == {"180", "365", "730"}
    assert 0 <= a["risk"]["180"] <= a["risk"]["365"] <= a["risk"]["730"] <= 1
    assert set(a["risk_interval"]) == set(a["risk"])
    for h, risk in a["risk"].items():
        assert a["risk_interval"][h]["low"] <= risk <= a["risk_interval"][h]["high"]
    assert a["drivers"]
    assert info.status_code == 200 and info.json()["algorithm"] == "stack"
