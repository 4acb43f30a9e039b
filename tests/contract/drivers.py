"""Two ways to drive the documented conveyor model (docs/opcua-model.md), one vocabulary.

:class:`ClientDriver` is a generic asyncua client that knows nothing but the namespace URI and
the browse paths of the model. :class:`AdapterDriver` is linectl's sorter adapter
(:class:`devices.opcua.OpcUaSorter`). Both answer in the plain values below, so one contract
case reads the same for either side. Refusals are values (:class:`Refused`); anything else that
goes wrong (a lost connection, an unexpected exception) fails the case.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncua import Client, Node, ua
from asyncua.common.subscription import OpcEvent, Subscription

from controller.clock import Clock
from controller.config.model import LineConfig
from controller.metrics import Metrics
from devices.base import ConveyorAvailability, DeviceEvent, ItemDiverted, ItemScanned
from devices.errors import CommandRejected
from devices.opcua import OpcUaSorter
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


def _utc(value: Any) -> datetime:
    assert isinstance(value, datetime), f"event Time is {value!r}"
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- drivers ------------------------------------------------------------------------------------


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


class ClientDriver(Driver):
    """A generic asyncua client: the namespace URI and the documented browse paths, no more."""

    kind = "client"
    shows_status = True

    async def open(self) -> None:
        conv = self.config.conveyor
        self._client = Client(self.sim.endpoint)
        await self._client.connect()
        self._idx = await self._client.get_namespace_index(conv.opcua.namespace)
        self._conveyor = await self._find(self._client.nodes.objects, "Line", conv.id)
        self._state = await self._find(self._conveyor, "State")
        self._sorter = await self._find(self._conveyor, "Sorter", conv.sorter.id)
        self._simulation = await self._find(self._client.nodes.objects, "Simulation")
        types = await self._client.nodes.root.get_child(
            ["0:Types", "0:EventTypes", "0:BaseEventType"]
        )
        self._scan_type = await self._find(types, "ScanEventType")
        self._divert_type = await self._find(types, "DivertCompletedEventType")
        self._sub: Subscription = await self._client.create_subscription(5, None)
        scanner = await self._find(self._conveyor, "Scanners", conv.scanner.id)
        await self._sub.subscribe_events(scanner, self._scan_type, queuesize=1000)
        for d in conv.sorter.diverts:
            divert = await self._find(self._sorter, "Diverts", d.id)
            await self._sub.subscribe_events(divert, self._divert_type, queuesize=1000)
        self._reader = asyncio.create_task(self._read_events(), name="contract.client.events")

    async def close(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self._client.disconnect()

    async def _find(self, start: Node, *names: str) -> Node:
        return await start.get_child([f"{self._idx}:{name}" for name in names])

    async def _read_events(self) -> None:
        async for item in self._sub:
            if not isinstance(item, OpcEvent):
                continue
            event = item.event
            if event.EventType == self._scan_type.nodeid:
                await self.events.put(
                    Scan(
                        scanner_id=event.SourceName,
                        item_id=event.ItemId,
                        codes=tuple(event.Codes or ()),
                        at=_utc(event.Time),
                        no_read=event.NoRead,
                        multi_read=event.MultiRead,
                    )
                )
            elif event.EventType == self._divert_type.nodeid:
                await self.events.put(
                    Completion(
                        divert_id=event.DivertId,
                        item_id=event.ItemId,
                        chute_id=event.ChuteId,
                        ok=event.Success,
                        at=_utc(event.Time),
                    )
                )

    async def _call(self, node: Node, method: str, *args: str | float) -> Outcome:
        variants = [
            ua.Variant(a, ua.VariantType.String if isinstance(a, str) else ua.VariantType.Double)
            for a in args
        ]
        try:
            await node.call_method(f"{self._idx}:{method}", *variants)
        except ua.UaStatusCodeError as exc:
            return Refused(ua.StatusCode(exc.code).name, str(exc))
        return Accepted()

    async def command(self, name: str) -> Outcome:
        return await self._call(self._conveyor, name)

    async def state(self) -> str:
        value = await self._state.read_value()
        assert isinstance(value, str)
        return value

    async def divert(self, item_id: str, chute_id: str) -> Outcome:
        return await self._call(self._sorter, "Divert", item_id, chute_id)

    async def jog(self, zone_id: str, speed: float, seconds: float) -> Outcome:
        zone = await self._find(self._conveyor, "Zones", zone_id)
        return await self._call(zone, "Jog", speed, seconds)

    async def chute(self, chute_id: str) -> ChuteLevel:
        chute = await self._find(self._sorter, "Chutes", chute_id)
        full, enabled, count = [
            await (await self._find(chute, name)).read_value()
            for name in ("Full", "Enabled", "Count")
        ]
        return ChuteLevel(full=full, enabled=enabled, count=count)

    async def alive(self) -> bool:
        try:
            await self._state.read_value()
        except (ua.UaError, OSError, TimeoutError):
            return False
        return not self._reader.done()

    async def _induct(self, tote_id: str, zone_id: str) -> str:
        item_id = await self._simulation.call_method(
            f"{self._idx}:Induct",
            ua.Variant(tote_id, ua.VariantType.String),
            ua.Variant(zone_id, ua.VariantType.String),
        )
        assert isinstance(item_id, str) and item_id
        return str(item_id)


class AdapterDriver(Driver):
    """linectl's sorter adapter. It has no way to induct (a robot hands the tote over), so the
    simulator's in-process stand-in for that hand-over does it."""

    kind = "adapter"
    shows_status = False

    async def open(self) -> None:
        self._sorter = OpcUaSorter(self.config, self.clock, Metrics(), self.sim.endpoint)
        self._device_events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
        self._dropped = False
        self._up = asyncio.Event()
        self._run = asyncio.create_task(
            self._sorter.run(self._device_events), name=f"conveyor[{self.config.conveyor.id}]"
        )
        self._pump = asyncio.create_task(self._convert(), name="contract.adapter.events")
        try:
            async with asyncio.timeout(WAIT):
                await self._up.wait()
        except TimeoutError:
            await self.close()
            raise AssertionError(f"adapter not connected within {WAIT} s") from None

    async def close(self) -> None:
        for task in (self._pump, self._run):
            task.cancel()
        await asyncio.gather(self._pump, self._run, return_exceptions=True)

    async def _convert(self) -> None:
        while True:
            event = await self._device_events.get()
            match event:
                case ItemScanned():
                    await self.events.put(
                        Scan(event.scanner_id, event.item_id, event.codes, event.at)
                    )
                case ItemDiverted():
                    await self.events.put(
                        Completion(
                            event.divert_id, event.item_id, event.chute_id, event.ok, event.at
                        )
                    )
                case ConveyorAvailability(available=True):
                    self._up.set()
                case ConveyorAvailability(available=False):
                    self._dropped = self._up.is_set()

    async def command(self, name: str) -> Outcome:
        try:
            await self._sorter.command(name)
        except CommandRejected as exc:
            return Refused(None, str(exc))
        return Accepted()

    async def state(self) -> str:
        return self._sorter.snapshot().state

    async def divert(self, item_id: str, chute_id: str) -> Outcome:
        try:
            await self._sorter.divert(item_id, chute_id)
        except CommandRejected as exc:
            return Refused(None, str(exc))
        return Accepted()

    async def jog(self, zone_id: str, speed: float, seconds: float) -> Outcome:
        try:
            await self._sorter.jog(zone_id, speed, seconds)
        except CommandRejected as exc:
            return Refused(None, str(exc))
        return Accepted()

    async def chute(self, chute_id: str) -> ChuteLevel:
        levels = {c.chute_id: c for c in self._sorter.snapshot().chutes}
        c = levels[chute_id]
        return ChuteLevel(full=c.full, enabled=c.enabled, count=c.count)

    async def alive(self) -> bool:
        return self._sorter.snapshot().connected and not self._dropped and not self._run.done()

    async def _induct(self, tote_id: str, zone_id: str) -> str:
        return await self.sim.induct(tote_id, zone_id)
