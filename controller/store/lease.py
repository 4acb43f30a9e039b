"""The line's controller lease: which of a line's controllers is active, and its term.

A line with a standby (``failover`` in the line file) has two controllers on one shared store.
The store holds one lease per line: its term (a number that grows by one with every change of
hands), the instance holding it, where that instance's API listens, and when it expires by the
database's clock. The active controller renews it; the standby tries to take it and succeeds
only once it has expired. Every write of the active controller is checked against the term under
the line's write lock (:class:`~controller.store.base.Fenced`), and every device command against
the lease's local deadline (:class:`kernel.fence.Fence`), so a controller that lost its lease
changes nothing after its successor started.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class LeaseHolder:
    """The lease as the store has it now."""

    term: int
    instance: str
    api_url: str
    acquired_at: datetime
    expires_in: float  # seconds until it expires by the database's clock; <= 0: expired

    @property
    def live(self) -> bool:
        return self.term > 0 and self.expires_in > 0

    def document(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "instance": self.instance or None,
            "api_url": self.api_url or None,
            "acquired_at": self.acquired_at.isoformat() if self.term else None,
            "live": self.live,
        }


@dataclass(frozen=True)
class Grant:
    """A lease taken (or renewed): its term, and the seconds it lasts from when it was asked."""

    term: int
    seconds: float
    previous: str  # the instance that held the term before ('' for none, or this instance)


class LineLease(Protocol):
    """The lease of one line in its store; every call may raise StoreUnavailable."""

    async def acquire(self) -> Grant | None:
        """Take the lease with the next term if it is free or expired; None while another
        controller holds it."""
        ...

    async def renew(self, term: int) -> Grant | None:
        """Extend the lease of ``term``; None when this controller no longer holds it."""
        ...

    async def release(self, term: int) -> None:
        """Let the lease of ``term`` expire now (a clean stop), so the standby takes over."""
        ...

    async def holder(self) -> LeaseHolder:
        """Who holds the lease now."""
        ...

    async def close(self) -> None: ...


class NotActive(Exception):
    """Asked of the standby what only the active controller does (an operator command, the
    stations' work): ``active`` says which controller is active and where its API listens."""

    def __init__(self, active: dict[str, Any] | None) -> None:
        where = (active or {}).get("api_url") or "unknown"
        super().__init__(f"this controller is the standby; the active controller's API: {where}")
        self.active = active
