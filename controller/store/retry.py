"""The order store as the controller uses it: every call tried again while the store is
unavailable, so that no task of the service ends because a disk is full.

:func:`retrying` wraps a store: each coroutine method is run through
:meth:`controller.store.health.StoreHealth.retry`, named after the method, so a call that meets
:class:`~controller.store.base.StoreUnavailable` waits (jittered, doubling) and tries again
until the store takes it; the caller's writes keep their order because it waits. Errors of the
call itself (an unknown order, a status that does not allow the change) pass unchanged.

Lifecycle calls (``open``, ``close``), waits (``wait_for_event``) and the probe pass through
untouched. Calls made for an HTTP request are tried once
(:data:`~controller.store.base.FAIL_FAST`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, cast

from controller.store.health import StoreHealth
from controller.store.inventory import LineStore

PASS_THROUGH = frozenset({"open", "close", "wait_for_event", "probe_write"})

# Calls that only read: their success says nothing about whether writes work again.
READS = frozenset(
    {
        "ping",
        "get_order",
        "history",
        "histories",
        "list_orders",
        "active_orders",
        "count_by_status",
        "events_after",
        "last_event_seq",
        "inventory_stock",
        "inventory_tote_reservations",
        "inventory_totes",
        "inventory_movements",
        "inventory_events",
        "inventory_low_skus",
        "reject_totes",
        "reject_tote",
        "reject_totes_open",
        "asrs_load",
        "asrs_last_sequences",
        "asrs_tote_locations",
        "asrs_requests",
        "asrs_commands",
        "list_audit",
        "line_hold",
        "feed_cursor",
        "due_deliveries",
        "next_delivery_due",
        "pending_deliveries",
    }
)


class RetryingStore:
    """A store whose calls are retried while it is unavailable (see the module docstring)."""

    def __init__(self, store: LineStore, health: StoreHealth) -> None:
        self.inner = store
        self.health = health

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name.startswith("_") or name in PASS_THROUGH or not inspect.iscoroutinefunction(attr):
            return attr
        return _retried(self.health, name, attr)


def _retried(
    health: StoreHealth, name: str, method: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    write = name not in READS

    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        return await health.retry(name, lambda: method(*args, **kwargs), write=write)

    return call


def retrying(store: LineStore, health: StoreHealth) -> LineStore:
    """``store`` with its calls retried while it is unavailable; the same interface."""
    return cast(LineStore, RetryingStore(store, health))


def unwrapped(store: LineStore) -> LineStore:
    """The store under :func:`retrying` (``store`` itself when it is not wrapped)."""
    return store.inner if isinstance(store, RetryingStore) else store
