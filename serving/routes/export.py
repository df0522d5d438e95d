"""The key's site as a cohort in the data contract, with every issued assessment."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import Response

from serving.auth import ResearcherKey
from serving.deps import ModelDep, StoreDep
from serving.export import export_site
from serving.routes.risk import ERRORS

router = APIRouter(prefix="/v1", tags=["export"])


@router.get(
    "/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}, **ERRORS},
)
def export(key: ResearcherKey, store: StoreDep, model: ModelDep) -> Response:
    """A ZIP: cohort.toml, patients/measurements/imaging/outcomes.csv and assessments.csv."""
    data = export_site(store, key, model.pipeline.manifest, model.pipeline.horizons)
    site = re.sub(r"[^A-Za-z0-9_.-]", "_", key.site_id)
    name = f"ctcmon-{site}-{datetime.now(UTC):%Y%m%d}.zip"
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
