"""Chaos: every part of the line as its own process, each taken down mid-flow.

The controller (``linectl run``), a Mosquitto of the line's own, the conveyor and AS/RS
simulators (with their retained state files) and the robot fleet run as separate processes; the
order store sits on a small disk of its own. While orders flow in over HTTP the controller is
killed (SIGKILL, twice) and stopped (SIGTERM), the broker, the conveyor and the AS/RS are killed
as a power cut would, and the store's disk fills up and is freed again. Then, measured from
outside the controller (:mod:`tests.chaos_figures`): every order terminal and none lost, no tote
left on a robot, no order line picked twice, no crane command or divert executed twice, every
completed order booked exactly as ordered, and the ledger adding up.

``bench/chaos.py`` runs the long version (200 orders, 5 controller kills) and prints its figures.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path

import pytest

from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from tests.chaos_figures import TERMINAL, fetch_orders, measure
from tests.chaos_flow import (
    Bodies,
    one_aisle_orders,
    order_statuses,
    put_orders,
    settle,
    units_picked_by_robots,
    with_replenishments,
)
from tests.chaos_line import MOSQUITTO, Fault, chaos_line
from tests.small_disk import small_disk

pytestmark = pytest.mark.e2e

TIME_SCALE = 20.0
ORDERS = 48
INTERVAL = 3.5  # wall seconds of flow before each fault: the wave's orders go out over the
SPREAD = 2.5  # first SPREAD seconds, and the fault comes a second (20 line seconds) after the
# last of them, while they are under way (a robot's trip takes far longer); with 5 s a fast
# line had a whole wave done before its fault
DOWN = 2.0  # wall seconds a part stays down (the disk full)
# the order of the faults: each part at least once, the controller three times
SCHEDULE: list[tuple[Fault, signal.Signals]] = [
    (Fault.CONTROLLER, signal.SIGKILL),
    (Fault.BROKER, signal.SIGKILL),
    (Fault.ASRS, signal.SIGKILL),
    (Fault.CONTROLLER, signal.SIGTERM),
    (Fault.CONVEYOR, signal.SIGKILL),
    (Fault.DISK, signal.SIGKILL),
    (Fault.CONTROLLER, signal.SIGKILL),
]


def chaos_orders(reference: LineConfig) -> Bodies:
    """One-aisle orders, after three that start replenishments (crane commands)."""
    carriers = sorted(reference.conveyor.sorter.sort_plan)
    now = ScaledClock(TIME_SCALE).utcnow()
    orders = one_aisle_orders(ORDERS, seed=7, carriers=carriers, now=now)
    return with_replenishments(orders, 3, carriers, now)


@pytest.mark.timeout(600)  # about 90 s; the end waits at most 300 s for every order to end
async def test_the_line_survives_every_part_going_down_mid_flow(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    if shutil.which(MOSQUITTO) is None:
        pytest.skip("the chaos test runs a Mosquitto of its own: install mosquitto")
    orders = chaos_orders(reference_line)
    order_ids = list(orders)
    with small_disk(tmp_path / "disk", megabytes=64) as disk:
        async with chaos_line(
            reference_line, tmp_path / "run", time_scale=TIME_SCALE, disk=disk
        ) as chaos:
            # a wave of orders before each fault: every fault hits orders under way
            waves = [order_ids[k :: len(SCHEDULE)] for k in range(len(SCHEDULE))]
            sending: list[asyncio.Task[None]] = []
            mid_flow: list[str] = []
            t0 = time.monotonic()
            for (kind, sig), wave in zip(SCHEDULE, waves, strict=True):
                batch = {o: orders[o] for o in wave}
                sending.append(asyncio.create_task(put_orders(chaos, batch, SPREAD)))
                await asyncio.sleep(INTERVAL)
                statuses = await order_statuses(chaos, order_ids)
                assert statuses is not None, "the controller's API does not answer"
                if any(s not in (*TERMINAL, "missing") for s in statuses.values()):
                    mid_flow.append(kind.value)
                await chaos.fault(kind, DOWN, sig)
                # no fault of another part ends the controller (a full disk included)
                controller = chaos.line.controller
                assert controller is not None and controller.returncode is None, (
                    f"the controller exited after the {kind.value} fault: see {tmp_path}; "
                    f"its last lines:\n{chaos.line.log_tail()}"
                )
            await asyncio.gather(*sending)
            settled = await settle(chaos, order_ids, within=300.0)
            flow = time.monotonic() - t0
            async with chaos.line.http() as http:
                final = await fetch_orders(http, order_ids)
            ordered = {o: units_picked_by_robots(body) for o, body in orders.items()}
            figures = measure(
                final,
                ordered,
                chaos.watch,
                chaos.store_path,
                chaos.conveyor_state,
                chaos.asrs_state,
            )
            exits = list(chaos.exits)
            store_outages = chaos.store_outages
            # the store outlives its disk, for a look after a failure
            shutil.copy2(chaos.store_path, tmp_path / "run" / "line.db")

    report = "\n".join(
        [
            *figures.lines(),
            f"flow {flow:.0f} s, faults mid-flow {mid_flow}, store outages {store_outages}",
        ]
    )
    print(report)
    # every fault hit a line with orders open
    assert len(mid_flow) == len(SCHEDULE), report
    # a SIGTERM is a clean stop; a SIGKILL ends the process by the signal
    assert exits == [
        ("SIGKILL", -signal.SIGKILL),
        ("SIGTERM", 0),
        ("SIGKILL", -signal.SIGKILL),
    ], exits
    # the full disk made the store's writes fail, and the controller said so (/readyz)
    assert store_outages == 1, report
    assert settled, report
    assert figures.orders == len(orders)
    assert figures.lost == 0, report
    assert figures.exception_share < 0.05, report
    assert not figures.totes_on_robots, report
    assert not figures.lines_picked_twice, report
    assert not figures.crane_commands_twice, report
    assert not figures.diverts_twice, report
    assert not figures.booked_mismatch, report
    assert not figures.ledger_mismatch, report
    assert figures.reservations_open == 0, report
    assert figures.picks_of_no_order == 0, report
    # the checks above saw real work: totes diverted, cranes commanded
    assert figures.diverts >= figures.completed > 0, report
    assert figures.crane_commands > 0, report
