"""The order store: one interface (:class:`OrderStore`), backends chosen by configuration."""

from __future__ import annotations

from controller.store.base import (
    CreateOutcome,
    InvalidCursor,
    OrderStore,
    Page,
    StoreError,
    StoreUnavailable,
    UnknownOrder,
)
from controller.store.inventory import InventoryStore, LineStore
from controller.store.lease import LineLease
from kernel.config.model import FailoverConfig, StoreConfig, default_schema

__all__ = [
    "CreateOutcome",
    "InvalidCursor",
    "InventoryStore",
    "LineLease",
    "LineStore",
    "OrderStore",
    "Page",
    "StoreError",
    "StoreUnavailable",
    "UnknownOrder",
    "open_lease",
    "open_store",
]


def open_store(config: StoreConfig, line_id: str = "line-1") -> LineStore:
    """The store the configuration names, not yet opened: ``await store.open()`` before use.
    ``line_id`` names the PostgreSQL schema when the configuration names none."""
    if config.backend == "sqlite":
        from controller.store.sqlite.store import SqliteOrderStore

        return SqliteOrderStore(config.path)
    if config.backend == "postgresql":
        from controller.store.postgresql.store import PostgresOrderStore

        assert config.dsn is not None  # the configuration's validator requires it
        return PostgresOrderStore(
            config.dsn.get_secret_value(),
            config.db_schema or default_schema(line_id),
            connect_timeout=config.connect_timeout,
        )
    raise StoreError(f"unknown store backend {config.backend!r}; supported: sqlite, postgresql")


def open_lease(
    config: StoreConfig,
    line_id: str,
    failover: FailoverConfig,
    *,
    instance: str,
    api_url: str,
) -> LineLease:
    """The line's controller lease in the store the configuration names (PostgreSQL only: a
    standby shares the store with the active controller)."""
    if config.backend != "postgresql" or config.dsn is None:
        raise StoreError("a standby needs the PostgreSQL store (store.backend postgresql)")
    from controller.store.postgresql.lease import PostgresLease

    return PostgresLease(
        config.dsn.get_secret_value(),
        config.db_schema or default_schema(line_id),
        instance=instance,
        api_url=api_url,
        lease_seconds=failover.lease_seconds,
        timeout=failover.renew_seconds,
    )
