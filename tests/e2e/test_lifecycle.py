"""An order's life on the whole simulated line: cancel at every stage, B2B verification.

The line runs in-process on real protocols (the machine's MQTT broker, an asyncua server, real
HTTP); the test waits on the store's event feed, never on the wall clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api import create_app
from controller.app.demo import wait_ready
from controller.app.http import ApiServer
from controller.orders.model import OrderRecord, OrderStatus
from controller.service.service import LineService
from kernel.clock import ScaledClock
from kernel.config.model import ApiConfig, ApiToken, LineConfig, StoreConfig
from simulators.broker import free_port
from simulators.line import SimulatedLine, simulated_line

pytestmark = pytest.mark.e2e
TOKEN = "lifecycle-token-0123456789"
TIME_SCALE = 10.0


@dataclass
class Line:
    service: LineService
    http: httpx.AsyncClient
    clock: ScaledClock
    sim: SimulatedLine

    async def put(self, order_id: str, **body: Any) -> OrderRecord:
        resp = await self.http.put(f"/v1/orders/{order_id}", json=body)
        assert resp.status_code == 201, resp.text
        order = await self.service.store.get_order(order_id)
        assert order is not None
        return order

    async def until(
        self, order_id: str, done: Callable[[OrderRecord, list[str]], bool], within: float = 30
    ) -> tuple[OrderRecord, list[str]]:
        """Wait until ``done(order, history types)``; wakes on every new event in the store."""
        store = self.service.store
        async with asyncio.timeout(within):
            while True:
                seq = await store.last_event_seq()
                order = await store.get_order(order_id)
                assert order is not None
                steps = [e.type for e in await store.history(order_id)]
                if done(order, steps):
                    return order, steps
                await store.wait_for_event(seq, timeout=1.0)

    async def reject_tote(self, tote: str, within: float = 10) -> dict[str, Any]:
        """The reject-chute tote ``tote`` once it is registered (right after its order's
        event)."""
        async with asyncio.timeout(within):
            while True:
                resp = await self.http.get("/v1/inventory/reject-totes")
                assert resp.status_code == 200, resp.text
                found = [t for t in resp.json() if t["tote"] == tote]
                if found:
                    return dict(found[0])
                await asyncio.sleep(0.05)

    async def cancel(self, order_id: str) -> httpx.Response:
        return await self.http.post(f"/v1/orders/{order_id}/cancel", json={"reason": "test"})

    def b2c(self, *skus: str, destination: str = "DHL") -> dict[str, Any]:
        return {
            "type": "b2c",
            "priority": 5,
            "due_at": (self.clock.utcnow() + timedelta(hours=3)).isoformat(),
            "destination": destination,
            "lines": [
                {"line_id": str(i + 1), "sku": sku, "quantity": 1} for i, sku in enumerate(skus)
            ],
        }

    def b2b(self, *skus: str, window_starts_in: timedelta = timedelta(hours=-1)) -> dict[str, Any]:
        now = self.clock.utcnow()
        return {
            "type": "b2b",
            "priority": 5,
            "due_at": (now + timedelta(hours=20)).isoformat(),
            "deliver_from": (now + window_starts_in).isoformat(),
            "deliver_until": (now + timedelta(hours=20)).isoformat(),
            "destination": "CUST-ACME",
            "lines": [
                {"line_id": str((i + 1) * 10), "sku": sku, "quantity": 3}
                for i, sku in enumerate(skus)
            ],
            "handling": {"label_template": "acme-v2", "packaging": "carton-40"},
        }


@asynccontextmanager
async def running_line(
    reference_line: LineConfig,
    mqtt_url: str,
    interface_name: str,
    tmp_path: Path,
    seed: Callable[[LineService], Awaitable[None]] | None = None,
    time_scale: float = TIME_SCALE,
    api_config: ApiConfig | None = None,
) -> AsyncIterator[Line]:
    """The whole line; ``seed`` runs on the store before the controller starts; ``api_config``
    replaces the API settings (by default: reads open, one token ``TOKEN`` with every scope)."""
    clock = ScaledClock(time_scale)
    cfg = reference_line.with_overrides(
        store=StoreConfig(path=str(tmp_path / "line.db")),
        api=api_config or ApiConfig(port=free_port(), tokens=[ApiToken(token=TOKEN)]),
        mqtt=reference_line.mqtt.model_copy(update={"interface_name": interface_name}),
    )
    async with simulated_line(cfg, clock, mqtt_url) as sim, LineService(sim.config, clock) as svc:
        if seed is not None:
            await seed(svc)
        # port 0: the system picks a free port
        api = ApiServer(create_app(svc), "127.0.0.1", 0, freeze_heap=False)
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(svc.run()), tg.create_task(api.serve())]
            try:
                await wait_ready(svc, api, within=30)
                headers = {"Authorization": f"Bearer {TOKEN}"}
                async with httpx.AsyncClient(base_url=api.url, headers=headers) as http:
                    yield Line(svc, http, clock, sim)
            finally:
                for task in tasks:
                    task.cancel()


def settled(order: OrderRecord, _: list[str]) -> bool:
    return order.status.terminal


async def test_cancel_while_queued(line: Line) -> None:
    # a B2B order whose delivery window opens later waits in the queue
    await line.put("Q1", **line.b2b("SKU-0001", window_starts_in=timedelta(hours=2)))
    order, steps = await line.until("Q1", lambda o, s: o.waiting_reason is not None)
    assert order.waiting_reason == "outside_delivery_window"
    assert (await line.cancel("Q1")).status_code == 202
    order, steps = await line.until("Q1", settled)
    assert order.status is OrderStatus.CANCELLED
    assert steps[-2:] == ["cancel_requested", "cancelled"]
    assert (await line.cancel("Q1")).status_code == 409  # terminal


async def test_cancel_while_picking_returns_the_tote_to_the_reject_chute(line: Line) -> None:
    await line.put("P1", **line.b2c("SKU-0001", "SKU-0013", "SKU-0025"))
    await line.until("P1", lambda o, s: "picked" in s)
    assert (await line.cancel("P1")).status_code == 202
    order, steps = await line.until("P1", settled)
    assert order.status is OrderStatus.CANCELLED
    history = await line.service.store.history("P1")
    cancelled = next(e for e in history if e.type == "cancelled")
    assert "robot_cancel_sent" in steps
    # cancelled after the first of three picks: the robot stops with units in the tote, which
    # comes back on the conveyor and ends in the reject chute
    assert cancelled.data["stage"] == "picking" and cancelled.data["tote_returning"]
    _, steps = await line.until("P1", lambda o, s: "tote_in_chute" in s)
    history = await line.service.store.history("P1")
    chute = next(e for e in history if e.type == "tote_in_chute")
    assert chute.data["chute"] == "REJECT"
    assert "completed" not in steps
    # the units picked into it are off the books until counted back in
    picked = {(e.data["location"], e.data["quantity"]) for e in history if e.type == "picked"}
    tote = await line.reject_tote(chute.data["tote"])
    assert tote["order_id"] == "P1" and tote["state"] == "open"
    assert {(ln["location"], ln["quantity"]) for ln in tote["lines"]} == picked
    locations = [loc for loc, _ in picked]
    before = {loc: line.service.inventory.view()[sku][loc] for loc, sku in _skus(line, locations)}
    back = await line.http.post(f"/v1/inventory/reject-totes/{tote['tote']}/restock", json={})
    assert back.status_code == 200, back.text
    after = {loc: line.service.inventory.view()[sku][loc] for loc, sku in _skus(line, locations)}
    assert all(after[loc] == before[loc] + qty for loc, qty in picked)


async def test_cancel_on_the_conveyor_sends_the_tote_to_reject(line: Line) -> None:
    await line.put("C1", **line.b2c("SKU-0002"))
    await line.until("C1", lambda o, s: "dropped" in s)
    assert (await line.cancel("C1")).status_code == 202
    order, _ = await line.until("C1", settled)
    assert order.status is OrderStatus.CANCELLED
    cancelled = next(e for e in await line.service.store.history("C1") if e.type == "cancelled")
    # the tote needs 7.5 m of belt (0.4 s of wall time here) to reach the scanner
    assert cancelled.data["stage"] == "conveyor"
    assert cancelled.data["chute"] == "REJECT"
    tote = await line.reject_tote(cancelled.data["tote"])
    assert tote["units"] == 1 and tote["reason"] == "order cancelled"
    gone = await line.http.post(
        f"/v1/inventory/reject-totes/{tote['tote']}/write-off", json={"note": "damaged"}
    )
    assert gone.status_code == 200 and gone.json()["state"] == "written_off"


def _skus(line: Line, locations: list[str]) -> list[tuple[str, str]]:
    stock = {e.location: e.sku for e in line.service.config.stock}
    return [(loc, stock[loc]) for loc in locations]


async def test_b2b_waits_at_its_station_then_verification_completes_it(line: Line) -> None:
    await line.put("B1", **line.b2b("SKU-0003", "SKU-0004"))
    order, _ = await line.until("B1", lambda o, s: o.step == "at_station")
    assert order.status is OrderStatus.SORTED
    tasks = (await line.http.get("/v1/stations/VAS-1/tasks")).json()
    [task] = [t for t in tasks if t["order_id"] == "B1"]
    assert task["handling"]["label_template"] == "acme-v2"
    assert [(ln["sku"], ln["quantity"]) for ln in task["lines"]] == [
        ("SKU-0003", 3),
        ("SKU-0004", 3),
    ]
    counted = [
        {"line_id": ln["line_id"], "sku": ln["sku"], "quantity": ln["quantity"]}
        for ln in task["lines"]
    ]
    resp = await line.http.post(
        "/v1/stations/VAS-1/tasks/B1/verification", json={"operator": "op1", "lines": counted}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"order_id": "B1", "status": "completed", "mismatches": []}
    order, steps = await line.until("B1", settled)
    assert order.status is OrderStatus.COMPLETED
    assert steps[-2:] == ["verified", "completed"]


async def test_b2b_count_mismatch_is_an_exception_never_completed(line: Line) -> None:
    await line.put("B2", **line.b2b("SKU-0005", "SKU-0006"))
    await line.until("B2", lambda o, s: o.step == "at_station")
    counted = [
        {"line_id": "10", "sku": "SKU-0005", "quantity": 3},
        {"line_id": "20", "sku": "SKU-0006", "quantity": 2},
    ]
    resp = await line.http.post("/v1/stations/VAS-1/tasks/B2/verification", json={"lines": counted})
    assert resp.status_code == 200
    assert resp.json()["status"] == "exception"
    order = await line.service.store.get_order("B2")
    assert order is not None and order.status is OrderStatus.EXCEPTION
    assert order.waiting_reason is not None
    assert "line 20 (SKU-0006): expected 3, counted 2" in order.waiting_reason
    again = await line.http.post(
        "/v1/stations/VAS-1/tasks/B2/verification", json={"lines": counted}
    )
    assert again.status_code == 404  # the task is closed


async def test_cancel_at_the_station_withdraws_the_task(line: Line) -> None:
    await line.put("B3", **line.b2b("SKU-0007"))
    await line.until("B3", lambda o, s: o.step == "at_station")
    assert (await line.cancel("B3")).status_code == 202
    order, _ = await line.until("B3", settled)
    assert order.status is OrderStatus.CANCELLED
    tasks = (await line.http.get("/v1/stations/VAS-1/tasks")).json()
    assert all(t["order_id"] != "B3" for t in tasks)


async def test_line_view_and_robot_pause_resume(line: Line) -> None:
    view = (await line.http.get("/v1/line")).json()
    assert view["conveyors"][0]["state"] == "Execute" and view["conveyors"][0]["available"]
    assert {r["serial"] for r in view["robots"]} == {f"R{i:02d}" for i in range(1, 7)}
    assert all(r["available"] and r["connection"] == "ONLINE" for r in view["robots"])
    assert {c["chute_id"] for c in view["conveyors"][0]["chutes"]} >= {"REJECT", "VAS-1"}
    for command in ("pause", "resume"):
        resp = await line.http.post(f"/v1/robots/R01/{command}")
        assert resp.status_code == 202, resp.text
        assert resp.json()["action_id"].startswith(command)
    assert (await line.http.post("/v1/robots/R99/pause")).status_code == 404
    assert (await line.http.post("/v1/robots/R01/explode")).status_code == 422
    anonymous = await line.http.post("/v1/robots/R01/pause", headers={"Authorization": ""})
    assert anonymous.status_code == 401


async def test_conveyor_packml_commands_through_the_api(line: Line) -> None:
    async def send(command: str) -> httpx.Response:
        return await line.http.post(f"/v1/conveyors/C1/{command}")

    held = await send("hold")
    assert held.status_code == 200, held.text
    assert held.json() == {"conveyor_id": "C1", "command": "hold", "state": "Held"}
    view = (await line.http.get("/v1/line")).json()
    assert view["conveyors"][0]["state"] == "Held" and not view["conveyors"][0]["available"]
    gauge = 'linectl_conveyor_state{conveyor="C1",state="Held"} 1.0'
    deadline = time.monotonic() + 15
    while gauge not in (await line.http.get("/metrics")).text:
        assert time.monotonic() < deadline, "PackML state not in the metrics"
        await asyncio.sleep(0.2)
    # not valid while held: refused, and the unit stays held
    refused = await send("start")
    assert refused.status_code == 409 and "refused start" in refused.json()["detail"]
    assert (await send("unhold")).json()["state"] == "Execute"
    assert (await send("stop")).json()["state"] == "Stopped"
    assert (await send("reset")).json()["state"] == "Idle"
    assert (await send("start")).json()["state"] == "Execute"
    anonymous = await line.http.post("/v1/conveyors/C1/hold", headers={"Authorization": ""})
    assert anonymous.status_code == 401


async def test_failed_pick_requeues_the_order_and_another_trip_completes_it(line: Line) -> None:
    await line.put("F1", **line.b2c("SKU-0008"))
    await line.until("F1", lambda o, s: "robot_assigned" in s)
    history = await line.service.store.history("F1")
    robot = next(e.data["robot"] for e in history if e.type == "robot_assigned")
    line.sim.robots.fail_next_action(robot)  # the pick at the shelf fails
    order, steps = await line.until("F1", settled, within=60)
    assert order.status is OrderStatus.COMPLETED, steps
    assert steps.count("robot_assigned") == 2
    failed = next(
        e for e in await line.service.store.history("F1") if e.type == "robot_action_failed"
    )
    assert failed.data["attempt"] == 1 and "injected failure" in failed.data["reason"]
    assert failed.status is OrderStatus.ACCEPTED
    assert order.lines_progress()[0].picked == 1


async def test_robot_losing_its_connection_hands_the_order_to_another_robot(line: Line) -> None:
    await line.put("L1", **line.b2c("SKU-0009", "SKU-0021"))
    await line.until("L1", lambda o, s: "robot_assigned" in s)
    history = await line.service.store.history("L1")
    robot = next(e.data["robot"] for e in history if e.type == "robot_assigned")
    line.sim.robots.drop_connection(robot, for_seconds=60)  # longer than failure_grace (20 s)
    order, steps = await line.until("L1", settled, within=60)
    assert order.status is OrderStatus.COMPLETED, steps
    history = await line.service.store.history("L1")
    lost = next(e for e in history if e.type == "robot_lost")
    assert lost.data["robot"] == robot and "CONNECTIONBROKEN" in lost.data["reason"]
    assert lost.status is OrderStatus.ACCEPTED
    robots = [e.data["robot"] for e in history if e.type == "robot_assigned"]
    assert len(robots) == 2 and robots[1] != robot


async def test_robot_with_a_fatal_error_hands_the_order_on(line: Line) -> None:
    await line.put("L2", **line.b2c("SKU-0010"))
    await line.until("L2", lambda o, s: "robot_assigned" in s)
    history = await line.service.store.history("L2")
    robot = next(e.data["robot"] for e in history if e.type == "robot_assigned")
    line.sim.robots.fatal_error(robot)
    order, steps = await line.until("L2", settled, within=60)
    assert order.status is OrderStatus.COMPLETED, steps
    lost = next(e for e in await line.service.store.history("L2") if e.type == "robot_lost")
    assert "fatal error" in lost.data["reason"]


async def test_operator_cancelling_a_robot_gives_its_order_to_another(line: Line) -> None:
    await line.put("OC1", **line.b2c("SKU-0011", "SKU-0029"))
    await line.until("OC1", lambda o, s: "picked" in s)
    history = await line.service.store.history("OC1")
    robot = next(e.data["robot"] for e in history if e.type == "robot_assigned")
    resp = await line.http.post(f"/v1/robots/{robot}/cancel")
    assert resp.status_code == 202, resp.text
    order, steps = await line.until("OC1", settled, within=60)
    assert order.status is OrderStatus.COMPLETED, steps
    assert "robot_cancelled_by_operator" in steps
    assert steps.count("robot_assigned") == 2
    # the first tote held picked units: it came back and went to the reject chute
    _, steps = await line.until("OC1", lambda o, s: "tote_in_chute" in s)


async def test_low_battery_robot_charges_then_works_again(
    reference_line: LineConfig, mqtt_url: str, interface_name: str, tmp_path: Path
) -> None:
    async with running_line(
        reference_line, mqtt_url, interface_name, tmp_path, time_scale=60
    ) as line:

        async def robot(serial: str) -> dict[str, Any]:
            view = (await line.http.get("/v1/line")).json()
            found: dict[str, Any] = next(r for r in view["robots"] if r["serial"] == serial)
            return found

        async def until(check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
            async with asyncio.timeout(30):  # the robot simulator owns this state: poll it
                while True:
                    r = await robot("R04")
                    if check(r):
                        return r
                    await asyncio.sleep(0.05)

        line.sim.robots.set_battery("R04", 15)
        charging = await until(lambda r: bool(r["charging"]))
        assert charging["last_node_id"] == "CHG1"
        assert "R04" in line.service.orchestrator.dispatcher.charging
        charged = await until(lambda r: not r["charging"] and r["battery"] >= 90 and r["available"])
        assert charged["last_node_id"] == "CHG1"
        async with asyncio.timeout(10):
            while "R04" in line.service.orchestrator.dispatcher.charging:
                await line.service.store.wait_for_event(0, timeout=0.1)


async def test_the_line_view_shows_the_asrs_cranes(line: Line) -> None:
    async def cranes() -> list[dict[str, Any]]:
        resp = await line.http.get("/v1/line")
        assert resp.status_code == 200
        return list(resp.json()["cranes"])

    deadline = time.monotonic() + 30
    while not all(c["connected"] for c in await cranes()):  # the API owns the state: poll it
        assert time.monotonic() < deadline, "the cranes never connected"
        await asyncio.sleep(0.05)
    view = await cranes()
    assert [(c["crane"], c["aisle"], c["state"], c["available"]) for c in view] == [
        ("CR1", "A1", "Idle", True),
        ("CR2", "A2", "Idle", True),
    ]
    assert all(c["x"] == 0.0 and c["y"] == 0.0 and c["queue_length"] == 0 for c in view)


async def test_a_robot_giving_way_after_picking_keeps_its_trip_and_picks_nothing_twice(
    line: Line,
) -> None:
    """Traffic control ends a deadlock by stopping a robot that already picked: the robot
    keeps its tote and its trip, and continues from where it stands once it may work again.
    Nothing is picked a second time and no tote goes to the reject chute."""
    await line.put("GW1", **line.b2c("SKU-0012", "SKU-0027"))
    await line.until("GW1", lambda o, s: "picked" in s)
    history = await line.service.store.history("GW1")
    robot = next(e.data["robot"] for e in history if e.type == "robot_assigned")
    traffic = line.service.orchestrator.traffic
    await traffic.deadlocks.give_way(robot, [robot, "R99"])  # as its deadlock handling does

    order, steps = await line.until("GW1", settled, within=90)
    assert order.status is OrderStatus.COMPLETED, steps
    history = await line.service.store.history("GW1")
    assert "robot_giving_way" in steps and "robot_continued" in steps, steps
    assert steps.index("robot_giving_way") < steps.index("robot_continued")
    # one trip, one robot, one tote: the continuation is the same trip on the same robot
    assigned = [e for e in history if e.type == "robot_assigned"]
    continued = [e for e in history if e.type == "robot_continued"]
    assert len(assigned) == 1, steps
    assert {e.data["trip"] for e in continued} == {assigned[0].data["trip"]}
    assert {e.data["robot"] for e in continued} == {robot}
    assert {e.data["tote"] for e in continued} == {assigned[0].data["tote"]}
    # each line picked once, no failed attempt, nothing went to the reject chute
    picked = [e.data["line_id"] for e in history if e.type == "picked"]
    assert sorted(picked) == ["1", "2"], steps
    assert not {"robot_gave_way", "robot_action_failed", "tote_in_chute"} & set(steps), steps
    assert order.picked == {"1": 1, "2": 1}
    assert order.waiting_reason is None
