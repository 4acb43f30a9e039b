"""Reconciliation against a real conveyor simulator, through the sorter adapter.

- The PLC dies between a divert request and the divert (it does not retain requests): after the
  restart the controller requests the divert again and the tote reaches its chute on this pass.
- The controller stops listening while the PLC runs on and a divert completes: once the session
  is up again the divert is read back from the journal, with the tote's code.
- Divert completions of two diverts reach the controller out of their journal order (a server
  sends one publish's events monitored item by monitored item): each is reported, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asyncua import Client

from controller.conveyor.tracking import ConveyorReconciler
from controller.line.history import History
from controller.line.trips import InFlight, Trip
from controller.store.sqlite.store import SqliteOrderStore
from devices import base as dev
from devices.opcua import OpcUaSorter
from kernel.backoff import Backoff
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from simulators.broker import free_port
from simulators.conveyor.facts import DivertFinished
from simulators.conveyor.simulator import ConveyorSimulator
from simulators.line import with_endpoints
from tests.sim_process import simulator_process

pytestmark = pytest.mark.integration

WAIT = 20.0  # wall seconds
TIME_SCALE = 1.0  # the tote needs 8 s from the scanner to the reject divert: time to kill


@dataclass
class Controller:
    sorter: OpcUaSorter
    events: asyncio.Queue[dev.DeviceEvent]
    flight: InFlight
    reconciler: ConveyorReconciler
    metrics: Metrics

    async def next(
        self, kind: type[dev.DeviceEvent], match: Callable[[dev.DeviceEvent], bool] = bool
    ) -> dev.DeviceEvent:
        async with asyncio.timeout(WAIT):
            while True:
                event = await self.events.get()
                if isinstance(event, kind) and match(event):
                    return event

    def reconciled(self, action: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "linectl_conveyor_reconciled_total", {"conveyor": "C1", "action": action}
        )
        return value or 0.0

    def on_conveyor(self, tote: str, item_id: str) -> None:
        """What the controller knows once a robot dropped ``tote`` and it was scanned."""
        trip = Trip(
            f"trip-{tote}", f"O-{tote}", "R1", tote, (), "IN1", datetime.now(UTC), "X", False
        )
        trip.drop()
        self.flight.start(f"job-{tote}", [trip], {})
        self.flight.item(item_id).tote = tote


@contextlib.asynccontextmanager
async def controller(line: LineConfig, tmp_path: Path) -> AsyncIterator[Controller]:
    clock = ScaledClock(TIME_SCALE)
    metrics = Metrics()
    store = SqliteOrderStore(tmp_path / "orders.db")
    await store.open()
    sorter = OpcUaSorter(
        line, clock, metrics, backoff=Backoff(initial=0.05, maximum=0.2), request_timeout=2.0
    )
    flight = InFlight()
    reconciler = ConveyorReconciler(
        flight, sorter, History(store, clock, metrics), metrics, clock, grace=60.0
    )
    try:
        yield Controller(sorter, asyncio.Queue(), flight, reconciler, metrics)
    finally:
        await store.close()


async def induct(endpoint: str, line: LineConfig, tote: str) -> str:
    async with Client(endpoint, timeout=5) as client:
        idx = await client.get_namespace_index(line.conveyor.opcua.namespace)
        simulation = await client.nodes.objects.get_child([f"{idx}:Simulation"])
        item_id = await simulation.call_method(f"{idx}:Induct", tote, "Z01")
    assert isinstance(item_id, str)
    return item_id


def scan_of(item_id: str) -> Callable[[dev.DeviceEvent], bool]:
    return lambda ev: isinstance(ev, dev.ItemScanned) and ev.item_id == item_id


async def test_a_divert_request_lost_with_the_plc_is_sent_again(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    line = with_endpoints(reference_line, "mqtt://127.0.0.1:1", endpoint)
    state = tmp_path / "plc.json"
    async with controller(line, tmp_path) as ctl, asyncio.TaskGroup() as tg:
        async with simulator_process(endpoint, state, TIME_SCALE) as plc:
            task = tg.create_task(ctl.sorter.run(ctl.events))
            await ctl.next(dev.ConveyorTracking)  # first contact: nothing to reconcile
            item_id = await induct(endpoint, line, "TOTE-R1")
            await ctl.next(dev.ItemScanned, scan_of(item_id))
            ctl.on_conveyor("TOTE-R1", item_id)
            await ctl.sorter.divert(item_id, "REJECT")
            ctl.flight.items[item_id].chute = "REJECT"
            plc.send_signal(signal.SIGKILL)
            await plc.wait()
        await ctl.next(dev.ConveyorAvailability, lambda ev: not getattr(ev, "available", True))

        async with simulator_process(endpoint, state, TIME_SCALE):
            tracking = await ctl.next(dev.ConveyorTracking)
            assert isinstance(tracking, dev.ConveyorTracking)
            (held,) = [i for i in tracking.items if i.tote_id == "TOTE-R1"]
            assert held.item_id == item_id and held.on_belt and held.requested_chute is None
            await ctl.reconciler.reconcile(tracking)
            assert ctl.reconciled("divert_resent") == 1
            done = await ctl.next(dev.ItemDiverted)
            assert isinstance(done, dev.ItemDiverted)
            assert (done.item_id, done.chute_id, done.ok, done.replayed) == (
                item_id,
                "REJECT",
                True,
                False,
            )
            task.cancel()


async def test_a_divert_missed_while_not_listening_is_read_back(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    line = with_endpoints(reference_line, "mqtt://127.0.0.1:1", endpoint)
    async with (
        controller(line, tmp_path) as ctl,
        simulator_process(endpoint, tmp_path / "plc.json", TIME_SCALE),
    ):
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(ctl.sorter.run(ctl.events))
            await ctl.next(dev.ConveyorTracking)
            item_id = await induct(endpoint, line, "TOTE-J1")
            await ctl.next(dev.ItemScanned, scan_of(item_id))
            ctl.on_conveyor("TOTE-J1", item_id)
            await ctl.sorter.divert(item_id, "CH-DHL")  # the next divert, 2.25 s away
            task.cancel()  # the controller stops listening; the belts run on
        async with Client(endpoint, timeout=5) as client:
            idx = await client.get_namespace_index(line.conveyor.opcua.namespace)
            count = await client.nodes.objects.get_child(
                [f"{idx}:{p}" for p in ("Line", "C1", "Sorter", "S1", "Chutes", "CH-DHL", "Count")]
            )
            deadline = time.monotonic() + WAIT
            while await count.read_value() == 0:  # the PLC diverted it while nobody listened
                assert time.monotonic() < deadline, "the tote never reached CH-DHL"
                await asyncio.sleep(0.05)
        while not ctl.events.empty():  # what the adapter put on the queue before it stopped
            assert not isinstance(ctl.events.get_nowait(), dev.ItemDiverted)

        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(ctl.sorter.run(ctl.events))
            replay = await ctl.next(dev.ItemDiverted)
            assert isinstance(replay, dev.ItemDiverted)
            assert replay.replayed and replay.ok
            assert (replay.item_id, replay.tote_id, replay.chute_id) == (
                item_id,
                "TOTE-J1",
                "CH-DHL",
            )
            assert replay.divert_id == "D1" and replay.sequence == 1
            ctl.reconciler.diverted(replay)
            tracking = await ctl.next(dev.ConveyorTracking)
            assert isinstance(tracking, dev.ConveyorTracking)
            assert tracking.items == ()
            await ctl.reconciler.reconcile(tracking)
            assert not ctl.reconciler.missing  # its arrival is on its way to the order
            assert ctl.reconciled("divert_replayed") == 1
            task.cancel()


async def test_diverts_that_arrive_out_of_journal_order_are_each_reported_once(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    line = with_endpoints(reference_line, "mqtt://127.0.0.1:1", endpoint)
    d1, d2 = line.conveyor.sorter.diverts[:2]
    # journal numbers 1 and 3 from the first divert, 2 from the second, within one publish:
    # the server sends the first divert's events (1, 3), then the second's (2)
    finished = [
        DivertFinished(d1.id, "C1-9001", d1.chute, True, 0.0, "TOTE-O1", 1),
        DivertFinished(d2.id, "C1-9002", d2.chute, True, 0.0, "TOTE-O2", 2),
        DivertFinished(d1.id, "C1-9003", d1.chute, True, 0.0, "TOTE-O3", 3),
    ]
    async with (
        ConveyorSimulator(line, ScaledClock(TIME_SCALE), endpoint) as plc,
        controller(line, tmp_path) as ctl,
        asyncio.TaskGroup() as tg,
    ):
        task = tg.create_task(ctl.sorter.run(ctl.events))
        await ctl.next(dev.ConveyorTracking)  # first contact: the journal is empty
        # the events as the PLC's divert event sources raise them (one publish call: no pause)
        await plc._running()._publisher.publish(finished)
        got = [await ctl.next(dev.ItemDiverted) for _ in finished]
        assert sorted(
            (ev.sequence, ev.item_id) for ev in got if isinstance(ev, dev.ItemDiverted)
        ) == [
            (1, "C1-9001"),
            (2, "C1-9002"),
            (3, "C1-9003"),
        ]
        # a divert read back again (a reconnect's journal, a repeated event) is not reported
        await plc._running()._publisher.publish(finished[1:2])
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                await ctl.next(dev.ItemDiverted)
        task.cancel()
