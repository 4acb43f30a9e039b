import asyncio

import pytest

from kernel.clock import ManualClock, ScaledClock


async def test_manual_clock_wakes_sleepers_in_deadline_order() -> None:
    clock = ManualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    async with asyncio.TaskGroup() as tg:
        tg.create_task(sleeper("b", 5))
        tg.create_task(sleeper("a", 2))
        tg.create_task(sleeper("c", 50))
        await asyncio.sleep(0)
        await clock.advance(10)
        assert woke == [("a", 2), ("b", 5)]
        assert clock.pending == 1
        await clock.advance(40)
    assert woke[-1] == ("c", 50)
    assert clock.now() == 50


def test_scaled_clock_runs_faster_than_wall() -> None:
    clock = ScaledClock(100)
    assert clock.wall_seconds(10) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        ScaledClock(0)
