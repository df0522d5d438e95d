"""The clinician web app, served at ``/`` by the same service as the API (``mount``).

Server-rendered Jinja pages (``templates/``), one stylesheet and one script
(``static/``), and plotly's own bundled JavaScript for the timeline, served from the
installed plotly package: nothing is fetched from any other host.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse, Response

from serving.settings import Settings
from serving.web.pages import router
from serving.web.render import STATIC
from serving.web.session import Signer

STATIC_CACHE = {"Cache-Control": "public, max-age=86400"}  # code, not patient data


class CachedStatic(StaticFiles):
    """Static files a browser may keep for a day (the service marks everything else no-store)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(STATIC_CACHE)
        return response


def plotly_js() -> Path:
    """plotly.js as bundled in the installed plotly package (the file ``get_plotlyjs()``
    reads), found without importing plotly: the service never runs plotly's Python code."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is not installed; pip install plotly")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


def mount(app: FastAPI, settings: Settings) -> None:
    """Add the web app's pages and static files to ``app``."""
    app.state.signer = Signer(settings.session_secret, settings.session_hours)
    js = plotly_js()

    @app.get("/static/plotly.min.js", include_in_schema=False)
    async def plotly_bundle() -> FileResponse:
        return FileResponse(js, media_type="text/javascript", headers=STATIC_CACHE)

    app.mount("/static", CachedStatic(directory=STATIC), name="static")
    app.include_router(router)
