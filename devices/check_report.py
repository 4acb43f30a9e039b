"""What a commissioning check reports: one value per device, one finding per thing looked for.

Outcomes are values, never exceptions: a :class:`DeviceReport` lists a :class:`Finding` for each
node or topic looked for, with its :class:`Status` (an unreachable endpoint is a finding too),
and the facts read on the way (namespace index, PackML state, a robot's version and operating
mode). ``linectl devices check --json`` and the API print :meth:`DeviceReport.as_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    FOUND = "found"
    MISSING = "missing"
    WRONG_TYPE = "wrong type"
    INVALID = "invalid"  # a message that does not validate against its schema
    OFFLINE = "offline"  # a robot whose connection message says it is not ONLINE
    UNREACHABLE = "unreachable"
    # the server answered and said no: login, certificate trust, pin, security
    REFUSED = "refused"
    # worth knowing, not a problem: something optional the controller can work without
    NOTE = "note"


@dataclass(frozen=True)
class Finding:
    """One thing looked for: a browse path, or a robot's topic."""

    item: str
    status: Status
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (Status.FOUND, Status.NOTE)


@dataclass(frozen=True)
class DeviceReport:
    """What was found on one device; ``ok`` when everything expected is there and right."""

    device: str
    address: str
    findings: tuple[Finding, ...]
    facts: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return bool(self.findings) and all(f.ok for f in self.findings)

    def problems(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    def as_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "address": self.address,
            "ok": self.ok,
            "facts": dict(self.facts),
            "found": sum(1 for f in self.findings if f.ok),
            "findings": [
                {"item": f.item, "status": f.status.value, "detail": f.detail}
                for f in self.findings
            ],
        }
