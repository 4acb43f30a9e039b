"""What the API shows of an order store that cannot write: readiness with its reason, the
store's hold of the line, and requests that fail at once instead of waiting for the disk."""

from __future__ import annotations

import logging

import httpx
import pytest

from api.store_calls import FailFastMiddleware
from controller.service.hold import LineHoldControl
from controller.store.base import FAIL_FAST, StoreUnavailable
from tests.api.conftest import (
    WRITER,
    FakeLine,
    NoRobots,
    OfflineConveyor,
    Release,
    auth,
    b2c_body,
)

FAILING = "writes failing since 2026-12-04T08:00:00+00:00: database or disk is full"


async def test_readyz_names_the_store_and_why_it_is_not_ready(
    client: httpx.AsyncClient, backend: FakeLine
) -> None:
    backend.ready["store"] = False
    backend.ready_reasons = {"store": FAILING}
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["detail"] == f"Not ready: store: {FAILING}"
    assert problem["not_ready"] == ["store"] and problem["reasons"] == {"store": FAILING}
    backend.ready["store"] = True
    assert (await client.get("/readyz")).status_code == 200


def hold_of(backend: FakeLine) -> tuple[LineHoldControl, Release, Release]:
    release, cranes = Release(), Release()
    hold = LineHoldControl(
        backend.clock,
        backend.store,
        OfflineConveyor(),
        NoRobots(),
        backend.robot_command,
        release,
        cranes,
    )
    return hold, release, cranes


async def test_the_store_holds_releases_and_crane_commands_until_it_writes_again(
    backend: FakeLine,
) -> None:
    hold, release, cranes = hold_of(backend)
    hold.store_hold(f"store: {FAILING}")
    assert release.store_held == f"store: {FAILING}" and cranes.held
    assert not release.held  # no operator hold: the queue records no line_held waits
    # an operator's resume does not release crane commands while the store cannot write
    resumed = await hold.resume_line("shift lead")
    asrs = next(d for d in resumed.document()["devices"] if d["device"] == "asrs")
    assert asrs["detail"] == "crane commands still held: the order store cannot write"
    assert cranes.held
    hold.store_hold(None)
    assert release.store_held is None and not cranes.held and not release.held


async def test_an_operator_hold_outlasts_the_store_hold(backend: FakeLine) -> None:
    hold, release, cranes = hold_of(backend)
    await hold.hold_line("shift lead")
    hold.store_hold("store: 10001 events waiting to be recorded (limit 10000)")
    hold.store_hold(None)
    assert release.held and cranes.held and release.store_held is None
    await hold.resume_line("shift lead")
    assert not release.held and not cranes.held


async def test_store_calls_made_for_a_request_are_tried_once() -> None:
    seen: list[bool] = []

    async def app(scope: object, receive: object, send: object) -> None:
        seen.append(FAIL_FAST.get())

    middleware = FailFastMiddleware(app)
    await middleware({"type": "http"}, None, None)  # type: ignore[arg-type]
    await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == [True, False] and FAIL_FAST.get() is False


async def test_an_order_the_store_cannot_write_gets_a_503_and_no_error_line_per_request(
    client: httpx.AsyncClient,
    backend: FakeLine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def full(*args: object, **kwargs: object) -> object:
        raise StoreUnavailable("order store line.db: database or disk is full")

    monkeypatch.setattr(backend.store, "create_order", full)
    with caplog.at_level(logging.INFO, logger="api.errors"):
        r = await client.put("/v1/orders/O-1", json=b2c_body(), headers=auth(WRITER))
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.json()["detail"] == "The order store is not available; retry later"
    assert [rec for rec in caplog.records if rec.name == "api.errors"] == []
    assert backend.accepted == []
