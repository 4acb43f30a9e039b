"""The conveyor's PLC dies mid-run and comes back: no order is lost.

The conveyor simulator runs in its own process with retained state (``--state``); the robot
fleet hands dropped totes to it over OPC UA (waiting at the induction while it is down); the
controller runs in-process with its HTTP API. Once totes are on the belt the simulator is killed
with SIGKILL and started again on the same endpoint. The controller must see the outage, get the
belts going again after reading the state, reconcile its tracked items with the conveyor's
tracking table and journal, and finish every order.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
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
from simulators.broker import free_port
from simulators.induction import RemoteInduction
from simulators.line import with_endpoints
from simulators.robots import RobotFleetSimulator
from tests.sim_process import simulator_process

pytestmark = pytest.mark.e2e
TOKEN = "restart-token-0123456789"
TIME_SCALE = 10.0
ORDERS = 12
DESTINATIONS = ("DHL", "UPS", "DPD", "GLS", "HERMES", "POST")
SKUS = ("SKU-0001", "SKU-0007", "SKU-0013", "SKU-0019", "SKU-0025", "SKU-0030")


async def until(
    what: str,
    check: Callable[[], Awaitable[bool]],
    within: float = 60.0,
    state: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Poll ``check`` (state read from the store, metrics or the process) with a timeout; the
    failure shows ``state()`` when given."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() >= deadline:
            seen = await state() if state is not None else None
            raise AssertionError(f"timed out waiting until {what}; {seen}")
        await asyncio.sleep(0.05)


def b2c(clock: ScaledClock, k: int) -> dict[str, Any]:
    return {
        "type": "b2c",
        "priority": 5,
        "due_at": (clock.utcnow() + timedelta(hours=3)).isoformat(),
        "destination": DESTINATIONS[k % len(DESTINATIONS)],
        "lines": [{"line_id": "1", "sku": SKUS[k % len(SKUS)], "quantity": 1}],
    }


async def test_a_killed_conveyor_comes_back_and_no_order_is_lost(
    reference_line: LineConfig,
    mqtt_url: str,
    interface_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="controller.conveyor.tracking")
    clock = ScaledClock(TIME_SCALE)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    state = tmp_path / "conveyor-state.json"
    cfg = with_endpoints(
        reference_line.with_overrides(
            store=StoreConfig(path=str(tmp_path / "line.db")),
            api=ApiConfig(port=free_port(), tokens=[ApiToken(token=TOKEN)]),
            mqtt=reference_line.mqtt.model_copy(update={"interface_name": interface_name}),
        ),
        mqtt_url,
        endpoint,
    )
    induction = RemoteInduction(cfg, endpoint, retry_wall_seconds=0.2)
    robots = RobotFleetSimulator(cfg, clock, mqtt_url, on_drop=induction.on_drop)

    async with (
        simulator_process(endpoint, state, TIME_SCALE) as first,
        LineService(cfg, clock) as svc,
    ):
        store = svc.store
        api = ApiServer(create_app(svc), "127.0.0.1", cfg.api.port, freeze_heap=False)

        def sample(name: str, **labels: str) -> float:
            return svc.metrics.registry.get_sample_value(name, labels) or 0.0

        async def statuses() -> list[OrderStatus]:
            found = [await store.get_order(f"R-{k:02d}") for k in range(ORDERS)]
            return [o.status for o in found if o is not None]

        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(robots.run(), name="sim.robots"),
                tg.create_task(induction.run(), name="sim.induction"),
                tg.create_task(svc.run(), name="linectl"),
                tg.create_task(api.serve(), name="api"),
            ]
            try:
                await wait_ready(svc, api, within=60)
                headers = {"Authorization": f"Bearer {TOKEN}"}
                async with httpx.AsyncClient(base_url=api.url, headers=headers) as http:
                    for k in range(ORDERS):
                        resp = await http.put(f"/v1/orders/R-{k:02d}", json=b2c(clock, k))
                        assert resp.status_code == 201, resp.text

                # kill the conveyor while totes are on it (and more are on their way)
                async def totes_on_the_belt() -> bool:
                    return (await statuses()).count(OrderStatus.IN_TRANSIT) >= 2

                await until("two totes are on the conveyor", totes_on_the_belt)
                first.send_signal(signal.SIGKILL)
                await first.wait()

                async def controller_saw_it() -> bool:
                    return not svc.sorter.snapshot().connected

                await until("the controller sees the conveyor gone", controller_saw_it)
                in_transit = (await statuses()).count(OrderStatus.IN_TRANSIT)
                # a device outage is not unreadiness: orders are still taken, the outage shows
                # in the line view
                async with httpx.AsyncClient(base_url=api.url, headers=headers) as http:
                    ready = await http.get("/readyz")
                    line = (await http.get("/v1/line")).json()
                assert ready.status_code == 200, ready.text
                assert ready.json()["checks"] == {"config": True, "store": True, "intake": True}
                assert [c["connected"] for c in line["conveyors"]] == [False]

                async with simulator_process(endpoint, state, TIME_SCALE):

                    async def all_settled() -> bool:
                        return all(s.terminal for s in await statuses())

                    async def where() -> dict[str, str]:
                        found = [await store.get_order(f"R-{k:02d}") for k in range(ORDERS)]
                        return {
                            o.id: f"{o.status.value}/{o.step}/{o.waiting_reason}"
                            for o in found
                            if o is not None and not o.status.terminal
                        }

                    await until("every order is settled", all_settled, 90, where)
                    snapshot = svc.sorter.snapshot()
                    assert snapshot.connected and snapshot.state == "Execute"
                    histories = {
                        k: [e.type for e in await store.history(f"R-{k:02d}")]
                        for k in range(ORDERS)
                    }
                    settled = await statuses()
                    # one outage seen by the controller; the restarted PLC came back Held (its
                    # watchdog saw the controller gone) and was resumed after the state was read
                    entries = {
                        reason: sample(
                            "linectl_conveyor_safe_state_total", conveyor="C1", reason=reason
                        )
                        for reason in ("comms_lost", "controller_silent")
                    }
            finally:
                for task in tasks:
                    task.cancel()

    assert in_transit >= 1
    assert settled == [OrderStatus.COMPLETED] * ORDERS
    for steps in histories.values():
        assert "tote_lost_on_conveyor" not in steps and "rejected" not in steps, steps
    assert entries == {"comms_lost": 1, "controller_silent": 1}
    assert sample("linectl_conveyor_reconciled_total", conveyor="C1", action="tote_lost") == 0
    reconciled = [r for r in caplog.records if r.getMessage() == "conveyor items reconciled"]
    assert reconciled, "the controller did not reconcile its items after the restart"
    assert robots.collisions == []
