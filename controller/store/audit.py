"""The audit log and the line's operator state, as the store keeps them.

Every operator command that reaches the API (``line:operate``: line hold and resume, robot and
conveyor commands, jogs, device checks) is appended as one :class:`AuditEntry`: who asked (the
token's name, ``anonymous`` or ``invalid-token``, never the token), what (an action and its
target with the parameters asked for), when (the line's clock, UTC) and how it ended. Entries are
never changed or removed. The line's hold (who held it and since when) is kept beside them so it
outlives a restart of the controller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class AuditResult(StrEnum):
    OK = "ok"  # done as asked
    REFUSED = "refused"  # not done: no or a wrong token, a missing scope, bad input, wrong state
    FAILED = "failed"  # asked for, but a device could not take it (or only some could)


@dataclass(frozen=True)
class AuditEntry:
    """One operator command and its outcome; ``seq`` is 0 until it is stored."""

    at: datetime
    who: str
    action: str  # for example line.hold, robot.pause, conveyor.jog, devices.check
    target: str  # the line, a robot's serial, a conveyor (and zone); '' when none
    params: dict[str, Any]
    result: AuditResult
    status: int  # the HTTP status of the answer
    detail: str = ""
    seq: int = 0

    def document(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "who": self.who,
            "action": self.action,
            "target": self.target,
            "params": self.params,
            "result": self.result.value,
            "status": self.status,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to list; every given criterion must hold (``since`` is inclusive)."""

    action: str | None = None
    who: str | None = None
    result: AuditResult | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry] = field(default_factory=list)
    next_cursor: str | None = None


@dataclass(frozen=True)
class LineHold:
    """The line is held: since when and by whom, and the robots the hold paused (a resume
    resumes those, not robots an operator had paused on their own before)."""

    by: str
    since: datetime
    paused: tuple[str, ...] = ()


class AuditStore(Protocol):
    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        """Store the entry; returns it with its ``seq``."""
        ...

    async def list_audit(
        self, where: AuditFilter, *, limit: int = 100, cursor: str | None = None
    ) -> AuditPage:
        """Entries matching ``where``, newest first. Raises
        :class:`~controller.store.base.InvalidCursor` for a cursor this store did not issue."""
        ...

    async def line_hold(self) -> LineHold | None:
        """The line's hold as last stored; None when the line is not held."""
        ...

    async def set_line_hold(self, hold: LineHold | None) -> None:
        """Store the line's hold (None: released)."""
        ...
