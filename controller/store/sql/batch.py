"""Group commit of order creates: creates that arrive together share one transaction.

A commit costs one fsync whatever it holds, and the store has one writer thread, so under load
creating orders one transaction each makes the fsync the limit. :class:`CreateBatcher` sends the
first create at once; creates that arrive while that transaction runs wait and go together in the
next one, and so on. Each create runs inside its own savepoint, so one that fails is undone alone,
and every caller is answered only after the commit that holds its order has returned: an order is
durable before ``create_order`` returns, exactly as without batching.

No task is started: the next batch is submitted from the completion callback of the previous one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.orders.model import OrderIn, OrderRecord
from controller.store.base import CreateOutcome, StoreError, StoreUnavailable
from controller.store.sql.db import Connection, transaction
from controller.store.sql.ops import insert_order

Created = tuple[CreateOutcome, OrderRecord]
Outcome = Created | StoreError

MAX_BATCH = 256


def create_orders(conn: Connection, requests: list[tuple[str, OrderIn, datetime]]) -> list[Outcome]:
    """Worker thread: every request in one transaction, each in its own savepoint."""
    outcomes: list[Outcome] = []
    with transaction(conn):
        for order_id, body, at in requests:
            conn.execute("SAVEPOINT create_order")
            try:
                outcomes.append(insert_order(conn, order_id, body, at))
            except StoreUnavailable:
                raise  # the store cannot take writes: the whole batch fails, undone
            except (ValueError, StoreError) as exc:
                conn.execute("ROLLBACK TO create_order")
                failure = exc if isinstance(exc, StoreError) else StoreError(str(exc))
                outcomes.append(failure)
            conn.execute("RELEASE create_order")
    return outcomes


@dataclass
class _Waiting:
    order_id: str
    body: OrderIn
    at: datetime
    future: asyncio.Future[Created] = field(repr=False)


# Submits fn(conn, *args) to the store's worker thread and returns its future on the event loop.
Submit = Callable[..., "asyncio.Future[Any]"]


class CreateBatcher:
    """Batches :func:`create_orders` calls of one store; used from the event loop only."""

    def __init__(self, submit: Submit) -> None:
        self._submit = submit
        self._waiting: list[_Waiting] = []
        self._busy = False

    async def create(self, order_id: str, body: OrderIn, at: datetime) -> Created:
        future: asyncio.Future[Created] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(order_id, body, at, future))
        if not self._busy:
            self._flush()
        # A caller cancelled before its batch is submitted is left out of it; once submitted,
        # its create runs and the outcome is dropped.
        return await future

    def _flush(self) -> None:
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        live = [w for w in batch if not w.future.done()]
        if not live:
            if self._waiting:
                self._flush()
            return
        try:
            job = self._submit(create_orders, [(w.order_id, w.body, w.at) for w in live])
        except StoreError as exc:
            self._fail(live, exc)
            return
        self._busy = True
        job.add_done_callback(lambda done: self._answer(live, done))

    def _answer(self, batch: list[_Waiting], done: asyncio.Future[list[Outcome]]) -> None:
        self._busy = False
        if done.cancelled():
            self._fail(batch, StoreError("the order store was closed during the write"))
        elif (exc := done.exception()) is not None:
            self._fail(batch, exc)
        else:
            for waiting, outcome in zip(batch, done.result(), strict=True):
                if waiting.future.done():
                    continue
                if isinstance(outcome, StoreError):
                    waiting.future.set_exception(outcome)
                else:
                    waiting.future.set_result(outcome)
        if self._waiting:
            self._flush()

    @staticmethod
    def _fail(batch: list[_Waiting], exc: BaseException) -> None:
        for waiting in batch:
            if not waiting.future.done():
                waiting.future.set_exception(exc)
