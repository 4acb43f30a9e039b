"""Running a session's tasks and stopping them, safely on Python 3.11.

Two pitfalls of Python 3.11 make a reconnect loop ignore a request to stop. ``asyncio.wait_for``
(which asyncua connects through) can swallow a cancellation that arrives just as the attempt
ends; and a ``TaskGroup`` whose task fails after the block ended lets the group's error win over
a cancellation of its parent and leaves a stray cancellation request on it. So a session's tasks
run under :func:`until_first_failure` (no task group), and a reconnect loop checks
:func:`stop_if_cancelled` each round.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


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
    caller stops every task and propagates."""
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
