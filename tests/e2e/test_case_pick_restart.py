"""The controller stops in the middle of a B2B case pick and starts again on the same store.

The simulators (conveyor, AS/RS cranes, robots, broker) keep running; the controller's context
ends as if it were killed (no hand-over), and a new controller comes up on the same store file.
The case-only order must complete after the restart wherever its rack tote was when the
controller stopped: the retrieve still waiting for a crane in fault, the crane under way, the
crane finished while no controller listened, the tote on the held conveyor or already at the
station. The tote is retrieved once, its stock falls by the counted cases once, the reservation
is consumed, and the tote goes back into the rack.

The moments are made deterministic with a conveyor hold and a crane fault, never with sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api import create_app
from controller.app.demo import wait_ready
from controller.app.http import ApiServer
from controller.orders.model import OrderStatus
from controller.service.service import LineService
from kernel.clock import ScaledClock
from kernel.config.model import ApiConfig, ApiToken, LineConfig, StoreConfig
from simulators.asrs.journal import JournalEntry
from simulators.asrs.simulator import AsrsSimulator
from simulators.broker import free_port
from simulators.line import SimulatedLine, simulated_line
from tests.e2e.test_case_picks import case_order, in_rack, send_back, stock, tote_stored, verify
from tests.e2e.test_controller_restart import TOKEN, until
from tests.e2e.test_lifecycle import TIME_SCALE, Line, settled

pytestmark = pytest.mark.e2e

ORDER = "R1"
SKU = "SKU-0001"
TOTE = "AS-0001"  # 48 units of SKU-0001 at A1-R-27-04: the tote the plan takes for 2 cases
AISLE, CRANE = "A1", "CR1"
UNITS = 24  # 2 cases of 12
STATION = "VAS-1"


@dataclass
class Plant:
    """The simulated line that outlives the controllers started against it."""

    sim: SimulatedLine
    clock: ScaledClock

    @property
    def asrs(self) -> AsrsSimulator:
        assert self.sim.asrs is not None
        return self.sim.asrs

    @asynccontextmanager
    async def controller(self) -> AsyncIterator[Line]:
        """One controller with its API, until the context ends (then it stops, as if killed)."""
        cfg = self.sim.config
        async with LineService(cfg, self.clock) as svc:
            api = ApiServer(create_app(svc), "127.0.0.1", cfg.api.port, freeze_heap=False)
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(svc.run()), tg.create_task(api.serve())]
                try:
                    await wait_ready(svc, api, within=30)
                    headers = {"Authorization": f"Bearer {TOKEN}"}
                    async with httpx.AsyncClient(base_url=api.url, headers=headers) as http:
                        yield Line(svc, http, self.clock, self.sim)
                finally:
                    for task in tasks:
                        task.cancel()

    def retrieves(self) -> list[JournalEntry]:
        """The crane's journal entries of retrieves of the order's tote."""
        return [
            e
            for e in self.asrs.crane(AISLE).journal.entries()
            if e.kind == "Retrieve" and e.tote_id == TOTE
        ]


@pytest.fixture
async def plant(
    reference_line: LineConfig, mqtt_url: str, interface_name: str, tmp_path: Path
) -> AsyncIterator[Plant]:
    clock = ScaledClock(TIME_SCALE)
    cfg = reference_line.with_overrides(
        store=StoreConfig(path=str(tmp_path / "line.db")),
        api=ApiConfig(port=free_port(), tokens=[ApiToken(token=TOKEN)]),
        mqtt=reference_line.mqtt.model_copy(update={"interface_name": interface_name}),
    )
    async with simulated_line(cfg, clock, mqtt_url) as sim:
        yield Plant(sim, clock)
        assert sim.robots.collisions == []


async def crane_view(line: Line) -> dict[str, Any]:
    cranes = (await line.http.get("/v1/line")).json()["cranes"]
    [crane] = [c for c in cranes if c["aisle"] == AISLE]
    return dict(crane)


async def aisle_transports(line: Line) -> dict[str, Any]:
    return dict((await crane_view(line))["transports"] or {})


async def movements(line: Line, kind: str) -> list[dict[str, Any]]:
    resp = await line.http.get("/v1/inventory/movements", params={"sku": SKU, "limit": 1000})
    assert resp.status_code == 200, resp.text
    assert resp.json()["next_after"] is None
    return [m for m in resp.json()["movements"] if m["kind"] == kind and m["tote"] == TOTE]


async def station_task(line: Line) -> dict[str, Any] | None:
    tasks = (await line.http.get(f"/v1/stations/{STATION}/tasks")).json()
    return next((t for t in tasks if t["order_id"] == ORDER), None)


async def completes_once(line: Line, plant: Plant, before: dict[str, int]) -> None:
    """After the restart: the order reaches its station, the task lists the tote, the
    verification completes it; the tote was retrieved once and gave its cases once."""
    await line.until(ORDER, lambda o, s: o.step == "at_station", within=20)

    async def listed() -> bool:
        return await station_task(line) is not None

    await until("the station task is open", listed, within=10)
    held = {**before, "reserved": UNITS, "available": before["available"] - UNITS}
    assert await stock(line, SKU) == held
    task = await verify(line, STATION, ORDER)
    assert task["totes"] == [TOTE] and task["case_lines"] == ["90"]
    assert [(ln["line_id"], ln["uom"], ln["quantity"]) for ln in task["lines"]] == [
        ("90", "case", 2)
    ]
    order, steps = await line.until(ORDER, settled)
    assert order.status is OrderStatus.COMPLETED and order.picked == {"90": 2}, steps
    assert steps.count("case_tote_retrieved") == 1, steps
    assert "rejected" not in steps and "tote_in_chute" not in steps, steps
    left = before["on_hand"] - UNITS
    assert await stock(line, SKU) == {"on_hand": left, "reserved": 0, "available": left}
    taken = await movements(line, "tote_pick_confirmed")
    assert [(m["delta"], m["order_id"]) for m in taken] == [(-UNITS, ORDER)], taken
    # retrieved exactly once: one crane cycle, one ledger row
    assert [(e.ok, e.location) for e in plant.retrieves()] == [(True, "A1-R-27-04")]
    retrieved = await movements(line, "crane_retrieve_confirmed")
    assert {(m["location"], m["delta"]) for m in retrieved} == {
        ("A1-R-27-04", -48),
        (f"PD:{AISLE}", 48),
    }, retrieved
    assert len({m["ref"] for m in retrieved}) == 1, retrieved  # one transport, two rows


async def goes_back_into_the_rack(line: Line) -> None:
    await send_back(line, STATION, TOTE)
    where = await tote_stored(line, TOTE, within=20)
    assert in_rack(where) and where.startswith(f"{AISLE}-"), where
    assert (await line.http.get(f"/v1/stations/{STATION}/returns")).json() == []
    rows = (await line.http.get("/v1/inventory", params={"location": where})).json()
    assert rows["locations"][0]["rows"][0]["on_hand"] == 48 - UNITS, rows
    stored = await movements(line, "crane_store_confirmed")
    assert len({m["ref"] for m in stored}) == 1, stored
    assert [m["delta"] for m in stored if m["location"] == where] == [48 - UNITS], stored


@pytest.mark.parametrize("stopped", ["on_conveyor", "at_station"])
async def test_case_order_completes_after_a_restart_with_its_tote_out_of_the_rack(
    plant: Plant, stopped: str
) -> None:
    """The tote was retrieved when the controller stopped: on the held conveyor (at the P&D
    zone's induction or on the belt), or already in the station's chute."""
    async with plant.controller() as line:
        before = await stock(line, SKU)
        if stopped == "on_conveyor":
            held = await line.http.post("/v1/conveyors/C1/hold")
            assert held.status_code == 200, held.text
        await line.put(ORDER, **case_order(line, SKU, 2))
        order, steps = await line.until(ORDER, lambda o, s: o.step == stopped, within=20)
        assert "case_tote_retrieved" in steps, steps
        if stopped == "on_conveyor":
            assert order.status is OrderStatus.IN_TRANSIT

    async with plant.controller() as line:
        again = await line.service.store.get_order(ORDER)
        assert again is not None and again.step == stopped, again
        if stopped == "on_conveyor":
            resumed = await line.http.post("/v1/conveyors/C1/unhold")
            assert resumed.status_code == 200, resumed.text
        await completes_once(line, plant, before)
        await goes_back_into_the_rack(line)


@pytest.mark.parametrize("stopped", ["waiting", "under_way", "finished_while_down"])
async def test_case_order_completes_after_a_restart_before_its_tote_was_retrieved(
    plant: Plant, stopped: str
) -> None:
    """The controller stopped before ``case_tote_retrieved``: the retrieve requested while the
    crane is in fault, no command planned yet (waiting), accepted and the crane stopped half-way
    by a fault (under way), or under way and finished while no controller was running (its
    completion only in the crane's journal)."""
    async with plant.controller() as line:
        before = await stock(line, SKU)
        if stopped == "waiting":
            await plant.asrs.set_fault(CRANE, "test: crane stopped")

            async def fault_seen() -> bool:
                return bool((await crane_view(line))["state"] == "Fault")

            # the planner leaves the aisle alone: the retrieve stays a waiting request
            await until("the controller sees the crane in fault", fault_seen, within=10)
        await line.put(ORDER, **case_order(line, SKU, 2))
        if stopped == "waiting":

            async def waits_for_the_crane() -> bool:
                t = await aisle_transports(line)
                return t.get("waiting_retrieves") == 1

            await until("the retrieve waits for the crane in fault", waits_for_the_crane, 10)
            assert (await aisle_transports(line))["sent"] == 0
            assert plant.asrs.crane(AISLE).current_command == ""
        else:

            async def accepted() -> bool:
                return plant.asrs.crane(AISLE).current_command != ""

            await until("the crane took the retrieve", accepted, within=10)
            await plant.asrs.set_fault(CRANE, "test: crane stopped")
            assert plant.retrieves() == []  # stopped before the tote reached the P&D output

            async def recorded_as_sent() -> bool:
                return (await aisle_transports(line)).get("sent") == 1

            await until("the controller recorded the command as sent", recorded_as_sent, 10)
        _, steps = await line.until(ORDER, lambda o, s: "case_pick_released" in s)
        assert "case_tote_retrieved" not in steps, steps

    if stopped == "finished_while_down":
        await plant.asrs.clear_fault(CRANE)

        async def finished() -> bool:
            return bool(plant.retrieves())

        await until("the crane finished the retrieve", finished, within=10)

    async with plant.controller() as line:
        if stopped != "finished_while_down":
            assert plant.retrieves() == []
            await plant.asrs.clear_fault(CRANE)
        await completes_once(line, plant, before)
