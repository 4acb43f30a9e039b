"""The interactive API documentation, served from the package: ``/docs`` (Swagger UI) and
``/redoc`` (Redoc).

Both pages load their scripts, styles and icon from ``/docs/assets/...``, files shipped in
``api/static`` (see its README), and the document from ``/openapi.json``: nothing is fetched
from elsewhere, so the documentation works where the controller has no internet access. None of
these routes is part of the OpenAPI document.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse, Response

from api.problems import ProblemError

STATIC = Path(__file__).parent / "static"
ASSETS_PATH = "/docs/assets"

_JS = "text/javascript; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"

# every file served, with its media type: nothing else in api/static is reachable
ASSETS: dict[str, str] = {
    "swagger-ui/swagger-ui-bundle.js": _JS,
    "swagger-ui/swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui/favicon-32x32.png": "image/png",
    "swagger-ui/swagger-ui-bundle.js.LICENSE.txt": _TEXT,
    "swagger-ui/LICENSE": _TEXT,
    "swagger-ui/NOTICE": _TEXT,
    "redoc/redoc.standalone.js": _JS,
    "redoc/redoc.standalone.js.LICENSE.txt": _TEXT,
    "redoc/LICENSE": _TEXT,
}

Bundle = Annotated[str, PathParam(description="`swagger-ui` or `redoc`.")]
Name = Annotated[str, PathParam(description="The file's name.")]


def _asset_url(request: Request, name: str) -> str:
    return f"{request.scope.get('root_path', '')}{ASSETS_PATH}/{name}"


def _openapi_url(request: Request, app: FastAPI) -> str:
    return f"{request.scope.get('root_path', '')}{app.openapi_url}"


def install_docs(app: FastAPI) -> None:
    """Add ``/docs``, ``/redoc`` and their assets to ``app`` (created with ``docs_url=None``
    and ``redoc_url=None``)."""

    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=_openapi_url(request, app),
            title=f"{app.title} API",
            swagger_js_url=_asset_url(request, "swagger-ui/swagger-ui-bundle.js"),
            swagger_css_url=_asset_url(request, "swagger-ui/swagger-ui.css"),
            swagger_favicon_url=_asset_url(request, "swagger-ui/favicon-32x32.png"),
            # the online validator would send the document to a third party
            swagger_ui_parameters={"validatorUrl": None},
        )

    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=_openapi_url(request, app),
            title=f"{app.title} API",
            redoc_js_url=_asset_url(request, "redoc/redoc.standalone.js"),
            redoc_favicon_url=_asset_url(request, "swagger-ui/favicon-32x32.png"),
            with_google_fonts=False,
        )

    async def asset(request: Request, bundle: Bundle, name: Name) -> Response:
        key = f"{bundle}/{name}"
        media_type = ASSETS.get(key)
        if media_type is None:
            raise ProblemError(404, f"No documentation asset {key}")
        path = STATIC / key
        response = FileResponse(
            path,
            media_type=media_type,
            stat_result=os.stat(path),
            # revalidated on each use: a new release may bring new files under the same names
            headers={"Cache-Control": "no-cache"},
        )
        etag = response.headers["etag"]
        if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
            return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache"})
        return response

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        ASSETS_PATH + "/{bundle}/{name}", asset, methods=["GET"], include_in_schema=False
    )
