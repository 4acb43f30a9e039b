"""The fence every device command passes, and the keeper of the line's controller lease, with a
lease of the test's own (one seam: the lease in the store) and a clock of the test's own for the
fence's deadline."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from controller.service.lease_keeper import MARGIN, LeaseKeeper, LeaseLost, Role
from controller.store.base import StoreUnavailable
from controller.store.lease import Grant, LeaseHolder
from kernel.config.model import FailoverConfig
from kernel.fence import Fence
from kernel.metrics import Metrics

CONFIG = FailoverConfig(enabled=True, lease_seconds=10.0, renew_seconds=0.02)


class Clock:
    """Monotonic seconds that move only when the test moves them."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class FakeLease:
    """The lease as the store keeps it, with failures on demand."""

    def __init__(self, *, term: int = 0, holder: str = "", live: bool = False) -> None:
        self.term, self.holder_name, self.live = term, holder, live
        self.fail = False
        self.renewals = 0
        self.renewed = asyncio.Event()  # set at every renewal tried
        self.released: list[int] = []

    async def acquire(self) -> Grant | None:
        if self.fail:
            raise StoreUnavailable("database down")
        if self.live:
            return None
        previous = self.holder_name
        self.term += 1
        self.holder_name, self.live = "me", True
        return Grant(self.term, CONFIG.lease_seconds, previous)

    async def renew(self, term: int) -> Grant | None:
        self.renewals += 1
        self.renewed.set()
        if self.fail:
            raise StoreUnavailable("database down")
        if term != self.term or self.holder_name != "me":
            return None
        return Grant(term, CONFIG.lease_seconds, "me")

    async def release(self, term: int) -> None:
        self.released.append(term)
        self.live = False

    async def holder(self) -> LeaseHolder:
        expires = 5.0 if self.live else -1.0
        return LeaseHolder(self.term, self.holder_name, "http://other", datetime.now(UTC), expires)

    async def close(self) -> None:
        pass


async def renewals(lease: FakeLease, n: int) -> None:
    """Wait (bounded) until the keeper has tried ``n`` renewals in all."""
    async with asyncio.timeout(10):
        while lease.renewals < n:
            lease.renewed.clear()
            await lease.renewed.wait()


def keeper(
    lease: FakeLease, fence: Fence, clock: Clock, metrics: Metrics | None = None
) -> LeaseKeeper:
    return LeaseKeeper(
        lease, fence, CONFIG, metrics or Metrics(), instance="me", api_url="http://me", now=clock
    )


def test_a_line_without_a_standby_is_never_fenced() -> None:
    assert Fence.unfenced().refusal() is None


def test_the_fence_opens_for_a_term_until_its_deadline_and_never_after_a_revoke() -> None:
    now = Clock()
    fence = Fence.leased(now)
    assert "standby" in (fence.refusal() or "")
    fence.grant(1, now.t + 2.0)
    assert fence.refusal() is None and fence.term == 1
    now.t += 1.9
    assert fence.refusal() is None
    now.t += 0.2
    assert "not renewed in time" in (fence.refusal() or "")
    fence.grant(1, now.t + 2.0)  # a renewal that got through late opens it again
    assert fence.refusal() is None
    with pytest.raises(ValueError, match="older"):
        fence.grant(0, now.t + 5.0)
    fence.revoke("another controller holds it now")
    assert "no longer holds" in (fence.refusal() or "")
    fence.grant(2, now.t + 10.0)
    assert fence.refusal() is not None  # revoked for good


async def test_the_standby_waits_while_another_holds_the_lease_then_takes_it_over() -> None:
    clock, metrics = Clock(), Metrics()
    lease = FakeLease(term=4, holder="other", live=True)
    fence = Fence.leased(clock)
    k = keeper(lease, fence, clock, metrics)
    taking = asyncio.create_task(k.take())
    await asyncio.sleep(0.1)
    assert not taking.done()
    assert k.document()["role"] == "standby"
    assert k.document()["active"]["instance"] == "other"
    assert fence.refusal() is not None
    assert metrics.controller_active._value.get() == 0
    lease.live = False  # the active controller's lease ran out
    assert await asyncio.wait_for(taking, 5.0) == 5
    assert k.document()["role"] == "active" and fence.refusal() is None
    assert metrics.controller_active._value.get() == 1
    assert metrics.controller_takeovers._value.get() == 1
    assert metrics.controller_term._value.get() == 5
    assert k.document()["active"] == {
        "instance": "me",
        "term": 5,
        "api_url": "http://me",
        "live": True,
    }


async def test_the_fence_closes_before_the_database_lets_the_lease_expire() -> None:
    clock = Clock()
    fence = Fence.leased(clock)
    k = keeper(FakeLease(), fence, clock)
    asked = clock.t
    await k.take()
    # the database's expiry is at least a lease's length after the renewal was asked
    clock.t = asked + CONFIG.lease_seconds * (1 - MARGIN) - 0.01
    assert fence.refusal() is None
    clock.t = asked + CONFIG.lease_seconds * (1 - MARGIN) + 0.01
    assert fence.refusal() is not None


async def test_a_lease_taken_by_another_revokes_the_fence_and_ends_the_controller() -> None:
    clock = Clock()
    lease, fence = FakeLease(), Fence.leased(clock)
    k = keeper(lease, fence, clock)
    await k.take()
    lease.holder_name, lease.term = "other", lease.term + 1
    with pytest.raises(LeaseLost, match="another controller holds it"):
        await asyncio.wait_for(k.keep(), 5.0)
    assert "no longer holds" in (fence.refusal() or "")
    assert k.role is Role.STANDBY


async def test_renewals_that_fail_until_the_deadline_end_the_controller() -> None:
    clock = Clock()
    lease, fence = FakeLease(), Fence.leased(clock)
    k = keeper(lease, fence, clock)
    await k.take()
    keeping = asyncio.create_task(k.keep())
    await renewals(lease, 2)
    assert fence.refusal() is None
    lease.fail = True  # cut off from the database
    await renewals(lease, lease.renewals + 2)  # two renewals fail
    assert not keeping.done() and fence.refusal() is None  # within the lease: carry on
    clock.t += CONFIG.lease_seconds  # no renewal got through for a lease's length
    with pytest.raises(LeaseLost, match="not renewed in time"):
        await asyncio.wait_for(keeping, 5.0)
    assert fence.refusal() is not None


async def test_a_renewal_that_gets_through_again_keeps_the_lease() -> None:
    clock = Clock()
    lease, fence = FakeLease(), Fence.leased(clock)
    k = keeper(lease, fence, clock)
    await k.take()
    keeping = asyncio.create_task(k.keep())
    lease.fail = True
    await renewals(lease, 2)  # two renewals fail
    lease.fail = False
    clock.t += CONFIG.lease_seconds / 2
    await renewals(lease, lease.renewals + 2)  # one gets through
    assert fence.refusal() is None and not keeping.done()
    keeping.cancel()


async def test_a_clean_stop_releases_the_lease() -> None:
    clock = Clock()
    lease, fence = FakeLease(), Fence.leased(clock)
    k = keeper(lease, fence, clock)
    term = await k.take()
    await k.release()
    assert lease.released == [term] and fence.refusal() is not None and k.role is Role.STANDBY
