"""The live line view's routes: the plan, the SSE stream (over real HTTP), ``/v1/whoami`` and the
page ``/ui`` with its assets."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from importlib import resources
from typing import Any

import httpx
import pytest

from api import create_app, line_feed, stopping_event
from api.line_feed import LineFeed, Rendered
from api.routes_line import LineOut, PlanOut
from tests.api.conftest import ADMIN, ADMIN_NAME, READER, FakeLine, auth, uvicorn_server
from tests.api.test_events_api import Message, messages

WAIT = 5.0


async def test_the_plan_is_the_line_file_laid_out(
    client: httpx.AsyncClient, backend: FakeLine
) -> None:
    assert (await client.get("/v1/line/plan")).status_code == 401  # reads are not open here
    resp = await client.get("/v1/line/plan", headers=auth(READER))
    assert resp.status_code == 200, resp.text
    plan = PlanOut.model_validate(resp.json())
    cfg = backend.config
    assert [n.id for n in plan.robots.nodes] == [n.id for n in cfg.robots.nodes]
    assert {n.id: n.locations for n in plan.robots.nodes}["G01"] == 2  # L01A, L01B
    assert [z.id for z in plan.conveyor.zones] == [z.id for z in cfg.conveyor.zones]
    assert plan.conveyor.scanner.zone == "Z05"
    assert {d.chute for d in plan.conveyor.diverts} == {c.id for c in plan.conveyor.chutes}
    assert [(a.id, a.crane, a.pd_zone) for a in plan.asrs.aisles] == [
        ("A1", "CR1", "Z21"),
        ("A2", "CR2", "Z22"),
    ]
    assert [r.serial for r in plan.robots.fleet] == [r.serial for r in cfg.robots.fleet]


async def test_whoami_names_the_token_and_its_scopes(client: httpx.AsyncClient) -> None:
    anonymous = (await client.get("/v1/whoami")).json()
    assert anonymous == {"name": "anonymous", "scopes": [], "reads_open": False}
    reader = (await client.get("/v1/whoami", headers=auth(READER))).json()
    assert reader["scopes"] == ["orders:read"]
    admin = (await client.get("/v1/whoami", headers=auth(ADMIN))).json()
    assert admin["name"] == ADMIN_NAME and "line:operate" in admin["scopes"]
    unknown = await client.get("/v1/whoami", headers=auth("not-a-token-0123456789"))
    assert unknown.status_code == 401
    assert unknown.headers["content-type"] == "application/problem+json"


async def next_line(stream: Any) -> Message:
    async with asyncio.timeout(WAIT):
        while True:
            message: Message = await anext(stream)
            if message.event == "line":
                return message


async def test_the_stream_sends_the_view_then_each_change_and_ends_when_the_server_stops(
    backend: FakeLine,
) -> None:
    app = create_app(backend)
    async with (
        uvicorn_server(app) as url,
        httpx.AsyncClient(base_url=url, headers=auth(READER)) as http,
    ):
        bad = await http.get("/v1/line/stream", params={"interval": 0.01})
        assert bad.status_code == 422  # below the shortest interval
        async with http.stream("GET", "/v1/line/stream", params={"interval": 0.2}) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            stream = aiter(messages(resp))
            first = await next_line(stream)
            assert first.data is not None
            view = LineOut.model_validate(first.data)
            assert view.line_id == backend.config.line.id and view.held is None
            # a change (the line held) comes as the next snapshot
            held = await http.post("/v1/line/hold", headers=auth(ADMIN))
            assert held.status_code == 200, held.text
            second = await next_line(stream)
            assert second.data is not None and second.data["held"]["by"] == ADMIN_NAME
            # the server begins to stop: the stream ends at once instead of holding it up
            stopping_event(app).set()
            async with asyncio.timeout(WAIT):
                async for _ in stream:
                    pass


async def test_the_stream_needs_read_access(client: httpx.AsyncClient) -> None:
    resp = await client.get("/v1/line/stream")
    assert resp.status_code == 401


async def test_the_page_and_its_assets_are_local_and_locked_down(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/ui")  # the page itself holds no data: no token needed
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "object-src 'none'" in csp
    assets = re.findall(r'(?:src|href)="(/ui/assets/[^"]+)"', page.text)
    assert sorted(assets) == ["/ui/assets/line.css", "/ui/assets/line.js"]
    types = {"line.css": "text/css", "line.js": "text/javascript"}
    for path in assets:
        resp = await client.get(path)
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith(types[path.rsplit("/", 1)[1]])
        assert resp.headers["x-content-type-options"] == "nosniff"
    missing = await client.get("/ui/assets/other.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert (await client.get("/ui/", follow_redirects=False)).headers["location"] == "/ui"
    # nothing is loaded from elsewhere: no URL but the SVG namespace
    ui = resources.files("api").joinpath("ui")
    for name in ("index.html", "line.js", "line.css"):
        text = ui.joinpath(name).read_text()
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"'`)]*", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (name, urls)
    # the page never writes markup from the controller into the document
    assert "innerHTML" not in ui.joinpath("line.js").read_text().replace(
        "Nothing here uses innerHTML", ""
    )


@pytest.mark.parametrize("path", ["/ui", "/ui/assets/line.js", "/v1/line/plan", "/v1/whoami"])
async def test_the_live_routes_are_documented_where_they_belong(
    client: httpx.AsyncClient, path: str
) -> None:
    spec = (await client.get("/openapi.json")).json()
    documented = path.startswith("/v1/")
    assert (path in spec["paths"]) is documented


class Views:
    """A render function for the feed: the view's clock moves on every build, its content only
    when ``content`` changes; ``fail`` makes builds raise."""

    def __init__(self) -> None:
        self.builds = 0
        self.content = "A"
        self.fail = False

    def __call__(self) -> Rendered:
        if self.fail:
            raise RuntimeError("view broken")
        self.builds += 1
        key = json.dumps({"line": self.content})
        return Rendered(key=key, data=json.dumps({"line": self.content, "at": self.builds}))


async def test_the_feed_builds_once_for_every_watcher_and_a_clock_is_no_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    views = Views()
    feed = LineFeed(views)
    first = feed.current()
    assert feed.current() is first and views.builds == 1  # shared within MIN_AGE
    now = [time.monotonic()]
    monkeypatch.setattr(line_feed.time, "monotonic", lambda: now[0])
    for _ in range(5):
        now[0] += 2 * line_feed.MIN_AGE
        assert feed.current().version == first.version  # built again, only the clock moved
    assert views.builds == 6
    views.content = "B"
    now[0] += 2 * line_feed.MIN_AGE
    changed = feed.current()
    assert changed.version == first.version + 1 and json.loads(changed.data)["line"] == "B"


async def test_a_stream_sends_changes_and_heartbeats_and_ends_when_the_view_breaks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    views = Views()
    stream = line_feed.line_stream(LineFeed(views), 0.01, heartbeat=0.05)
    assert (await anext(stream)).startswith(b"retry: ")
    assert b'"line": "A"' in await anext(stream)
    assert await anext(stream) == b": heartbeat\n\n"  # the clock moved, nothing else
    views.content = "B"
    assert b'"line": "B"' in await anext(stream)
    views.fail = True
    with caplog.at_level(logging.ERROR, logger="api.line_feed"):
        async with asyncio.timeout(WAIT):
            async for _ in stream:
                pass  # ends: the client reconnects and tries again
        other = line_feed.line_stream(LineFeed(views), 0.01)
        async for _ in other:
            pass
    # logged once per feed that fails, with what failed
    assert [r.message for r in caplog.records].count(
        "line view could not be built; its streams end"
    ) == 2
