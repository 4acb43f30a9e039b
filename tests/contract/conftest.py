"""The conveyor contract: every case runs against both sides of the documented model.

``driver`` is parametrised: ``client`` is a generic asyncua client on the simulator, ``adapter``
is linectl's sorter adapter on the same kind of simulator. An asyncua server takes seconds to
start, so each side gets one simulator per module; every case starts from the same baseline
(unit in ``Execute``, chutes enabled and not forced full, clean reads) and hands the totes it
inducted to the reject chute when it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator
from tests.contract.adapter_driver import AdapterDriver
from tests.contract.client_driver import ClientDriver
from tests.contract.driver import Driver
from tests.contract.line import TIME_SCALE, contract_line

DRIVERS: dict[str, type[Driver]] = {"client": ClientDriver, "adapter": AdapterDriver}


@dataclass(frozen=True)
class Side:
    kind: str
    sim: ConveyorSimulator
    config: LineConfig
    clock: ScaledClock


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=list(DRIVERS))
async def side(request: pytest.FixtureRequest) -> AsyncIterator[Side]:
    config = contract_line()
    clock = ScaledClock(TIME_SCALE)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    async with ConveyorSimulator(config, clock, endpoint) as sim:
        yield Side(request.param, sim, config, clock)


@pytest_asyncio.fixture(loop_scope="module")
async def driver(side: Side) -> AsyncIterator[Driver]:
    sim = side.sim
    sim.set_no_read_rate(0.0)
    sim.set_multi_read_rate(0.0)
    for chute in side.config.conveyor.sorter.chutes:
        await sim.set_chute_full(chute.id, False)
        await sim.set_chute_enabled(chute.id, True)
    drv = DRIVERS[side.kind](sim, side.config, side.clock)
    await drv.open()
    try:
        await drv.reach("Execute")
        yield drv
        for item_id in drv.inducted:  # off the belt, so later cases see a quiet loop
            await drv.divert(item_id, side.config.conveyor.sorter.reject_chute)
    finally:
        await drv.close()
