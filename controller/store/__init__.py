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
from kernel.config.model import StoreConfig

__all__ = [
    "CreateOutcome",
    "InvalidCursor",
    "InventoryStore",
    "LineStore",
    "OrderStore",
    "Page",
    "StoreError",
    "StoreUnavailable",
    "UnknownOrder",
    "open_store",
]


def open_store(config: StoreConfig) -> LineStore:
    """The store the configuration names, not yet opened: ``await store.open()`` before use."""
    if config.backend == "sqlite":
        from controller.store.sqlite.store import SqliteOrderStore

        return SqliteOrderStore(config.path)
    raise StoreError(f"unknown store backend {config.backend!r}; supported: sqlite")
