"""One vocabulary for driving the documented conveyor model (docs/opcua-model.md) from either
side: the documented PackML table, the plain values a side answers in, and :class:`Driver`, the
interface both sides implement (:mod:`tests.contract.client_driver`, a generic asyncua client, and
:mod:`tests.contract.adapter_driver`, linectl's sorter adapter), so one contract case reads the
same for either side. Refusals are values (:class:`Refused`); anything else that goes wrong (a
lost connection, an unexpected exception) fails the case.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from kernel.clock import Clock
from kernel.config.model import LineConfig
from simulators.conveyor import ConveyorSimulator

WAIT = 5.0  # wall seconds for anything to show; a loop takes 0.18 s at time scale 100

# --- the documented PackML table (docs/opcua-model.md, PackML unit) ------------------------------

STATES = ("Stopped", "Idle", "Execute", "Held", "Suspended", "Complete", "Aborted")
COMMANDS = ("Reset", "Start", "Hold", "Unhold", "Suspend", "Unsuspend", "Stop", "Abort", "Clear")
_VALID_IN: dict[str, tuple[tuple[str, ...], str]] = {
    "Reset": (("Stopped", "Complete"), "Idle"),
    "Start": (("Idle",), "Execute"),
    "Hold": (("Execute", "Suspended"), "Held"),
    "Unhold": (("Held",), "Execute"),
    "Suspend": (("Execute",), "Suspended"),
    "Unsuspend": (("Suspended",), "Execute"),
    "Stop": (("Idle", "Execute", "Held", "Suspended", "Complete"), "Stopped"),
    "Abort": (tuple(s for s in STATES if s != "Aborted"), "Aborted"),
    "Clear": (("Aborted",), "Stopped"),
}
# (command, state it is valid in) -> state the unit settles in
TRANSITIONS: dict[tuple[str, str], str] = {
    (command, state): target
    for command, (valid_in, target) in _VALID_IN.items()
    for state in valid_in
}


def path_to(start: str, goal: str) -> list[str]:
    """The shortest list of documented commands that takes the unit from ``start`` to ``goal``."""
    routes: dict[str, list[str]] = {start: []}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for state in frontier:
            for (command, source), target in TRANSITIONS.items():
                if source == state and target not in routes:
                    routes[target] = [*routes[state], command]
                    following.append(target)
        frontier = following
    if goal not in routes:
        raise ValueError(f"no documented command leads from {start} to {goal}")
    return routes[goal]


# --- plain values -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    scanner_id: str
    item_id: str
    codes: tuple[str, ...]
    at: datetime
    # NoRead / MultiRead as the event carries them; None where the side does not show them
    # (the adapter's ItemScanned has the codes only)
    no_read: bool | None = None
    multi_read: bool | None = None


@dataclass(frozen=True)
class Completion:
    divert_id: str
    item_id: str
    chute_id: str
    ok: bool
    at: datetime


Event = Scan | Completion


@dataclass(frozen=True)
class ChuteLevel:
    full: bool
    enabled: bool
    count: int


@dataclass(frozen=True)
class Accepted:
    pass


@dataclass(frozen=True)
class Refused:
    status: str | None  # the OPC UA status name, None where the side does not show it
    detail: str


Outcome = Accepted | Refused


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = WAIT) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``within`` wall seconds."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.01)


# --- the interface both sides implement -----------------------------------------------------------


class Driver(ABC):
    """One side of the contract, opened against a running simulator."""

    kind: str
    shows_status: bool  # refusals carry the OPC UA status name

    def __init__(self, sim: ConveyorSimulator, config: LineConfig, clock: Clock) -> None:
        self.sim = sim
        self.config = config
        self.clock = clock
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.inducted: list[str] = []

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def command(self, name: str) -> Outcome:
        """Send a PackML command."""

    @abstractmethod
    async def state(self) -> str:
        """The PackML state name the side shows now."""

    @abstractmethod
    async def divert(self, item_id: str, chute_id: str) -> Outcome: ...

    @abstractmethod
    async def chute(self, chute_id: str) -> ChuteLevel: ...

    @abstractmethod
    async def jog(self, zone_id: str, speed: float, seconds: float) -> Outcome: ...

    @abstractmethod
    async def alive(self) -> bool:
        """The session still stands (and, for the adapter, never dropped)."""

    @abstractmethod
    async def _induct(self, tote_id: str, zone_id: str) -> str: ...

    async def induct(self, tote_id: str, zone_id: str = "Z01") -> str:
        item_id = await self._induct(tote_id, zone_id)
        self.inducted.append(item_id)
        return item_id

    async def next_event(self, match: Callable[[Event], bool], what: str) -> Event:
        """The next event that ``match`` accepts (others are passed over)."""
        try:
            async with asyncio.timeout(WAIT):
                while True:
                    event = await self.events.get()
                    if match(event):
                        return event
        except TimeoutError:
            raise AssertionError(f"no {what} within {WAIT} s") from None

    async def scan_of(self, item_id: str) -> Scan:
        event = await self.next_event(
            lambda e: isinstance(e, Scan) and e.item_id == item_id, f"scan of {item_id}"
        )
        assert isinstance(event, Scan)
        return event

    async def completion_of(self, item_id: str) -> Completion:
        event = await self.next_event(
            lambda e: isinstance(e, Completion) and e.item_id == item_id,
            f"divert completion of {item_id}",
        )
        assert isinstance(event, Completion)
        return event

    async def reach(self, goal: str) -> None:
        """Walk the unit to ``goal`` with documented commands (arranging a case)."""
        for command in path_to(await self.state(), goal):
            outcome = await self.command(command)
            assert outcome == Accepted(), f"{command} on the way to {goal}: {outcome}"
        assert await self.state() == goal
