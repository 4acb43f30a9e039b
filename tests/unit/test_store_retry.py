"""The store as the controller uses it: calls wait out an unavailable store; the service's
tasks survive a store that refuses a call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controller.service.service import LineService
from controller.store.base import StoreError, StoreUnavailable, UnknownOrder
from controller.store.health import StoreHealth
from controller.store.retry import RetryingStore, retrying, unwrapped
from kernel.clock import ManualClock
from kernel.config.model import LineConfig, StoreConfig
from kernel.metrics import Metrics

FULL = StoreUnavailable("order store line.db: database or disk is full")


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        await asyncio.sleep(0)


class Inner:
    """A store whose next calls fail as scripted."""

    path = "line.db"

    def __init__(self) -> None:
        self.failures: list[Exception] = []
        self.calls: list[str] = []

    async def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        if self.failures:
            raise self.failures.pop(0)

    async def inventory_reserve(self, order_id: str, **kw: Any) -> str:
        await self._maybe_fail("inventory_reserve")
        return f"reserved {order_id}"

    async def get_order(self, order_id: str) -> str:
        await self._maybe_fail("get_order")
        return order_id

    async def close(self) -> None:
        await self._maybe_fail("close")


def wrapped() -> tuple[Any, Inner, StoreHealth, Waits]:
    inner, waits = Inner(), Waits()
    health = StoreHealth(
        StoreConfig(retry_initial=0.1, retry_max=0.4),
        ManualClock(),
        Metrics(),
        sleep=waits,
        rng=lambda: 1.0,
    )
    return retrying(inner, health), inner, health, waits  # type: ignore[arg-type]


async def test_a_write_waits_out_the_outage_and_the_outage_ends_with_it() -> None:
    store, inner, health, waits = wrapped()
    inner.failures = [FULL, FULL, FULL]
    assert await store.inventory_reserve("A", picks=[]) == "reserved A"
    assert inner.calls == ["inventory_reserve"] * 4
    assert waits.seconds == [0.1, 0.2, 0.4] and health.failing is None


async def test_a_read_waits_too_but_its_success_does_not_end_the_outage() -> None:
    store, inner, health, _ = wrapped()
    inner.failures = [FULL]
    assert await store.get_order("A") == "A"
    assert health.failing is not None


async def test_errors_of_the_call_and_lifecycle_calls_pass_at_once() -> None:
    store, inner, _, waits = wrapped()
    inner.failures = [UnknownOrder("unknown order 'A'")]
    with pytest.raises(UnknownOrder):
        await store.inventory_reserve("A")
    inner.failures = [FULL]
    with pytest.raises(StoreUnavailable):
        await store.close()  # not tried again: shutting down does not wait for the disk
    assert waits.seconds == [] and store.path == "line.db"
    assert isinstance(store, RetryingStore) and unwrapped(store) is inner  # type: ignore[comparison-overlap]


async def test_a_task_ended_by_a_store_error_is_started_again(reference_line: LineConfig) -> None:
    service = LineService(reference_line, ManualClock())
    waits = Waits()
    service.store_health._sleep = waits
    rounds: list[int] = []

    async def loop() -> None:
        rounds.append(len(rounds))
        if len(rounds) < 3:
            raise StoreError("order 'A' is cancelled")

    await service._surviving("orchestrator.dispatch", loop)
    assert rounds == [0, 1, 2] and len(waits.seconds) == 2
