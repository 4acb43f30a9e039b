"""A client that goes away in the middle of an audited call (a request body cut off, as when a
client stops at shutdown): no traceback in the log, and what the line did is in the audit log."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from api import create_app
from tests.api.conftest import ADMIN, ADMIN_NAME, FakeLine, auth, uvicorn_server


async def cut_off_request(base_url: str, method: str, path: str, body: bytes) -> None:
    """Send ``method path`` over a real socket announcing more body than ``body``, then close
    the connection before the rest."""
    host, port = base_url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ADMIN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body) + 100}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def audit_entries(base_url: str, action: str, count: int) -> list[dict[str, Any]]:
    """The audit entries of ``action`` once there are ``count`` of them (the server writes them
    after the client has gone, so this waits for them)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        while True:
            r = await http.get("/v1/audit", params={"action": action}, headers=auth(ADMIN))
            assert r.status_code == 200, r.text
            found: list[dict[str, Any]] = r.json()["entries"]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.02)


@pytest.mark.timeout(30)
async def test_a_client_gone_mid_body_leaves_no_traceback_and_keeps_what_was_done(
    backend: FakeLine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with uvicorn_server(create_app(backend)) as base_url:
        # a command whose route reads no body: it is carried out, and its audit entry must
        # survive the client that went away before the server looked at the rest of the body
        await cut_off_request(base_url, "POST", "/v1/line/hold", b"{")
        [hold] = await asyncio.wait_for(audit_entries(base_url, "line.hold", 1), 10)
        # one the device could not take: recorded with the device's answer, as ever
        await cut_off_request(base_url, "POST", "/v1/robots/R01/resume", b"{")
        [resume] = await asyncio.wait_for(audit_entries(base_url, "robot.resume", 1), 10)
        # a command whose route reads its body: never carried out, and recorded as such
        await cut_off_request(base_url, "POST", "/v1/conveyors/C1/zones/Z03/jog", b'{"speed"')
        [jog] = await asyncio.wait_for(audit_entries(base_url, "conveyor.jog", 1), 10)

    assert (hold["who"], hold["target"], hold["status"]) == (ADMIN_NAME, "line", 200)
    assert await backend.store.line_hold() is not None  # committed, and recorded
    assert backend.hold.dispatcher.held
    assert (resume["result"], resume["status"]) == ("failed", 503)
    assert "not connected" in resume["detail"]
    assert (jog["who"], jog["target"], jog["result"]) == (ADMIN_NAME, "C1/Z03", "refused")
    assert "went away" in jog["detail"]
    assert backend.jogs == []
    errors = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    gone = [r for r in caplog.records if r.name == "api.audit"]
    assert [(r.levelno, r.action) for r in gone] == [  # type: ignore[attr-defined]
        (logging.INFO, "line.hold"),
        (logging.INFO, "robot.resume"),
        (logging.INFO, "conveyor.jog"),
    ]
