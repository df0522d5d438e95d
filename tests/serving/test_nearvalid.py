"""Near-valid requests (``tests/serving/nearvalid.py``: valid requests with one to three
mutations) against the app under uvicorn: never a 5xx, every status a documented one.
``benchmarks/bench_fuzz.py`` runs the same fuzzer at benchmark size against ctcmon serve."""

from __future__ import annotations

import httpx
import pytest

from serving.model import ModelHolder
from serving.store import Store
from tests.serving import nearvalid
from tests.serving.conftest import Keys, serve

pytestmark = pytest.mark.slow

REQUESTS = 300  # the benchmark sends 1,500 and more; this bounds CI time


def test_near_valid_requests_get_no_server_error_and_only_documented_statuses(
    store: Store, holder: ModelHolder, keys: Keys
) -> None:
    with (
        serve(store, holder) as server,
        httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {keys.clinician}"},
            timeout=60,
        ) as client,
    ):
        document = client.get("/openapi.json").json()
        ids = nearvalid.register(client, 5)
        out = nearvalid.run(client, document, REQUESTS, seed=16, patient_ids=ids)
    assert out.total == REQUESTS
    assert not out.server_errors, out.server_errors[:3]
    assert not out.undocumented, out.undocumented[:3]
    # the mutations are near misses: some still succeed, most are refused with a reason
    ok = sum(n for (_, _, status), n in out.statuses.items() if status < 300)
    refused = sum(n for (_, _, status), n in out.statuses.items() if status in (409, 413, 415, 422))
    assert ok > 0 and refused > REQUESTS // 3, out.statuses
