"""The default order store: one SQLite file in WAL mode.

One connection, used only from one dedicated worker thread, so the event loop never waits on
file I/O and every statement runs in submission order. Creates that arrive together share one
transaction (:mod:`controller.store.sqlite.batch`), each answered after that commit. Every commit
is fsynced (``synchronous=FULL``): when a write returns, it survives a power cut. ``sqlite3``
errors are translated to :class:`~controller.store.base.StoreError` here, once; nothing above
this module sees a SQLite type.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from controller.orders.model import HistoryEvent, OrderIn, OrderRecord, OrderStatus, OrderType
from controller.store.base import _UNSET, CreateOutcome, Page, StoreError, StoreUnavailable
from controller.store.sqlite import changes, ops
from controller.store.sqlite.asrs import SqliteAsrsMixin
from controller.store.sqlite.audit import SqliteAuditMixin
from controller.store.sqlite.batch import CreateBatcher
from controller.store.sqlite.feed import SqliteFeedMixin
from controller.store.sqlite.inventory import SqliteInventoryMixin
from controller.store.sqlite.schema import configure, migrate

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

MAX_PAGE = 1000
PROBE_BYTES = 16384  # a write probe's row: more than a page, so it needs free pages


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class SqliteOrderStore(SqliteFeedMixin, SqliteInventoryMixin, SqliteAsrsMixin, SqliteAuditMixin):
    """:class:`~controller.store.base.OrderStore` (and
    :class:`~controller.store.inventory.InventoryStore`, :class:`~controller.store.asrs.AsrsStore`,
    :class:`~controller.store.audit.AuditStore`) on a SQLite file.

    ``open()`` creates the parent directory and the file if missing and migrates the schema;
    ``close()`` waits for queued writes, then closes the file. A store is opened once.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._state = _State.NEW
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # touched only on the worker thread
        self._init_feed()
        self._creates = CreateBatcher(self._submit_nowait)

    @property
    def path(self) -> Path:
        return self._path

    # --- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        if self._state is not _State.NEW:
            raise StoreError(f"order store {self._path} is {self._state.value}; open it only once")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linectl-store")
        try:
            version = await self._submit(self._open_sync)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._state = _State.CLOSED
            raise
        self._state = _State.OPEN
        log.info("order store open", extra={"path": str(self._path), "found_version": version})

    async def close(self) -> None:
        if self._state is not _State.OPEN:
            self._state = _State.CLOSED
            return
        self._state = _State.CLOSED
        assert self._executor is not None
        try:
            await self._submit(self._close_sync)
        finally:
            self._executor.shutdown(wait=False)
            log.info("order store closed", extra={"path": str(self._path)})

    def _open_sync(self) -> int:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            configure(conn)
            version = migrate(conn, str(self._path))
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return version

    def _close_sync(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    # --- the worker thread ----------------------------------------------------------------

    def _submit_nowait(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(conn, *args)`` queued on the worker thread; its future on the running loop."""
        if self._state is not _State.OPEN or self._executor is None:
            raise StoreError(f"order store {self._path} is {self._state.value}, not open")
        call = functools.partial(self._guarded, self._with_conn, fn, *args)
        return asyncio.wrap_future(self._executor.submit(call))

    async def _submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        call = functools.partial(self._guarded, fn, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    def _guarded(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except ops.REFUSED as exc:  # the statement itself is at fault: trying again changes nothing
            raise StoreError(f"order store {self._path}: {exc}") from exc
        except (sqlite3.Error, OSError) as exc:  # full, I/O, locked, damaged: may pass later
            raise StoreUnavailable(f"order store {self._path}: {exc}") from exc

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._state is not _State.OPEN:
            raise StoreError(f"order store {self._path} is {self._state.value}, not open")
        result = await self._submit(self._with_conn, fn, *args)
        await self._publish_changes()
        return result

    def _with_conn(self, fn: Callable[..., T], *args: Any) -> T:
        if self._conn is None:
            raise StoreError(f"order store {self._path} is closed")
        before = self._conn.total_changes
        result = fn(self._conn, *args)
        self._note_changes(self._conn, before)
        return result

    # --- the OrderStore interface ---------------------------------------------------------

    async def create_order(
        self, order_id: str, body: OrderIn, at: datetime
    ) -> tuple[CreateOutcome, OrderRecord]:
        """Insert the order with an ``accepted`` history event, idempotently on ``order_id``."""
        created = await self._creates.create(order_id, body, at)
        await self._publish_changes()
        return created

    async def get_order(self, order_id: str) -> OrderRecord | None:
        return await self._run(ops.get_order, order_id)

    async def history(self, order_id: str) -> list[HistoryEvent]:
        """The order's events, oldest first (empty for an unknown id)."""
        return await self._run(ops.history, order_id)

    async def histories(self, order_ids: Sequence[str]) -> dict[str, list[HistoryEvent]]:
        """The events of each order, oldest first, in one read."""
        return await self._run(ops.histories, list(order_ids))

    async def list_orders(
        self,
        *,
        status: OrderStatus | None = None,
        type: OrderType | None = None,
        limit: int = 100,
        cursor: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        due_after: datetime | None = None,
        due_before: datetime | None = None,
    ) -> Page:
        """Orders in arrival order. Raises :class:`~controller.store.base.InvalidCursor`."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        after = ops.decode_cursor(cursor) if cursor else 0
        bounds = {
            "created_after": created_after,
            "created_before": created_before,
            "due_after": due_after,
            "due_before": due_before,
        }
        return await self._run(ops.list_orders, status, type, limit, after, bounds)

    async def update_order(
        self,
        order_id: str,
        at: datetime,
        *,
        priority: int | None = None,
        due_at: datetime | None = None,
    ) -> OrderRecord:
        """New priority and/or due time of an accepted order (see the protocol)."""
        return await self._run(changes.update_order, order_id, at, priority, due_at)

    async def request_cancel(
        self, order_id: str, at: datetime, *, reason: str | None = None
    ) -> tuple[bool, OrderRecord]:
        """Record the WMS's cancel request once (see the protocol)."""
        return await self._run(changes.request_cancel, order_id, at, reason)

    async def record(
        self,
        order_id: str,
        event_type: str,
        at: datetime,
        *,
        status: OrderStatus | None = None,
        step: str | None = _UNSET,
        waiting_reason: str | None = _UNSET,
        picked: dict[str, int] | None = None,
        data: dict[str, Any] | None = None,
    ) -> HistoryEvent:
        """Append a history event and apply the changes in one transaction (see the protocol)."""
        return await self._run(
            ops.record, order_id, event_type, at, status, step, waiting_reason, picked, data
        )

    async def active_orders(self) -> list[OrderRecord]:
        return await self._run(ops.active_orders)

    async def ping(self) -> None:
        await self._run(_select_one)

    async def probe_write(self) -> None:
        await self._run(_probe_write)

    async def count_by_status(self) -> dict[OrderStatus, int]:
        return await self._run(ops.count_by_status)


def _select_one(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchone()


def _probe_write(conn: sqlite3.Connection) -> None:
    """Insert a row larger than a page and delete it in one committed transaction: it fails
    exactly when a real write would (no free pages, no room for the log, an I/O error)."""
    with ops.transaction(conn):
        conn.execute(
            "INSERT INTO line_state (key, value) VALUES ('store-write-probe', ?)",
            ("x" * PROBE_BYTES,),
        )
        conn.execute("DELETE FROM line_state WHERE key = 'store-write-probe'")
