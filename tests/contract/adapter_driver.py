"""The adapter side of the conveyor contract: linectl's sorter adapter
(:class:`devices.opcua.OpcUaSorter`) answering in the contract's plain values, so the cases that
hold the simulator to the documented model hold the adapter to it too.
"""

from __future__ import annotations

import asyncio

from devices.base import ConveyorAvailability, DeviceEvent, ItemDiverted, ItemScanned
from devices.errors import CommandRejected
from devices.opcua import OpcUaSorter
from kernel.metrics import Metrics
from tests.contract.driver import (
    WAIT,
    Accepted,
    ChuteLevel,
    Completion,
    Driver,
    Outcome,
    Refused,
    Scan,
)


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
