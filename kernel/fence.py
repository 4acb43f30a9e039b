"""Whether this controller may command the line's devices now: the gate of every device command.

A line run by one controller is never fenced (:meth:`Fence.unfenced`). A line with a standby
(``failover`` in the line file) is commanded only by the controller that holds the line's lease
in the store: the lease keeper :meth:`grants <Fence.grant>` the fence a term and a deadline on
the monotonic clock, no later than the lease's expiry as the database sees it, and renews it;
once the deadline passes without a renewal, or the lease is :meth:`revoked <Fence.revoke>`, every
device command is refused before anything is sent, so a controller that lost its lease (a
network cut to the database, a process stalled) never commands a device the new active one
already commands.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Fence:
    """A term and the monotonic deadline until which commands of that term may go out."""

    def __init__(self, *, fenced: bool, now: Callable[[], float] = time.monotonic) -> None:
        self._fenced = fenced
        self._now = now
        self._term = 0
        self._until = float("-inf")
        self._revoked: str | None = None

    @classmethod
    def unfenced(cls) -> Fence:
        """The fence of a line run by one controller: every command may go out."""
        return cls(fenced=False)

    @classmethod
    def leased(cls, now: Callable[[], float] = time.monotonic) -> Fence:
        """The fence of a controller with a standby: closed until a lease is granted."""
        return cls(fenced=True, now=now)

    @property
    def term(self) -> int:
        """The lease's term (0 before any, and on a line without a standby)."""
        return self._term

    def grant(self, term: int, until: float) -> None:
        """Commands of ``term`` may go out until ``until`` (monotonic seconds)."""
        if self._revoked is not None:
            return
        if term < self._term:
            raise ValueError(f"term {term} is older than the fence's term {self._term}")
        if term > self._term:
            self._term, self._until = term, until
        else:
            self._until = max(self._until, until)

    def revoke(self, reason: str) -> None:
        """No command goes out any more, whatever the deadline."""
        if self._revoked is None:
            self._revoked = reason

    def refusal(self) -> str | None:
        """Why a device command may not go out now; None when it may."""
        if not self._fenced:
            return None
        if self._revoked is not None:
            return f"this controller no longer holds the line's lease: {self._revoked}"
        if self._term == 0:
            return "this controller is the standby: it holds no lease of the line"
        if self._now() >= self._until:
            return f"the lease of term {self._term} was not renewed in time"
        return None
