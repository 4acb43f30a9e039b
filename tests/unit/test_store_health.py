"""The order store's health: waits between tries, one outage logged twice, the hold reason."""

from __future__ import annotations

import asyncio
import logging

import pytest

from controller.store.base import FAIL_FAST, StoreError, StoreUnavailable
from controller.store.health import StoreHealth
from kernel.backoff import Backoff
from kernel.clock import ManualClock
from kernel.config.model import StoreConfig
from kernel.metrics import Metrics

FULL = StoreUnavailable("order store line.db: database or disk is full")


class Waits:
    """The injected sleep: records each wait and yields once, never sleeping on the clock."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        await asyncio.sleep(0)


def health(
    waits: Waits | None = None, *, backlog_limit: int = 10, rng: float = 1.0
) -> tuple[StoreHealth, Metrics]:
    metrics = Metrics()
    config = StoreConfig(retry_initial=0.5, retry_max=4.0, backlog_limit=backlog_limit)
    h = StoreHealth(config, ManualClock(), metrics, sleep=waits or Waits(), rng=lambda: rng)
    return h, metrics


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_backoff_doubles_up_to_its_maximum_within_the_upper_half_and_starts_over() -> None:
    top = Backoff(0.5, 4.0, rng=lambda: 1.0)
    assert [top.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    bottom = Backoff(0.5, 4.0, rng=lambda: 0.0)
    assert [bottom.next_delay() for _ in range(3)] == [0.25, 0.5, 1.0]
    top.reset()
    assert top.next_delay() == 0.5


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h, metrics = health()
    assert value(metrics, "linectl_store_available") == 1
    with caplog.at_level(logging.INFO, logger="controller.store.health"):
        for _ in range(5):
            h.failed("record", FULL)
        assert value(metrics, "linectl_store_available") == 0
        assert h.failing is not None and h.failing.endswith("database or disk is full")
        h.succeeded()
        h.succeeded()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["order store outage started", "order store outage ended"]
    assert caplog.records[1].__dict__["failed_attempts"] == 5
    assert value(metrics, "linectl_store_write_failures_total", operation="record") == 5
    assert value(metrics, "linectl_store_available") == 1
    assert h.failing is None


def test_the_line_is_held_while_writes_fail_or_the_backlog_is_past_its_limit() -> None:
    h, metrics = health(backlog_limit=3)
    seen: list[str | None] = []
    h.listeners.append(lambda: seen.append(h.hold_reason))
    journal, queued = [3], [0]  # two sources: order events, device events not handled
    h.backlog_sources += [lambda: journal[0], lambda: queued[0]]
    h.backlog_changed()
    assert h.hold_reason is None and seen == []  # at the limit: not held, nobody told
    queued[0] = 1
    h.backlog_changed()
    assert h.hold_reason == "store: 4 events waiting to be recorded (limit 3)"
    assert value(metrics, "linectl_store_backlog") == 4
    h.failed("inventory_reserve", FULL)
    assert h.hold_reason is not None and h.hold_reason.startswith("store: writes failing since")
    h.succeeded()
    journal[0] = queued[0] = 0
    h.backlog_changed()
    assert h.hold_reason is None
    assert seen[-1] is None and all(r is not None for r in seen[:-1])


async def test_a_call_is_tried_again_after_growing_waits_until_the_store_takes_it() -> None:
    waits = Waits()
    h, metrics = health(waits)
    failures = [FULL, FULL, FULL]

    async def write() -> str:
        if failures:
            raise failures.pop()
        return "written"

    assert await h.retry("inventory_reserve", write, write=True) == "written"
    assert waits.seconds == [0.5, 1.0, 2.0]
    assert h.failing is None
    assert value(metrics, "linectl_store_write_failures_total", operation="inventory_reserve") == 3


async def test_a_read_that_passes_does_not_end_an_outage() -> None:
    h, _ = health()
    h.failed("record", FULL)

    async def read() -> int:
        return 7

    assert await h.retry("get_order", read, write=False) == 7
    assert h.failing is not None


async def test_a_call_for_an_http_request_is_tried_once() -> None:
    waits = Waits()
    h, _ = health(waits)
    calls = 0

    async def write() -> None:
        nonlocal calls
        calls += 1
        raise FULL

    token = FAIL_FAST.set(True)
    try:
        with pytest.raises(StoreUnavailable):
            await h.retry("create_order", write, write=True)
    finally:
        FAIL_FAST.reset(token)
    assert calls == 1 and waits.seconds == [] and h.failing is not None


async def test_an_error_of_the_call_itself_is_not_tried_again() -> None:
    waits = Waits()
    h, _ = health(waits)

    async def write() -> None:
        raise StoreError("order 'X' is cancelled")

    with pytest.raises(StoreError, match="cancelled"):
        await h.retry("record", write, write=True)
    assert waits.seconds == [] and h.failing is None


async def test_the_probe_ends_an_outage_when_nothing_else_writes() -> None:
    waits = Waits()
    h, metrics = health(waits)
    results: list[StoreUnavailable | None] = [FULL, FULL, None]
    probes = 0

    async def probe() -> None:
        nonlocal probes
        probes += 1
        outcome = results.pop(0)
        if outcome is not None:
            raise outcome

    watch = asyncio.create_task(h.watch(probe))
    try:
        await asyncio.sleep(0)
        assert probes == 0  # nothing to probe while the store writes
        h.failed("create_order", FULL)
        for _ in range(100):
            if h.failing is None:
                break
            await asyncio.sleep(0)
    finally:
        watch.cancel()
    assert probes == 3 and waits.seconds == [0.5, 1.0, 2.0]
    assert value(metrics, "linectl_store_write_failures_total", operation="probe_write") == 2
