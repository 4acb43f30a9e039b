"""The orchestrator's take-over of a robot at start, on a real store, with a recording fleet.

The last run's trip is written to the store as the dispatcher writes it; a restarted
orchestrator (nothing in memory) resumes, and the robot's first report drives the take-over:
what it did meanwhile is booked once, a robot still executing is stopped and its trip continues
into the same tote, a tote no trip accounts for goes back, a trip gone from the robot is queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.line.trips import ActionRef, Trip
from controller.orders.model import OrderIn, OrderLine, OrderStatus, OrderType
from controller.robots.trip_records import job_data
from controller.service.orchestrator import Orchestrator
from controller.store.sqlite.store import SqliteOrderStore
from devices import base as dev
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from routing.dispatch import Pick

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PICKS = (Pick("1", "SKU-0019", "L22A", "G22", 1), Pick("2", "SKU-0022", "L23B", "G23", 2))
REFS = {
    "t1-pick-0": ActionRef("t1", "pick", 0),
    "t1-pick-1": ActionRef("t1", "pick", 1),
    "t1-drop-a": ActionRef("t1", "drop"),
}


@dataclass
class RecordingFleet:
    """A fleet whose robots report what the test sets; it records what it is sent."""

    snaps: dict[str, dev.RobotSnapshot] = field(default_factory=dict)
    orders: list[tuple[str, dev.RobotOrder]] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)

    async def run(self, events: asyncio.Queue[dev.DeviceEvent]) -> None:
        await asyncio.Event().wait()

    async def send_order(self, serial: str, order: dev.RobotOrder) -> None:
        self.orders.append((serial, order))

    async def send_order_update(
        self,
        serial: str,
        order_id: str,
        nodes: Sequence[dev.RouteNode],
        edges: Sequence[dev.RouteEdge],
    ) -> int:
        raise AssertionError("no updates without traffic control")

    async def send_instant_actions(self, serial: str, actions: Sequence[dev.RobotAction]) -> None:
        pass

    async def cancel_order(self, serial: str) -> str:
        self.cancels.append(serial)
        return f"cancel-{len(self.cancels)}"

    def robot_positions(self) -> dict[str, dev.RobotPosition]:
        return dev.positions_of(self.snapshot())

    def snapshot_of(self, serials: Iterable[str]) -> dict[str, dev.RobotSnapshot]:
        return dev.snapshots_in(self.snapshot(), serials)

    def snapshot(self) -> dict[str, dev.RobotSnapshot]:
        return dict(self.snaps)


class Sorter:
    def snapshot(self) -> dev.ConveyorSnapshot:
        return dev.ConveyorSnapshot("C1", True, "Execute")


def report(**kw: Any) -> dev.RobotSnapshot:
    base: dict[str, Any] = {
        "serial": "R01",
        "manufacturer": "m",
        "version": "2.0.0",
        "connection": "ONLINE",
        "operating_mode": "AUTOMATIC",
        "last_node_id": "G22",
        "x": 8.0,
        "y": 6.0,
        "driving": False,
        "order_id": "job-1",
        "battery": 80.0,
        "errors": (),
        "state_age": 0.1,
        "available": True,
    }
    return dev.RobotSnapshot(**{**base, **kw})


def acts(**statuses: str) -> tuple[dev.ActionStatus, ...]:
    return tuple(
        dev.ActionStatus(f"t1-{a.replace('_', '-')}", "drop" if "drop" in a else "pick", s)
        for a, s in statuses.items()
    )


@dataclass
class Restart:
    orch: Orchestrator
    fleet: RecordingFleet
    store: SqliteOrderStore
    clock: ManualClock

    async def steps(self) -> list[str]:
        return [e.type for e in await self.store.history("O-1")]

    async def first_report(self, snap: dev.RobotSnapshot) -> None:
        self.fleet.snaps["R01"] = snap
        await self.orch.handle(dev.RobotAvailability("R01", True, "ok", self.clock.utcnow()))

    async def booked(self) -> dict[str, int]:
        """Units booked out by robot picks per SKU for O-1."""
        rows = await self.orch.inventory.movements(after=0, limit=1000)
        out: dict[str, int] = {}
        for m in rows:
            if m.order_id == "O-1":
                out[m.sku] = out.get(m.sku, 0) - m.delta
        return out


@pytest.fixture
async def restart(reference_line: LineConfig, tmp_path: Path) -> AsyncIterator[Restart]:
    """The last run sent R01 job-1 for O-1 (trip t1, tote T1) and booked nothing; a new
    orchestrator resumed on the same store. Traffic control is off (orders go straight out)."""
    async with restarted(reference_line, tmp_path) as running:
        yield running


@asynccontextmanager
async def restarted(
    reference_line: LineConfig,
    tmp_path: Path,
    later: Callable[[SqliteOrderStore, ManualClock], Awaitable[None]] | None = None,
) -> AsyncIterator[Restart]:
    """As the ``restart`` fixture; ``later`` writes what the last run recorded after job-1."""
    robots = reference_line.robots.model_copy(
        update={"traffic": reference_line.robots.traffic.model_copy(update={"enabled": False})}
    )
    cfg = reference_line.with_overrides(robots=robots)
    clock = ManualClock(START)
    store = SqliteOrderStore(tmp_path / "line.db")
    await store.open()
    body = OrderIn(
        type=OrderType.B2C,
        due_at=START + timedelta(hours=3),
        destination="DHL",
        lines=[
            OrderLine(line_id="1", sku="SKU-0019", quantity=1),
            OrderLine(line_id="2", sku="SKU-0022", quantity=2),
        ],
    )
    await store.create_order("O-1", body, clock.utcnow())
    trip = Trip("t1", "O-1", "R01", "T1", PICKS, "INDUCT1", START, "DHL", False)
    data = job_data(trip, "R01", "job-1", REFS)
    await store.record(
        "O-1", "robot_assigned", clock.utcnow(), status=OrderStatus.RELEASED, data=data
    )
    if later is not None:
        await later(store, clock)
    fleet = RecordingFleet()
    sorter: Any = Sorter()
    orch = Orchestrator(cfg, clock, store, Metrics(), fleet, sorter)
    await orch.resume()
    try:
        yield Restart(orch, fleet, store, clock)
    finally:
        await store.close()


async def test_the_last_runs_trip_is_back_on_its_robot_with_its_stock_reserved(
    restart: Restart,
) -> None:
    trip = restart.orch.flight.trip_of_order("O-1")
    assert trip is not None and trip.job_id == "job-1" and trip.tote == "T1"
    assert "R01" in restart.orch.flight.busy_robots
    rec = await restart.store.get_order("O-1")
    assert rec is not None and rec.status is OrderStatus.RELEASED
    assert restart.orch.inventory.totals("SKU-0022").reserved == 2
    assert not restart.orch.takeover.done("R01")


async def test_a_robot_still_executing_is_stopped_and_its_trip_continues(
    restart: Restart,
) -> None:
    running = report(
        nodes_left=("G23", "IND1"),
        actions=acts(pick_0="FINISHED", pick_1="WAITING", drop_a="WAITING"),
        loads=(dev.RobotLoad("T1"),),
    )
    await restart.first_report(running)
    assert restart.fleet.cancels == ["R01"]
    assert await restart.booked() == {"SKU-0019": 1}  # the pick done meanwhile, booked now
    # the cancel ends the order: what was not done fails, and the robot stands at G23
    stopped = replace(
        running,
        nodes_left=(),
        last_node_id="G23",
        actions=acts(pick_0="FINISHED", pick_1="FAILED", drop_a="FAILED"),
    )
    restart.fleet.snaps["R01"] = stopped
    await restart.orch.handle(
        dev.RobotActionFinished("R01", "job-1", "cancel-1", "cancelOrder", "", START)
    )
    assert restart.orch.takeover.done("R01")
    await restart.orch.dispatcher.dispatch_once()
    [(serial, order)] = restart.fleet.orders
    assert serial == "R01" and order.nodes[0].node_id == "G23"
    actions = [a for n in order.nodes for a in n.actions]
    assert [(a.action_type, dict(a.parameters)["loadId"]) for a in actions] == [
        ("pick", "T1"),  # only the pick left, into the same tote
        ("drop", "T1"),
    ]
    steps = await restart.steps()
    assert steps[-3:] == ["picked", "robot_taken_over", "robot_continued"]
    # the next restart rebuilds the trip from the continuation
    rec = await restart.store.history("O-1")
    assert rec[-1].data["job"] == order.order_id
    # the robot reports the continued pick: booked; the first is not booked again
    pick = actions[0].action_id
    await restart.orch.handle(
        dev.RobotActionFinished("R01", order.order_id, pick, "pick", "", START)
    )
    assert await restart.booked() == {"SKU-0019": 1, "SKU-0022": 2}


async def test_a_trip_finished_while_no_controller_ran_is_booked_and_on_the_conveyor(
    restart: Restart,
) -> None:
    await restart.first_report(
        report(
            last_node_id="IND1",
            actions=acts(pick_0="FINISHED", pick_1="FINISHED", drop_a="FINISHED"),
        )
    )
    assert restart.fleet.cancels == []
    assert await restart.booked() == {"SKU-0019": 1, "SKU-0022": 2}
    rec = await restart.store.get_order("O-1")
    assert rec is not None and rec.status is OrderStatus.IN_TRANSIT
    trip = restart.orch.flight.by_tote["T1"]
    assert trip.dropped and "R01" not in restart.orch.flight.busy_robots
    assert restart.orch.takeover.done("R01")
    # reported again (a later state): nothing is booked twice
    await restart.first_report(report(actions=acts(pick_0="FINISHED")))
    assert (await restart.steps()).count("picked") == 2


async def test_a_trip_gone_from_its_robot_goes_back_to_the_queue(restart: Restart) -> None:
    await restart.first_report(report(order_id=None))  # rebooted: no order, no tote
    rec = await restart.store.get_order("O-1")
    assert rec is not None and rec.status is OrderStatus.ACCEPTED
    assert (await restart.steps())[-2:] == ["robot_taken_over", "requeued"]
    assert restart.orch.inventory.totals("SKU-0022").reserved == 0
    assert "O-1" in restart.orch.dispatcher.pending


async def test_a_tote_no_trip_accounts_for_is_dropped_at_an_induction(restart: Restart) -> None:
    await restart.first_report(report(order_id=None, loads=(dev.RobotLoad("T-STRAY"),)))
    await restart.orch.dispatcher.dispatch_once()
    [(serial, order)] = restart.fleet.orders
    drops = [dict(a.parameters)["loadId"] for n in order.nodes for a in n.actions]
    assert serial == "R01" and drops == ["T-STRAY"]
    assert order.nodes[-1].node_id in {"IND1", "IND2"}


async def test_an_order_cancelled_before_its_trip_continues_brings_its_tote_back(
    restart: Restart,
) -> None:
    await restart.first_report(report(order_id=None, actions=(), loads=(dev.RobotLoad("T1"),)))
    trip = restart.orch.flight.trip_of_order("O-1")
    assert trip is not None and trip.continuing
    await restart.orch.cancel("O-1")
    rec = await restart.store.get_order("O-1")
    assert rec is not None and rec.status is OrderStatus.CANCELLED
    assert restart.orch.inventory.totals("SKU-0022").reserved == 0
    await restart.orch.dispatcher.dispatch_once()
    # the tote is on the robot (whatever is in it): it is dropped for the reject chute
    [(_, order)] = restart.fleet.orders
    actions = [
        (a.action_type, dict(a.parameters)["loadId"]) for n in order.nodes for a in n.actions
    ]
    assert actions == [("drop", "T1")]


async def test_a_robot_with_a_stray_tote_can_be_held_until_unloaded(restart: Restart) -> None:
    takeover = restart.orch.takeover
    takeover.stray_policy = "hold"
    await restart.first_report(report(order_id=None, loads=(dev.RobotLoad("T-STRAY"),)))
    assert not takeover.done("R01")
    await restart.orch.dispatcher.dispatch_once()
    assert restart.fleet.orders == []  # no drop sent, no work either
    restart.fleet.snaps["R01"] = report(order_id=None)  # an operator took the tote off
    assert takeover.done("R01")


async def test_a_pick_in_the_ledger_but_not_in_the_history_is_recorded_not_booked_again(
    restart: Restart,
) -> None:
    """The last run was killed between booking a pick and recording it in the history."""
    orch = restart.orch
    await orch.inventory.confirm_pick("O-1", "t1", PICKS[0], 1, "t1-pick-0")
    sorter: Any = Sorter()
    again = Orchestrator(
        orch.config, restart.clock, restart.store, Metrics(), restart.fleet, sorter
    )
    await again.resume()
    assert again.inventory.totals("SKU-0019").reserved == 1  # not known as picked: reserved
    restart.orch = again
    await restart.first_report(report(nodes_left=("G23",), actions=acts(pick_0="FINISHED")))
    assert await restart.booked() == {"SKU-0019": 1}
    assert again.inventory.totals("SKU-0019").reserved == 0
    assert (await restart.steps()).count("picked") == 1


async def test_a_stopping_robot_is_settled_once_it_stands_whatever_its_cancel_said(
    restart: Restart,
) -> None:
    running = report(
        nodes_left=("G23",),
        actions=acts(pick_0="RUNNING", pick_1="WAITING", drop_a="WAITING"),
        loads=(dev.RobotLoad("T1"),),
    )
    await restart.first_report(running)
    # the cancel is refused (another cancel is under way): the robot still drives
    await restart.orch.handle(
        dev.RobotActionFailed("R01", "job-1", "cancel-1", "cancelOrder", "", "busy", START)
    )
    assert not restart.orch.takeover.done("R01")
    await restart.orch.dispatcher.dispatch_once()
    assert restart.fleet.orders == []  # not yet: it has not stopped
    restart.fleet.snaps["R01"] = replace(
        running, nodes_left=(), actions=acts(pick_0="FINISHED", pick_1="FAILED", drop_a="FAILED")
    )
    await restart.orch.dispatcher.dispatch_once()
    assert restart.orch.takeover.done("R01")
    assert await restart.booked() == {"SKU-0019": 1}
    [(_, order)] = restart.fleet.orders
    assert [a.action_type for n in order.nodes for a in n.actions] == ["pick", "drop"]


async def test_a_standing_robot_found_by_its_report_and_the_dispatch_round_is_settled_once(
    restart: Restart,
) -> None:
    running = report(
        nodes_left=("G23",),
        actions=acts(pick_0="RUNNING", pick_1="WAITING", drop_a="WAITING"),
        loads=(dev.RobotLoad("T1"),),
    )
    await restart.first_report(running)  # stopped for its take-over
    restart.fleet.snaps["R01"] = replace(
        running, nodes_left=(), actions=acts(pick_0="FINISHED", pick_1="FAILED", drop_a="FAILED")
    )
    available = dev.RobotAvailability("R01", True, "ok", restart.clock.utcnow())
    await asyncio.gather(restart.orch.takeover.poll(), restart.orch.handle(available))
    assert restart.orch.takeover.done("R01")
    assert (await restart.steps()).count("robot_taken_over") == 1
    trip = restart.orch.flight.trip_of_order("O-1")
    assert trip is not None and trip.continuing


async def test_a_robot_stopped_to_give_way_before_the_restart_continues_its_trip(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    """The last run stopped R01 to give way in a traffic jam after its first pick: what that
    cancel failed is no fault of the robot, the trip continues into the same tote and nothing
    is picked again."""

    async def gave_way(store: SqliteOrderStore, clock: ManualClock) -> None:
        picked = {"trip": "t1", "pick": 0, "line_id": "1", "quantity": 1, "action": "t1-pick-0"}
        await store.record("O-1", "picked", clock.utcnow(), status=OrderStatus.PICKING, data=picked)
        await store.record(
            "O-1", "robot_giving_way", clock.utcnow(), data={"robot": "R01", "job": "job-1"}
        )

    async with restarted(reference_line, tmp_path, gave_way) as restart:
        trip = restart.orch.flight.trip_of_order("O-1")
        assert trip is not None and trip.stopping
        # the robot stands where it gave way: its cancel failed the pick and the drop left
        await restart.first_report(
            report(
                last_node_id="G23",
                actions=acts(pick_0="FINISHED", pick_1="FAILED", drop_a="FAILED"),
                loads=(dev.RobotLoad("T1"),),
            )
        )
        assert restart.fleet.cancels == []  # it stands: nothing to stop
        assert restart.orch.takeover.done("R01")
        await restart.orch.dispatcher.dispatch_once()
        [(serial, order)] = restart.fleet.orders
        actions = [a for n in order.nodes for a in n.actions]
        assert serial == "R01" and order.nodes[0].node_id == "G23"
        assert [(a.action_type, dict(a.parameters)["loadId"]) for a in actions] == [
            ("pick", "T1"),
            ("drop", "T1"),
        ]
        steps = await restart.steps()
        assert "robot_action_failed" not in steps and "requeued" not in steps, steps
        assert steps[-2:] == ["robot_taken_over", "robot_continued"]
        assert await restart.booked() == {}  # the first pick was booked by the last run
        assert not trip.stopping and restart.orch.robot_faults.accepts_trips("R01")


async def test_a_broker_outage_does_not_count_against_the_robots(restart: Restart) -> None:
    """While the controller's own broker link is down nothing is known of the robots: their
    failure grace counts only once they can be heard again."""
    await restart.first_report(report(actions=acts(pick_0="RUNNING")))
    at = restart.clock.utcnow()
    orch = restart.orch
    await orch.handle(dev.RobotAvailability("R01", False, "broker connection down", at, True))
    assert "R01" not in orch.state.lost
    await restart.clock.advance(3600)  # an hour without the broker
    # the link is back, the robot not heard from yet: its grace starts now
    await orch.handle(dev.RobotAvailability("R01", False, "no state for 31 s", at))
    assert orch.state.lost["R01"] == (restart.clock.now(), "no state for 31 s")
    # it reports: nothing was given away
    await orch.handle(dev.RobotAvailability("R01", True, "ok", at))
    assert "R01" not in orch.state.lost
    trip = orch.flight.trip_of_order("O-1")
    assert trip is not None and trip.live


async def test_an_order_sorted_into_its_chute_before_the_stop_completes_at_the_start(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    """The last run recorded the B2C order sorted into its chute and stopped before writing
    the completion that follows at once: the start completes it."""

    async def sorted_in_chute(store: SqliteOrderStore, clock: ManualClock) -> None:
        where = {"chute": "CH-DHL", "divert": "D1", "tote": "T1"}
        await store.record(
            "O-1", "sorted", clock.utcnow(), status=OrderStatus.SORTED, step="in_chute", data=where
        )

    async with restarted(reference_line, tmp_path, sorted_in_chute) as running:
        rec = await running.store.get_order("O-1")
        assert rec is not None and rec.status is OrderStatus.COMPLETED, rec
        events = await running.store.history("O-1")
        assert [e.type for e in events][-2:] == ["sorted", "completed"]
        assert events[-1].data == {"resumed": True}
        assert running.orch.flight.trip_of_order("O-1") is None
