"""``linectl_line_held`` on ``/metrics``: 1 while an operator holds the line, from the hold to
the resume, also for a hold a restarted controller takes over; the store's own hold of the line
leaves it at 0."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from controller.service.hold import LineHoldControl
from kernel.metrics import Metrics
from tests.api.conftest import ADMIN, FakeLine, NoRobots, OfflineConveyor, Release, auth


def hold_control(backend: FakeLine, metrics: Metrics) -> LineHoldControl:
    return LineHoldControl(
        backend.clock,
        backend.store,
        OfflineConveyor(),
        NoRobots(),
        backend.robot_command,
        Release(),
        Release(),
        metrics=metrics,
    )


async def line_held(client: httpx.AsyncClient) -> float:
    """The value of linectl_line_held as ``GET /metrics`` shows it."""
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    [value] = [
        sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
        if sample.name == "linectl_line_held"
    ]
    return value


async def test_an_operators_hold_is_on_the_metrics_until_the_line_is_resumed(
    client: httpx.AsyncClient, backend: FakeLine
) -> None:
    backend.hold = hold_control(backend, backend.metrics)
    assert await line_held(client) == 0
    r = await client.post("/v1/line/hold", headers=auth(ADMIN))
    assert r.status_code == 200, r.text
    assert await line_held(client) == 1
    # asking again changes nothing
    assert (await client.post("/v1/line/hold", headers=auth(ADMIN))).json()["changed"] is False
    assert await line_held(client) == 1

    # a controller started while the line is held says so once it has read the stored hold
    restarted = Metrics()
    await hold_control(backend, restarted).restore()
    assert restarted.registry.get_sample_value("linectl_line_held") == 1

    r = await client.post("/v1/line/resume", headers=auth(ADMIN))
    assert r.status_code == 200, r.text
    assert await line_held(client) == 0
    again = Metrics()
    await hold_control(backend, again).restore()
    assert again.registry.get_sample_value("linectl_line_held") == 0


async def test_the_stores_hold_is_not_an_operators(backend: FakeLine) -> None:
    metrics = Metrics()
    hold = hold_control(backend, metrics)
    hold.store_hold("store: disk full")
    assert hold.dispatcher.store_held == "store: disk full"
    assert metrics.registry.get_sample_value("linectl_line_held") == 0
    await hold.hold_line("shift lead")
    hold.store_hold(None)  # the store writes again: the operator's hold stays
    assert metrics.registry.get_sample_value("linectl_line_held") == 1
