"""Holding the whole line for an operator, and resuming it.

A hold stops four things: the conveyor (PackML ``Hold``), every robot (VDA 5050 ``startPause``),
the release of new orders (they wait as ``line_held``) and new AS/RS crane commands (retrieves,
stores and replenishments wait; a cycle under way finishes, as a crane cannot stop with a tote on
its forks). Resuming reverses them (``Unhold``, ``stopPause`` for the robots the hold paused,
releases and crane commands again): a robot an operator had paused on its own before the hold
stays paused. Devices are commanded one by one and each answers for itself:
a robot that is offline is reported as such and the rest is held all the same; asking again later
commands what is not held yet. The hold (who, since when) is stored, so a restarted controller
keeps releasing nothing until someone resumes the line; devices keep their own state over a restart
of the controller and are not commanded again then.

The order store holds the line too, on its own, while it cannot write (:meth:`LineHoldControl.
store_hold`, following :attr:`controller.store.health.StoreHealth.hold_reason`): no order is
released and no new crane command is sent, since their records would be lost; robots and the
conveyor are not paused, so the work under way finishes and its events wait in memory. That hold
ends by itself when the store writes again; an operator's hold, if there is one, stays.

The metric ``linectl_line_held`` is 1 while an operator's hold stands (also one taken over from
an earlier run), and only then: a jam, the PLC's watchdog or the store's hold leave it at 0, so
the alert on it tells an operator's hold from what stops the line by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

from controller.store.audit import AuditStore, LineHold
from devices import base as dev
from devices.errors import CommandRejected, DeviceError
from kernel.clock import Clock
from kernel.metrics import Metrics

log = logging.getLogger(__name__)

RobotCommand = Callable[[str, str], Awaitable[str]]  # (serial, pause|resume) -> action id


class Conveyor(Protocol):
    """What a hold needs of the conveyor (a part of :class:`devices.base.Sorter`)."""

    async def command(self, name: str) -> None: ...

    def snapshot(self) -> dev.ConveyorSnapshot: ...


class Robots(Protocol):
    def snapshot(self) -> dict[str, dev.RobotSnapshot]: ...


class Releases(Protocol):
    """The AS/RS commands (:class:`controller.asrs.flows.AsrsFlows`)."""

    held: bool

    def wake(self) -> None: ...


class OrderReleases(Releases, Protocol):
    """The order release (:class:`controller.robots.dispatcher.Dispatcher`)."""

    store_held: str | None


class DeviceResult(StrEnum):
    OK = "ok"  # commanded, or already where it should be
    REFUSED = "refused"  # it answered and refused (for example a conveyor that is stopped)
    UNAVAILABLE = "unavailable"  # not connected


@dataclass(frozen=True)
class DeviceOutcome:
    device: str  # conveyor:C1, robot:R01
    result: DeviceResult
    detail: str

    def document(self) -> dict[str, str]:
        return {"device": self.device, "result": self.result.value, "detail": self.detail}


@dataclass(frozen=True)
class HoldOutcome:
    """The line's hold after a hold or resume, and what each device did."""

    hold: LineHold | None
    changed: bool  # this call held or resumed the line (False: it already was)
    devices: tuple[DeviceOutcome, ...]

    @property
    def complete(self) -> bool:
        return all(d.result is DeviceResult.OK for d in self.devices)

    def document(self) -> dict[str, Any]:
        return {
            "held": view(self.hold),
            "changed": self.changed,
            "complete": self.complete,
            "devices": [d.document() for d in self.devices],
        }


def view(hold: LineHold | None) -> dict[str, str] | None:
    """The hold as ``GET /v1/line`` shows it."""
    return None if hold is None else {"by": hold.by, "since": hold.since.isoformat()}


class LineHoldControl:
    def __init__(
        self,
        clock: Clock,
        store: AuditStore,
        sorter: Conveyor,
        fleet: Robots,
        robot_command: RobotCommand,
        dispatcher: OrderReleases,
        asrs: Releases | None = None,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.clock = clock
        self.store = store
        self.sorter = sorter
        self.fleet = fleet
        self.robot_command = robot_command
        self.dispatcher = dispatcher
        self.asrs = asrs  # the AS/RS flows, when the line has cranes
        self.metrics = metrics  # the service's (linectl_line_held); None: not exported
        self.hold: LineHold | None = None
        self.store_reason: str | None = None  # the store cannot write: why

    def store_hold(self, reason: str | None) -> None:
        """Hold the line for the order store (``reason``), or end that hold (None)."""
        before, self.store_reason = self.store_reason, reason
        if (before is None) == (reason is None):
            return
        if reason is not None:
            log.warning(
                "line held: the order store cannot write; no order released, no crane command "
                "sent until it can",
                extra={"hold": "store", "reason": reason},
            )
        else:
            log.warning(
                "store hold of the line ended: the order store writes again",
                extra={"hold": "store", "operator_hold": self.hold is not None},
            )
        self._apply()
        if reason is None and self.hold is None:
            self.dispatcher.wake()
            if self.asrs is not None:
                self.asrs.wake()

    def _apply(self) -> None:
        """Tell the releases whether they are held (by an operator, by the store), and the
        metrics whether an operator holds the line."""
        if self.metrics is not None:
            self.metrics.line_held.set(1 if self.hold is not None else 0)
        self.dispatcher.held = self.hold is not None
        self.dispatcher.store_held = self.store_reason
        if self.asrs is not None:
            self.asrs.held = self.hold is not None or self.store_reason is not None

    async def restore(self) -> None:
        """Take over the hold stored by an earlier run."""
        self.hold = await self.store.line_hold()
        self._apply()
        if self.hold is not None:
            log.warning(
                "line held since before this start; releasing no orders until it is resumed",
                extra={"by": self.hold.by, "since": self.hold.since.isoformat()},
            )

    async def hold_line(self, who: str) -> HoldOutcome:
        changed = self.hold is None
        hold = self.hold or LineHold(by=who, since=self.clock.utcnow())
        self.hold = hold
        await self.store.set_line_hold(hold)  # before any device: a restart keeps releasing none
        self._apply()
        devices = [await self._conveyor("Hold", ("Held", "Holding"))]
        if self.asrs is not None:
            devices.append(
                DeviceOutcome(
                    "asrs", DeviceResult.OK, "no new crane commands; cycles under way finish"
                )
            )
        paused = list(hold.paused)
        for serial, robot in sorted(self.fleet.snapshot().items()):
            outcome = await self._robot(serial, "pause", robot.paused)
            devices.append(outcome)
            if outcome.result is DeviceResult.OK and not robot.paused:
                paused.append(serial)
        if tuple(paused) != hold.paused:
            self.hold = replace(hold, paused=tuple(paused))
            await self.store.set_line_hold(self.hold)
        self._log("line held", who, changed, devices)
        return HoldOutcome(self.hold, changed, tuple(devices))

    async def resume_line(self, who: str) -> HoldOutcome:
        changed = self.hold is not None
        # robots an operator paused on their own before the hold stay paused
        ours = set(self.hold.paused) if self.hold is not None else None
        devices = [await self._conveyor("Unhold", ("Execute", "Unholding"))]
        for serial, robot in sorted(self.fleet.snapshot().items()):
            if ours is not None and serial not in ours and robot.paused:
                devices.append(
                    DeviceOutcome(
                        f"robot:{serial}", DeviceResult.OK, "left paused (paused before the hold)"
                    )
                )
                continue
            devices.append(await self._robot(serial, "resume", not robot.paused))
        if changed:
            await self.store.set_line_hold(None)
            self.hold = None
        self._apply()
        self.dispatcher.wake()
        if self.asrs is not None:
            self.asrs.wake()
            released = (
                "crane commands released"
                if self.store_reason is None
                else "crane commands still held: the order store cannot write"
            )
            devices.insert(1, DeviceOutcome("asrs", DeviceResult.OK, released))
        self._log("line resumed", who, changed, devices)
        return HoldOutcome(None, changed, tuple(devices))

    async def _conveyor(self, command: str, done: tuple[str, ...]) -> DeviceOutcome:
        snap = self.sorter.snapshot()
        device = f"conveyor:{snap.conveyor_id}"
        if snap.connected and snap.state in done:
            return DeviceOutcome(device, DeviceResult.OK, f"already {snap.state}")
        try:
            await self.sorter.command(command)
        except CommandRejected as exc:
            return DeviceOutcome(device, DeviceResult.REFUSED, f"{command} refused: {exc}")
        except DeviceError as exc:
            return DeviceOutcome(device, DeviceResult.UNAVAILABLE, str(exc))
        return DeviceOutcome(device, DeviceResult.OK, f"{command}: {self.sorter.snapshot().state}")

    async def _robot(self, serial: str, command: str, already: bool) -> DeviceOutcome:
        device = f"robot:{serial}"
        if already:
            state = "paused" if command == "pause" else "not paused"
            return DeviceOutcome(device, DeviceResult.OK, f"already {state}")
        try:
            action_id = await self.robot_command(serial, command)
        except CommandRejected as exc:
            return DeviceOutcome(device, DeviceResult.REFUSED, f"{command} refused: {exc}")
        except DeviceError as exc:
            return DeviceOutcome(device, DeviceResult.UNAVAILABLE, str(exc))
        return DeviceOutcome(device, DeviceResult.OK, f"{command} sent ({action_id})")

    def _log(self, what: str, who: str, changed: bool, devices: list[DeviceOutcome]) -> None:
        log.warning(
            what,
            extra={
                "by": who,
                "changed": changed,
                "not_done": [f"{d.device} {d.result.value}" for d in devices if d.result != "ok"],
            },
        )
