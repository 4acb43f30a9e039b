"""The controller's AS/RS flows against the real AS/RS simulator over OPC UA, with the real
cranes adapter, inventory and a SQLite file: retrieves, stores, dual cycles, a controller killed
while a crane moves, and the AS/RS losing power mid-command."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from asyncua import Client

from controller.asrs.commands import journal_positions
from controller.asrs.flows import AsrsFlows
from controller.line.inventory import Inventory
from controller.store.asrs import CommandState
from controller.store.inventory import MovementKind
from controller.store.sqlite.store import SqliteOrderStore
from devices.base import CranesAvailability, DeviceEvent
from devices.opcua.cranes.adapter import OpcUaCranes
from devices.opcua.cranes.model import contents_from_outputs, resolve_cranes
from kernel.backoff import Backoff
from kernel.clock import Clock, ScaledClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from simulators.asrs import AsrsSimulator
from simulators.broker import free_port
from tests.sim_process import asrs_process

pytestmark = pytest.mark.integration

WAIT = 20.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        await asyncio.sleep(0.02)


def endpoint() -> str:
    return f"opc.tcp://127.0.0.1:{free_port()}/linectl/"


@dataclass
class Controller:
    store: SqliteOrderStore
    inventory: Inventory
    cranes: OpcUaCranes
    flows: AsrsFlows
    metrics: Metrics
    retrieved: list[tuple[str, str, str, str | None]]

    async def tote_at(self, tote: str) -> str | None:
        return (await self.store.asrs_tote_locations()).get(tote)

    async def rack(self) -> dict[str, str]:
        """location -> tote for every rack location the inventory has a tote at."""
        locations = await self.store.asrs_tote_locations()
        return {loc: tote for tote, loc in locations.items() if not loc.startswith("PD:")}

    async def commands(self, state: CommandState | None = None) -> list[str]:
        rows = await self.store.asrs_commands(states=None if state is None else [state])
        return [c.command_id for c in reversed(rows)]

    def cycles(self, aisle: str, kind: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "linectl_asrs_cycles_total", {"aisle": aisle, "kind": kind}
        )
        return value or 0.0


@contextlib.asynccontextmanager
async def controller(
    config: LineConfig,
    clock: Clock,
    db: Path,
    url: str,
    *,
    plan: bool = True,
    wait_up: bool = True,
) -> AsyncIterator[Controller]:
    """Store, inventory, cranes adapter and flows on ``db``; leaving it is a kill: the tasks
    are cancelled and nothing is finished cleanly beyond what is already committed."""
    metrics = Metrics()
    store = SqliteOrderStore(db)
    await store.open()
    inventory = Inventory(config, store, clock, metrics)
    await inventory.open()
    cranes = OpcUaCranes(
        config,
        clock,
        metrics,
        url,
        last_sequences=await journal_positions(store, config),
        backoff=Backoff(0.05, 0.2),
    )
    retrieved: list[tuple[str, str, str, str | None]] = []
    flows = AsrsFlows(
        config,
        cranes,
        inventory,
        store,
        clock,
        metrics,
        on_retrieved=lambda *args: retrieved.append(args),
        poll_seconds=0.5,
    )
    await flows.open()
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    up = asyncio.Event()

    async def pump() -> None:
        while True:
            event = await events.get()
            await flows.handle(event)
            if isinstance(event, CranesAvailability) and event.available:
                up.set()

    c = Controller(store, inventory, cranes, flows, metrics, retrieved)
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(cranes.run(events), name="asrs.cranes"),
                tg.create_task(pump(), name="asrs.events"),
            ]
            if plan:
                tasks.append(tg.create_task(flows.run(), name="asrs.plan"))
            if wait_up:
                async with asyncio.timeout(WAIT):
                    await up.wait()
            try:
                yield c
            finally:
                for task in tasks:
                    task.cancel()
    finally:
        await store.close()


async def read_contents(config: LineConfig, url: str) -> dict[str, str]:
    async with Client(url) as client:
        model = await resolve_cranes(client, config)
        out: dict[str, str] = {}
        for crane in model.cranes.values():
            out.update(
                contents_from_outputs(
                    await crane.node.call_method(crane.methods["Contents"].nodeid)
                )
            )
        return out


async def test_retrieve_then_store_back(reference_line: LineConfig, tmp_path: Path) -> None:
    url, clock = endpoint(), ScaledClock(200)
    async with (
        AsrsSimulator(reference_line, clock, url) as sim,
        controller(reference_line, clock, tmp_path / "line.db", url) as c,
    ):
        request = await c.flows.request_retrieve("AS-0001", "order", order_id="O-1")
        assert request.location == "A1-R-27-04" and request.aisle == "A1"

        async def at_pd() -> bool:
            return await c.tote_at("AS-0001") == "PD:A1"

        await eventually(at_pd, "AS-0001 at PD:A1")
        (command_id,) = await c.commands(CommandState.DONE)
        assert command_id.endswith("-A1-R1.1")
        moves = await c.inventory.movements(location="PD:A1")
        assert [(m.kind, m.ref, m.tote, m.delta) for m in moves] == [
            (MovementKind.CRANE_RETRIEVE_CONFIRMED, command_id, "AS-0001", 48)
        ]
        assert c.retrieved == [("AS-0001", "A1", "order", "O-1")]
        assert "A1-R-27-04" not in sim.contents()

        await sim.arrive_at_pd("AS-0001", "A1")
        store = await c.flows.tote_at_pd("AS-0001", "A1")
        assert store.location.startswith("A1-")

        async def stored() -> bool:
            return await c.tote_at("AS-0001") == store.location

        await eventually(stored, "AS-0001 back in the rack")
        assert sim.contents()[store.location] == "AS-0001"
        assert await c.rack() == sim.contents()
        assert c.flows.snapshot()["A1"].sent == 0
        assert c.cycles("A1", "single_store") == 1


async def test_a_store_and_a_retrieve_share_a_dual_cycle(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    url, clock = endpoint(), ScaledClock(200)
    db = tmp_path / "line.db"
    async with AsrsSimulator(reference_line, clock, url) as sim:
        async with controller(reference_line, clock, db, url) as c:
            await c.flows.request_retrieve("AS-0005", "order")

            async def out() -> bool:
                # the tote's move is written first, then the command closes: wait for both
                return await c.tote_at("AS-0005") == "PD:A1" and bool(
                    await c.commands(CommandState.DONE)
                )

            await eventually(out, "AS-0005 out")
        async with controller(reference_line, clock, db, url, plan=False) as c:
            await sim.arrive_at_pd("AS-0005", "A1")
            await c.flows.tote_at_pd("AS-0005", "A1")
            await c.flows.request_retrieve("AS-0008", "order")  # A1-L-20-03
            assert await c.flows.plan_once() == 1

            async def both() -> bool:
                return await c.tote_at("AS-0008") == "PD:A1" and (
                    (await c.tote_at("AS-0005") or "").startswith("A1-")
                )

            await eventually(both, "dual cycle finished")
            (dual,) = [i for i in await c.commands(CommandState.DONE) if "-D" in i]
            assert c.cycles("A1", "dual") == 1
            refs = {m.ref for m in await c.inventory.movements(sku="SKU-0004")}
            assert dual in refs
            assert await c.rack() == sim.contents()


async def test_controller_killed_mid_command_restarts_with_the_racks_stock(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    url, clock, db = endpoint(), ScaledClock(20), tmp_path / "line.db"
    async with AsrsSimulator(reference_line, clock, url) as sim:
        async with controller(reference_line, clock, db, url) as first:
            await first.flows.request_retrieve("AS-0002", "order")  # A1-L-31-09: a long cycle

            async def sent() -> bool:
                return bool(await first.commands(CommandState.SENT))

            await eventually(sent, "retrieve sent")
            (command_id,) = await first.commands(CommandState.SENT)
            journal = sim.crane("A1").journal.last
            assert sim.crane("A1").current_command == command_id
        # the controller is gone; the crane carries on

        async def finished() -> bool:
            return sim.crane("A1").journal.last > journal

        await eventually(finished, "crane finished without the controller")
        async with controller(reference_line, clock, db, url) as second:

            async def replayed() -> bool:
                return await second.tote_at("AS-0002") == "PD:A1"

            await eventually(replayed, "completion replayed")
            assert await second.commands(CommandState.DONE) == [command_id]
            assert await second.rack() == sim.contents()
            moves = [
                m for m in await second.inventory.movements(sku="SKU-0001") if m.tote == "AS-0002"
            ]
            assert [(m.location, m.delta, m.ref) for m in moves if m.ref == command_id] == [
                ("A1-L-31-09", -48, command_id),
                ("PD:A1", 48, command_id),
            ]
            assert second.retrieved == [("AS-0002", "A1", "order", None)]
            assert second.flows.last_sequences()["A1"] == sim.crane("A1").journal.last


async def test_power_loss_mid_command_redoes_the_retrieve_under_a_new_id(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    url, state, db = endpoint(), tmp_path / "asrs.json", tmp_path / "line.db"
    clock = ScaledClock(10)
    async with controller(reference_line, clock, db, url, wait_up=False) as c:
        async with asrs_process(url, state, time_scale=10) as proc:

            async def up() -> bool:
                return c.cranes.connected

            await eventually(up, "cranes connected")
            await c.flows.request_retrieve("AS-0002", "order")

            async def moving() -> bool:
                return bool(await c.commands(CommandState.SENT)) and (
                    c.cranes.snapshot()["A1"].state == "Moving"
                )

            await eventually(moving, "crane moving")
            (lost,) = await c.commands(CommandState.SENT)
            proc.kill()  # power loss
            await proc.wait()
        async with asrs_process(url, state, time_scale=10):

            async def redone() -> bool:
                return await c.tote_at("AS-0002") == "PD:A1"

            await eventually(redone, "retrieve redone")
            failed = await c.store.asrs_commands(states=[CommandState.FAILED])
            assert [(f.command_id, f.reason) for f in failed] == [(lost, "power loss")]
            done = [i for i in await c.commands(CommandState.DONE) if "R" in i.split("-")[-1]]
            assert done and all(i != lost for i in done)
            retrieves = [
                m.ref
                for m in await c.inventory.movements(location="PD:A1")
                if m.kind is MovementKind.CRANE_RETRIEVE_CONFIRMED
            ]
            assert retrieves == [done[-1]]
            assert lost not in {m.ref for m in await c.inventory.movements(sku="SKU-0001")}
            assert await c.rack() == await read_contents(reference_line, url)
