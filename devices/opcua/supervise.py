"""An OPC UA adapter's session life: its tasks, its outages, its teardown.

:class:`Outage` logs a lost session once when it starts and once when it ends;
:func:`close_client` tears a client down after a session. The rest is about stopping safely on
Python 3.11.

Two pitfalls of Python 3.11 make a reconnect loop ignore a request to stop. ``asyncio.wait_for``
(which asyncua connects through) can swallow a cancellation that arrives just as the attempt
ends; and a ``TaskGroup`` whose task fails after the block ended lets the group's error win over
a cancellation of its parent and leaves a stray cancellation request on it. So a session's tasks
run under :func:`until_first_failure` (no task group), which first checks
:func:`stop_if_cancelled` as a reconnect loop does each round: a session whose set-up lost a
cancellation stops before it settles into waiting for its tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from asyncua import Client

from devices.opcua.translate import TRANSPORT_ERRORS


def stop_if_cancelled() -> None:
    """Raise CancelledError when the current task has a cancellation request pending."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def until_first_failure(
    expected: type[BaseException], *coros: Coroutine[Any, Any, None], names: tuple[str, ...] = ()
) -> None:
    """Run ``coros`` as tasks until one of them ends; then stop the others. An ``expected``
    exception (the session ended) returns normally, any other is raised; a cancellation of the
    caller stops every task and propagates, also one that an earlier step of the session
    swallowed (asyncua's ``wait_for`` on Python 3.11): the tasks then never start."""
    try:
        stop_if_cancelled()
    except asyncio.CancelledError:
        for coro in coros:
            coro.close()  # never started: nothing to wait for
        raise
    tasks = [
        asyncio.create_task(coro, name=names[i] if i < len(names) else None)
        for i, coro in enumerate(coros)
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if task.cancelled():
            continue
        exc = task.exception()
        if exc is not None and not isinstance(exc, expected):
            raise exc


async def connect_client(client: Client) -> None:
    """``client.connect()``, leaving no socket open however the attempt ends: asyncua closes
    it when the attempt fails, not when it is cancelled (a shutdown, or a timeout around it)."""
    try:
        await client.connect()
    except BaseException:
        client.disconnect_socket()
        raise


async def close_client(client: Client, lost: bool, within: float, log: logging.Logger) -> None:
    """Tear the client down; after a loss only the local side is left to close."""
    try:
        async with asyncio.timeout(within):
            if lost:
                await client.close_session()
            else:
                await client.disconnect()
    except TRANSPORT_ERRORS as exc:
        log.debug("OPC UA client teardown incomplete", extra={"why": repr(exc)})
    finally:
        client.disconnect_socket()
