"""A session's tasks stop when asked, also after Python 3.11's ``wait_for`` swallowed the
request during the session's set-up (:mod:`devices.supervisor`)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from devices.supervisor import until_first_failure


class _Ended(Exception):
    pass


async def _swallowed_cancellation() -> None:
    """What ``asyncio.wait_for`` on 3.11 can do: the task was asked to stop, the request is
    counted, and no CancelledError comes out."""
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):  # swallowed, and not uncancelled
        await asyncio.sleep(0)


async def test_a_session_whose_setup_lost_the_stop_request_does_not_start() -> None:
    started: list[str] = []

    async def forever(name: str) -> None:
        started.append(name)
        await asyncio.Event().wait()

    async def session() -> None:
        await _swallowed_cancellation()
        await until_first_failure(_Ended, forever("events"), forever("watch"))

    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):  # without the check the session would wait for ever
            await asyncio.create_task(session())
    assert started == []


async def test_the_first_task_to_end_stops_the_others() -> None:
    stopped: list[str] = []

    async def ends() -> None:
        raise _Ended

    async def waits() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.append("waits")

    await until_first_failure(_Ended, ends(), waits())
    assert stopped == ["waits"]


async def test_an_unexpected_failure_is_raised() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    async def waits() -> None:
        await asyncio.Event().wait()

    with pytest.raises(RuntimeError, match="boom"):
        await until_first_failure(_Ended, fails(), waits())
