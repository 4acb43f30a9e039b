"""``GET /ui``: the live line page, served by the controller itself.

The page and its two assets ship in the package (``api/ui/``) and load nothing from elsewhere,
so it works on a line without internet. It holds no data of its own: it draws
``GET /v1/line/plan`` and follows ``GET /v1/line/stream`` with the token the user enters (kept
in the browser tab only), so the API's scopes decide what it may read and do. The answers carry
a Content-Security-Policy that allows nothing but this origin.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import RedirectResponse, Response

from api.problems import ProblemError

router = APIRouter(include_in_schema=False)

ASSETS = {"line.js": "text/javascript", "line.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _read(name: str) -> bytes:
    return resources.files("api").joinpath("ui", name).read_bytes()


@router.get("/ui")
async def page() -> Response:
    return Response(_read("index.html"), media_type="text/html", headers=SECURITY_HEADERS)


@router.get("/ui/")
async def page_slash() -> RedirectResponse:
    return RedirectResponse("/ui", status_code=308)


@router.get("/ui/assets/{name}")
async def asset(name: Annotated[str, Path(max_length=40)]) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise ProblemError(404, f"No asset {name} in the live page")
    return Response(_read(name), media_type=media_type, headers=SECURITY_HEADERS)
