"""Item tracking for reconciliation: the sorter's ``Tracking`` and ``Journal`` methods, the
``Sequence`` of divert events, and the retained state of a conveyor simulator that is killed
and started again (as a PLC that loses power)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, Node, ua
from asyncua.common.subscription import OpcEvent

from controller.linefile.loader import REFERENCE_LINE
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator
from tests import packml_unit
from tests.sim_process import simulator_process

pytestmark = pytest.mark.integration

WAIT = 15.0  # wall seconds
U32 = ua.VariantType.UInt32


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


class Conveyor:
    """A generic OPC UA client's handles on the conveyor (browse paths of docs/opcua-model.md)."""

    def __init__(self, client: Client, idx: int) -> None:
        self.client, self.idx = client, idx

    @classmethod
    async def connect(cls, client: Client, line: LineConfig) -> Conveyor:
        idx = await client.get_namespace_index(line.conveyor.opcua.namespace)
        c = cls(client, idx)
        c.unit = await c.at("Line", "C1")
        c.sorter = await c.at("Line", "C1", "Sorter", "S1")
        c.simulation = await c.at("Simulation")
        return c

    async def at(self, *path: str) -> Node:
        return await self.client.nodes.objects.get_child([f"{self.idx}:{p}" for p in path])

    async def induct(self, tote_id: str, zone_id: str) -> str:
        item_id = await self.simulation.call_method(f"{self.idx}:Induct", tote_id, zone_id)
        assert isinstance(item_id, str)
        return item_id

    async def divert(self, item_id: str, chute_id: str) -> None:
        await self.sorter.call_method(f"{self.idx}:Divert", item_id, chute_id)

    async def command(self, name: str) -> None:
        await packml_unit.command(self.unit, name)

    async def state(self) -> str:
        return await packml_unit.state(self.unit)

    async def read(self, name: str) -> Any:
        return await (await self.unit.get_child(f"{self.idx}:{name}")).read_value()

    async def tracking(self) -> list[tuple[Any, ...]]:
        out = await self.sorter.call_method(f"{self.idx}:Tracking")
        return list(zip(*out, strict=True))

    async def journal(self, since: int) -> tuple[int, list[tuple[Any, ...]]]:
        last, *columns = await self.sorter.call_method(
            f"{self.idx}:Journal", ua.Variant(since, U32)
        )
        return last, list(zip(*columns, strict=True))


@pytest.fixture
async def sim(reference_line: LineConfig) -> AsyncIterator[ConveyorSimulator]:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    async with ConveyorSimulator(reference_line, ScaledClock(20), endpoint) as s:
        yield s


@pytest.fixture
async def conveyor(sim: ConveyorSimulator, reference_line: LineConfig) -> AsyncIterator[Conveyor]:
    async with Client(sim.endpoint) as client:
        yield await Conveyor.connect(client, reference_line)


async def test_tracking_lists_belt_and_waiting_items_with_their_requests(
    conveyor: Conveyor,
) -> None:
    await conveyor.command("Hold")  # belts stand still: the positions stay as inducted
    first = await conveyor.induct("TOTE-A", "Z01")
    waiting = await conveyor.induct("TOTE-B", "Z01")  # no gap until the belt moves
    other = await conveyor.induct("TOTE-C", "Z07")
    await conveyor.divert(first, "CH-DHL")
    await conveyor.divert(waiting, "CH-UPS")
    assert await conveyor.tracking() == [
        (first, "TOTE-A", "Z01", True, "CH-DHL"),
        (waiting, "TOTE-B", "Z01", False, "CH-UPS"),
        (other, "TOTE-C", "Z07", True, ""),
    ]


async def test_tracking_and_journal_refuse_bad_arguments(conveyor: Conveyor) -> None:
    idx = conveyor.idx
    calls: list[tuple[str, tuple[Any, ...], int]] = [
        ("Tracking", ("x",), ua.StatusCodes.BadTooManyArguments),
        ("Journal", (), ua.StatusCodes.BadArgumentsMissing),
        ("Journal", ("x",), ua.StatusCodes.BadInvalidArgument),
        ("Journal", (ua.Variant(-1, ua.VariantType.Int64),), ua.StatusCodes.BadInvalidArgument),
        ("Journal", (ua.Variant(1, U32), ua.Variant(2, U32)), ua.StatusCodes.BadTooManyArguments),
    ]
    for method, args, code in calls:
        with pytest.raises(ua.UaStatusCodeError) as refused:
            await conveyor.sorter.call_method(f"{idx}:{method}", *args)
        assert refused.value.code == code, (method, args)
    assert await conveyor.journal(0) == (0, [])  # still serving


async def test_journal_numbers_every_completed_divert_and_events_carry_the_number(
    conveyor: Conveyor, sim: ConveyorSimulator
) -> None:
    idx = conveyor.idx
    divert_type = await conveyor.client.nodes.root.get_child(
        ["0:Types", "0:EventTypes", "0:BaseEventType", f"{idx}:DivertCompletedEventType"]
    )
    d1 = await conveyor.at("Line", "C1", "Sorter", "S1", "Diverts", "D1")
    d2 = await conveyor.at("Line", "C1", "Sorter", "S1", "Diverts", "D2")
    await sim.set_chute_full("CH-UPS", True)
    async with await conveyor.client.create_subscription(10, None) as sub:
        for divert in (d1, d2):
            await sub.subscribe_events(divert, divert_type, queuesize=100)
        items = []
        for tote, zone in (("T1", "Z01"), ("T2", "Z03"), ("T3", "Z05")):
            items.append(await conveyor.induct(tote, zone))
        await conveyor.divert(items[0], "CH-DHL")
        await conveyor.divert(items[1], "CH-UPS")  # full: refused, rides on
        await conveyor.divert(items[2], "CH-DHL")
        events = []
        for _ in range(3):
            notification = await sub.next_event(timeout=WAIT)
            assert isinstance(notification, OpcEvent)
            events.append(notification.event)
    by_item = {e.ItemId: (e.Sequence, e.ChuteId, e.Success) for e in events}
    assert sorted(s for s, _, _ in by_item.values()) == [1, 2, 3]

    last, entries = await conveyor.journal(0)
    assert last == 3
    assert [e[0] for e in entries] == [1, 2, 3]
    for seq, item_id, tote_id, chute_id, ok in entries:
        assert by_item[item_id] == (seq, chute_id, ok)
        assert tote_id == {items[0]: "T1", items[1]: "T2", items[2]: "T3"}[item_id]
    assert {(e[1], e[4]) for e in entries} == {
        (items[0], True),
        (items[1], False),
        (items[2], True),
    }

    assert await conveyor.journal(2) == (3, entries[2:])
    assert await conveyor.journal(3) == (3, [])
    assert await conveyor.journal(1000) == (3, [])


@contextlib.asynccontextmanager
async def session(endpoint: str, line: LineConfig) -> AsyncIterator[Conveyor]:
    """A client session that may outlive its server (closing it then fails, which is fine)."""
    client = Client(endpoint, timeout=5)
    await client.connect()
    try:
        yield await Conveyor.connect(client, line)
    finally:
        with contextlib.suppress(ua.UaError, OSError, TimeoutError):
            await client.disconnect()


async def test_a_killed_simulator_comes_back_with_its_totes_and_journal(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    state = tmp_path / "conveyor-state.json"
    async with (
        simulator_process(endpoint, state) as proc,
        session(endpoint, reference_line) as conveyor,
    ):
        diverted = await conveyor.induct("KEEP-1", "Z01")
        await conveyor.induct("KEEP-2", "Z03")
        await conveyor.induct("KEEP-3", "Z05")
        await conveyor.induct("KEEP-4", "Z05")  # waits for a gap behind KEEP-3
        await conveyor.divert(diverted, "CH-DHL")

        async def diverted_once() -> bool:
            return (await conveyor.journal(0))[0] == 1

        await eventually(diverted_once, "the divert completes")
        await conveyor.command("Hold")
        before = await conveyor.tracking()
        journal = await conveyor.journal(0)
        proc.kill()  # SIGKILL: no clean shutdown, the state file is all that is left
        await proc.wait()

    assert {row[1] for row in before} == {"KEEP-2", "KEEP-3", "KEEP-4"}
    async with simulator_process(endpoint, state), session(endpoint, reference_line) as conveyor:
        assert await conveyor.tracking() == before
        assert await conveyor.journal(0) == journal
        assert await conveyor.state() == "Held"  # retained as it was
        assert await conveyor.read("WatchdogTripped") is False
        dhl = await conveyor.at("Line", "C1", "Sorter", "S1", "Chutes", "CH-DHL", "Delivered")
        assert await dhl.read_value() == 1
        fresh = await conveyor.induct("NEW", "Z10")
        assert fresh == "C1-000005"  # the id counter is retained too


async def test_a_unit_killed_in_execute_comes_back_held_and_tripped(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    state = tmp_path / "conveyor-state.json"
    async with (
        simulator_process(endpoint, state) as proc,
        session(endpoint, reference_line) as conveyor,
    ):
        await conveyor.induct("RUNNING", "Z01")
        before = await conveyor.tracking()
        proc.kill()
        await proc.wait()
    async with simulator_process(endpoint, state), session(endpoint, reference_line) as conveyor:
        assert await conveyor.state() == "Held"  # never restarts the belts by itself
        assert await conveyor.read("WatchdogTripped") is True
        assert [row[:2] for row in await conveyor.tracking()] == [row[:2] for row in before]
        await conveyor.command("Unhold")
        assert await conveyor.read("WatchdogTripped") is False


async def test_an_unusable_state_file_is_refused_with_a_message(tmp_path: Path) -> None:
    state = tmp_path / "broken.json"
    state.write_text('{"format": 1, "conveyor": "C1"')
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.app.cli",
        *["sim", "conveyors", "--config", str(REFERENCE_LINE), "--endpoint", endpoint],
        *["--state", str(state)],
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, stderr = await proc.communicate()
    assert proc.returncode == 1
    assert b"not a valid conveyor state file" in stderr
    assert b"Traceback" not in stderr


async def test_a_jam_stops_only_the_held_zones_in_the_address_space(
    conveyor: Conveyor, sim: ConveyorSimulator
) -> None:
    async def zone(zone_id: str, name: str) -> Any:
        return await (await conveyor.at("Line", "C1", "Zones", zone_id, name)).read_value()

    await sim.set_zone_jammed("Z10", True)
    for zone_id in ("Z08", "Z09", "Z10"):
        assert (await zone(zone_id, "Running"), await zone(zone_id, "SpeedActual")) == (False, 0.0)
    for zone_id in ("Z07", "Z11"):
        assert (await zone(zone_id, "Running"), await zone(zone_id, "SpeedActual")) == (True, 2.0)
    await sim.set_zone_jammed("Z10", False)
    assert await zone("Z09", "Running") is True
