"""``/docs`` and ``/redoc`` over real HTTP: every asset from the controller itself, none from
elsewhere, and every asset shipped in the package."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from api import create_app
from api.docs_ui import ASSETS, STATIC
from tests.api.conftest import FakeLine, uvicorn_server

ROOT = Path(__file__).parents[2]
PAGES = ("/docs", "/redoc")


class References(HTMLParser):
    """Every URL a page loads: ``src`` and ``href`` of its elements, and the URLs written in
    its inline scripts (the Swagger UI page names the OpenAPI document there)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value:
                self.urls.append(value)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.urls += re.findall(r"""url: *'([^']+)'""", data)


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    return parser.urls


@pytest.fixture
async def http(backend: FakeLine) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        uvicorn_server(create_app(backend)) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        yield client


@pytest.mark.parametrize("page", PAGES)
async def test_the_page_loads_only_local_assets_and_each_is_served(
    http: httpx.AsyncClient, page: str
) -> None:
    r = await http.get(page)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    # nothing from another host: no CDN, no web fonts, no online validator
    assert not re.search(r"(https?:)?//", r.text), r.text
    urls = references(r.text)
    assert "/openapi.json" in urls
    assets = [u for u in urls if u != "/openapi.json"]
    assert assets, r.text
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
        served = await http.get(url)
        assert served.status_code == 200, url
        if url == "/openapi.json":
            assert served.headers["content-type"] == "application/json"
            continue
        name = url.removeprefix("/docs/assets/")
        assert served.headers["content-type"] == ASSETS[name], url
        assert served.content == (STATIC / name).read_bytes()


async def test_swagger_ui_page_names_its_script_style_and_icon(http: httpx.AsyncClient) -> None:
    urls = references((await http.get("/docs")).text)
    assert {
        "/docs/assets/swagger-ui/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui/swagger-ui.css",
        "/docs/assets/swagger-ui/favicon-32x32.png",
    } <= set(urls)
    redoc = references((await http.get("/redoc")).text)
    assert "/docs/assets/redoc/redoc.standalone.js" in redoc


async def test_assets_revalidate_by_etag_and_unknown_names_are_404(
    http: httpx.AsyncClient,
) -> None:
    url = "/docs/assets/swagger-ui/swagger-ui.css"
    first = await http.get(url)
    assert first.headers["cache-control"] == "no-cache"
    again = await http.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert (await http.get(url, headers={"If-None-Match": '"other"'})).status_code == 200

    for missing in ("swagger-ui/index.html", "redoc/redoc.lib.js", "README.md/x"):
        r = await http.get(f"/docs/assets/{missing}")
        assert r.status_code == 404, missing
        assert r.headers["content-type"] == "application/problem+json"


async def test_docs_pages_are_not_in_the_openapi_document(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]


def test_every_asset_and_its_licence_is_package_data() -> None:
    """A wheel carries what the pages load: each served file, and the licences beside them, is
    matched by ``api``'s package-data patterns in pyproject.toml."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["api"]
    api_dir = STATIC.parent
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    assert {f"{name}" for name in ASSETS} <= {str(p.relative_to(STATIC)) for p in files}
    for licence in ("swagger-ui/LICENSE", "swagger-ui/NOTICE", "redoc/LICENSE"):
        assert licence in ASSETS
    for path in files:
        relative = str(path.relative_to(api_dir))
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative
