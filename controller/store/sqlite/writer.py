"""The SQLite store's one connection and the one thread that uses it.

Every statement of the store runs on that thread, in the order it was submitted, so the event
loop never waits on file I/O and no two store calls interleave. A write is one ``BEGIN IMMEDIATE``
transaction (:func:`transaction`) and every commit is fsynced (``synchronous=FULL``): when a call
returns, its write survives a power cut. ``sqlite3`` errors are translated to
:class:`~controller.store.base.StoreError` here, once; nothing above this module sees a SQLite
type.

New history events are announced through an in-process
:class:`~controller.store.event_signal.EventSignal`: the worker notes the newest event ``seq``
after every call that changed rows, and the event loop publishes it once the call has returned,
that is after its commit, so a reader woken by the signal always finds the event on disk.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from controller.store.base import StoreError, StoreUnavailable
from controller.store.event_signal import EventSignal
from controller.store.sqlite import events
from controller.store.sqlite.schema import configure, migrate

P = ParamSpec("P")
T = TypeVar("T")

# sqlite3 errors of the statement rather than of the file: trying again changes nothing. Every
# other sqlite3 error (full, I/O, locked, damaged) is the store being unavailable.
REFUSED = (
    sqlite3.IntegrityError,
    sqlite3.ProgrammingError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
    sqlite3.NotSupportedError,
)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed on success, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class SqliteWriter:
    """The connection, its worker thread and the event signal that every part of the SQLite
    store shares.

    A part hands the writer a plain function ``fn(conn, *args)``; :meth:`run` executes it on the
    worker thread and returns its result on the event loop. The writer is opened once; closing it
    waits for the calls already queued.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._state = _State.NEW
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # touched only on the worker thread
        self._signal = EventSignal()
        self._noted_head: int | None = None  # written on the worker thread, read on the loop

    @property
    def path(self) -> Path:
        return self._path

    @property
    def is_open(self) -> bool:
        return self._state is _State.OPEN

    # --- lifecycle ------------------------------------------------------------------------

    async def open(self) -> int:
        """Start the worker thread, open (or create) the file and migrate its schema; the schema
        version the file had before."""
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
        return version

    async def close(self) -> None:
        """Close the file after the calls already queued, and stop the worker thread."""
        if self._state is not _State.OPEN:
            self._state = _State.CLOSED
            return
        self._state = _State.CLOSED
        assert self._executor is not None
        try:
            await self._submit(self._close_sync)
        finally:
            self._executor.shutdown(wait=False)

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

    # --- running calls on the worker thread -----------------------------------------------

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` on the worker thread; once it has returned (a write: committed),
        readers waiting for newer events are woken."""
        if self._state is not _State.OPEN:
            raise StoreError(f"order store {self._path} is {self._state.value}, not open")
        result = await self._submit(self._with_conn, fn, *args)
        await self.publish_changes()
        return result

    def submit_nowait(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(conn, *args)`` queued on the worker thread; its future on the running loop. The
        caller calls :meth:`publish_changes` once it has the result."""
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
        except REFUSED as exc:  # the statement itself is at fault: trying again changes nothing
            raise StoreError(f"order store {self._path}: {exc}") from exc
        except (sqlite3.Error, OSError) as exc:  # full, I/O, locked, damaged: may pass later
            raise StoreUnavailable(f"order store {self._path}: {exc}") from exc

    def _with_conn(self, fn: Callable[..., T], *args: Any) -> T:
        if self._conn is None:
            raise StoreError(f"order store {self._path} is closed")
        before = self._conn.total_changes
        result = fn(self._conn, *args)
        self._note_changes(self._conn, before)
        return result

    # --- new events -----------------------------------------------------------------------

    def _note_changes(self, conn: sqlite3.Connection, changes_before: int) -> None:
        """Worker thread, after a call: remember the newest event if rows were changed."""
        if self._noted_head is None or conn.total_changes != changes_before:
            self._noted_head = events.last_event_seq(conn)

    async def publish_changes(self) -> None:
        """Event loop, after a call returned: wake readers waiting for newer events."""
        head = self._noted_head
        if head is not None:
            await self._signal.advance(head)

    async def wait_for_event(self, after_seq: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait up to ``timeout`` wall seconds for an event newer than ``after_seq`` to be
        committed by this process; True if there is one."""
        if self._noted_head is None:
            await self.run(events.last_event_seq)  # learns the head of a freshly opened file
        return await self._signal.wait_beyond(after_seq, timeout)
