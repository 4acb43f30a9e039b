"""The order store over SQL: one class for every engine.

:class:`SqlStore` is what the controller and the API hold. It is made of parts that each own some
of the tables (orders, the event feed, stock, reject totes, AS/RS commands, the audit log); they
all run their statements through one :class:`~controller.store.sql.worker.StoreWorker`, so they
share one connection, one worker thread and its transactions. The store's methods are those
parts' methods, named as the store protocols name them. The engine (SQLite,
:class:`~controller.store.sqlite.store.SqliteOrderStore`; PostgreSQL,
:class:`~controller.store.postgresql.store.PostgresOrderStore`) only connects, migrates and
translates its driver's errors.
"""

from __future__ import annotations

import logging

from controller.store.sql.asrs import SqlAsrsCommands
from controller.store.sql.audit import SqlAuditLog
from controller.store.sql.db import Connection, transaction
from controller.store.sql.feed import SqlEventFeed
from controller.store.sql.inventory.parts import SqlInventory, SqlRejectTotes
from controller.store.sql.orders import SqlOrders
from controller.store.sql.worker import Engine, StoreWorker

log = logging.getLogger(__name__)

PROBE_BYTES = 16384  # a write probe's row: more than a page, so it needs free pages


class SqlStore:
    """:class:`~controller.store.inventory.LineStore` (orders, stock, reject totes, AS/RS
    commands, the audit log) and :class:`~controller.store.outbox.OutboxStore` on an engine.

    ``open()`` connects and migrates the schema; ``close()`` waits for queued writes, then
    closes the connection. A store is opened once.

    The protocol methods are the parts' bound methods, set on the instance: to wrap one (a test
    that stalls a write, say), assign to it on the instance; a subclass's method of the same
    name would be shadowed.
    """

    def __init__(self, engine: Engine) -> None:
        self._writer = StoreWorker(engine)
        orders = SqlOrders(self._writer)
        feed = SqlEventFeed(self._writer)
        inventory = SqlInventory(self._writer)
        rejects = SqlRejectTotes(self._writer)
        asrs = SqlAsrsCommands(self._writer)
        audit = SqlAuditLog(self._writer)

        # OrderStore (controller.store.base): orders, their history and the event feed
        self.create_order = orders.create
        self.get_order = orders.get
        self.history = orders.history
        self.histories = orders.histories
        self.list_orders = orders.page
        self.update_order = orders.update
        self.request_cancel = orders.request_cancel
        self.record = orders.record
        self.active_orders = orders.active
        self.count_by_status = orders.count_by_status
        self.events_after = feed.events_after
        self.last_event_seq = feed.last_event_seq
        self.wait_for_event = feed.wait_for_event

        # OutboxStore (controller.store.outbox): the webhook outbox
        self.feed_cursor = feed.feed_cursor
        self.fan_out = feed.fan_out
        self.due_deliveries = feed.due_deliveries
        self.next_delivery_due = feed.next_delivery_due
        self.finish_attempt = feed.finish_attempt
        self.pending_deliveries = feed.pending_deliveries

        # InventoryStore (controller.store.inventory): stock, reservations and the ledger
        self.inventory_initial_load = inventory.initial_load
        self.inventory_stock = inventory.stock
        self.inventory_reserve = inventory.reserve
        self.inventory_release = inventory.release
        self.inventory_release_open = inventory.release_open
        self.inventory_reserve_totes = inventory.reserve_totes
        self.inventory_confirm_tote_pick = inventory.confirm_tote_pick
        self.inventory_tote_reservations = inventory.tote_reservations
        self.inventory_totes = inventory.totes
        self.inventory_confirm_pick = inventory.confirm_pick
        self.inventory_count = inventory.count
        self.inventory_move_tote = inventory.move_tote
        self.inventory_adjust = inventory.adjust
        self.inventory_reconcile = inventory.reconcile
        self.inventory_movements = inventory.movements
        self.inventory_events = inventory.events
        self.inventory_low_skus = inventory.low_skus

        # RejectToteStore (controller.store.reject_totes): totes sent to the reject chute
        self.reject_tote_register = rejects.register
        self.reject_totes = rejects.listing
        self.reject_tote = rejects.find
        self.reject_totes_open = rejects.open_totals
        self.reject_tote_restock = rejects.restock
        self.reject_tote_write_off = rejects.write_off

        # AsrsStore (controller.store.asrs): transport requests, crane commands, journal numbers
        self.asrs_load = asrs.load
        self.asrs_last_sequences = asrs.last_sequences
        self.asrs_save = asrs.save
        self.asrs_tote_locations = asrs.tote_locations
        self.asrs_requests = asrs.requests
        self.asrs_commands = asrs.commands

        # AuditStore (controller.store.audit): the audit log and the line's hold
        self.append_audit = audit.append
        self.list_audit = audit.entries
        self.line_hold = audit.line_hold
        self.set_line_hold = audit.set_line_hold

    @property
    def where(self) -> str:
        """The store as messages name it."""
        return self._writer.where

    # --- the store as a whole -------------------------------------------------------------

    async def open(self) -> None:
        version = await self._writer.open()
        log.info("order store open", extra={"store": self.where, "found_version": version})

    async def close(self) -> None:
        was_open = self._writer.is_open
        try:
            await self._writer.close()
        finally:
            if was_open:
                log.info("order store closed", extra={"store": self.where})

    async def fence_writes(self, term: int) -> None:
        """From now on every write of this store is refused unless the line's controller lease
        is still of ``term`` (a controller with a standby, once active)."""
        await self._writer.run(_fence, self._writer.engine, term)

    async def ping(self) -> None:
        await self._writer.run(select_one)

    async def probe_write(self) -> None:
        await self._writer.run(probe_write)


def _fence(conn: Connection, engine: Engine, term: int) -> None:
    engine.fence_writes(term)


def select_one(conn: Connection) -> None:
    conn.execute("SELECT 1").fetchone()


def probe_write(conn: Connection) -> None:
    """Insert a row larger than a page and delete it in one committed transaction: it fails
    exactly when a real write would (no free pages, no room for the log, an I/O error)."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO line_state (key, value) VALUES ('store-write-probe', ?)",
            ("x" * PROBE_BYTES,),
        )
        conn.execute("DELETE FROM line_state WHERE key = 'store-write-probe'")
