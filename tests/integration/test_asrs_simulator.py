"""The AS/RS simulator through a generic asyncua client: the documented browse tree, Store and
Retrieve with completion events, idempotent command ids, refusals as status codes, faults,
Journal and Contents."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, Node, ua
from asyncua.common.events import get_filter_from_event_type

from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from simulators.asrs import AsrsSimulator
from simulators.asrs.retained import RetainedStateError
from simulators.broker import free_port

pytestmark = pytest.mark.integration

WAIT = 10.0
NS = "urn:linectl:asrs"


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


class Completions:
    """A subscription handler collecting completion events."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def event_notification(self, event: Any) -> None:
        self.events.append(event)


@dataclass
class Peer:
    sim: AsrsSimulator
    client: Client
    idx: int
    crane: Node
    simulation: Node
    completions: Completions
    delivered: list[tuple[str, str]]

    def qn(self, name: str) -> ua.QualifiedName:
        return ua.QualifiedName(name, self.idx)

    async def call(self, name: str, *args: Any, node: Node | None = None) -> Any:
        return await (node or self.crane).call_method(self.qn(name), *args)

    async def status(self, name: str, *args: Any, node: Node | None = None) -> str:
        try:
            await self.call(name, *args, node=node)
        except ua.UaStatusCodeError as exc:
            return ua.StatusCode(exc.code).name
        return "Good"

    async def read(self, name: str) -> Any:
        node = await self.crane.get_child([self.qn(name)])
        return await node.read_value()

    async def finished(self, command_id: str, count: int = 1) -> list[Any]:
        def mine() -> list[Any]:
            return [e for e in self.completions.events if e.CommandId == command_id]

        async def enough() -> bool:
            return len(mine()) >= count

        await eventually(enough, f"completion of {command_id}")
        return mine()


@pytest.fixture
async def peer(reference_line: LineConfig) -> AsyncIterator[Peer]:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    delivered: list[tuple[str, str]] = []

    def on_delivered(tote: str, aisle: str) -> None:
        delivered.append((tote, aisle))

    sim = AsrsSimulator(reference_line, ScaledClock(200), endpoint, on_delivered=on_delivered)
    async with sim, Client(endpoint) as client:
        idx = await client.get_namespace_index(NS)
        q = [ua.QualifiedName(n, idx) for n in ("Line", "Asrs", "CR1")]
        crane = await client.nodes.objects.get_child(q)
        simulation = await client.nodes.objects.get_child([ua.QualifiedName("Simulation", idx)])
        etype = await client.nodes.root.get_child(
            [
                ua.QualifiedName("Types", 0),
                ua.QualifiedName("EventTypes", 0),
                ua.QualifiedName("BaseEventType", 0),
                ua.QualifiedName("CraneCommandCompletedEventType", idx),
            ]
        )
        completions = Completions()
        sub = await client.create_subscription(10, completions)
        await sub.subscribe_events(crane, etype, evfilter=await get_filter_from_event_type([etype]))
        yield Peer(sim, client, idx, crane, simulation, completions, delivered)


def s(value: str) -> ua.Variant:
    return ua.Variant(value, ua.VariantType.String)


async def test_browse_tree(peer: Peer) -> None:
    asrs = await peer.client.nodes.objects.get_child(
        [ua.QualifiedName("Line", peer.idx), ua.QualifiedName("Asrs", peer.idx)]
    )
    cranes = {(await n.read_browse_name()).Name for n in await asrs.get_children()}
    assert cranes == {"CR1", "CR2"}
    names = {(await n.read_browse_name()).Name for n in await peer.crane.get_children()}
    assert {
        "Aisle",
        "State",
        "PositionX",
        "PositionY",
        "CurrentCommand",
        "QueueLength",
        "Fault",
        "Load",
        "PdInput",
        "Store",
        "Retrieve",
        "DualCommand",
        "ClearFault",
        "Journal",
        "Contents",
    } <= names
    assert await peer.read("Aisle") == "A1"
    assert await peer.read("State") == "Idle"
    store = await peer.crane.get_child([peer.qn("Store")])
    inputs = await (await store.get_child([ua.QualifiedName("InputArguments", 0)])).read_value()
    assert [a.Name for a in inputs] == ["CommandId", "ToteId", "Location"]
    sim_names = {(await n.read_browse_name()).Name for n in await peer.simulation.get_children()}
    assert {"ArriveAtPd", "SetFault", "BlockLocation"} <= sim_names


async def test_store_then_retrieve(peer: Peer) -> None:
    await peer.call("ArriveAtPd", s("T-NEW"), s("A1"), node=peer.simulation)
    assert await peer.read("PdInput") == ["T-NEW"]
    await peer.call("Store", s("c-1"), s("T-NEW"), s("A1-L-05-02"))
    [stored] = await peer.finished("c-1")
    assert (stored.Kind, stored.ToteId, stored.Location) == ("Store", "T-NEW", "A1-L-05-02")
    assert stored.Success and stored.Reason == "" and stored.Sequence == 1
    assert stored.CycleSeconds > 0 and not stored.Dual
    assert peer.sim.contents()["A1-L-05-02"] == "T-NEW"

    await peer.call("Retrieve", s("c-2"), s("T-NEW"), s("A1-L-05-02"))
    [retrieved] = await peer.finished("c-2")
    assert retrieved.Success and retrieved.Kind == "Retrieve" and retrieved.Sequence == 2
    assert peer.delivered == [("T-NEW", "A1")]
    assert "A1-L-05-02" not in peer.sim.contents()
    assert await peer.read("State") == "Idle"
    assert await peer.read("QueueLength") == 0


async def test_dual_command(peer: Peer) -> None:
    await peer.call("ArriveAtPd", s("T-IN"), s("A1"), node=peer.simulation)
    await peer.call(
        "DualCommand", s("d-1"), s("T-IN"), s("A1-L-05-02"), s("AS-0001"), s("A1-R-27-04")
    )
    halves = await peer.finished("d-1", 2)
    assert [(e.Kind, e.Success, e.Dual) for e in halves] == [
        ("Store", True, True),
        ("Retrieve", True, True),
    ]
    assert peer.delivered == [("AS-0001", "A1")]


async def test_same_command_id_is_not_executed_twice(peer: Peer) -> None:
    args = (s("c-1"), s("AS-0001"), s("A1-R-27-04"))
    await peer.call("Retrieve", *args)
    assert await peer.status("Retrieve", *args) == "Good"  # queued: accepted again, once
    await peer.finished("c-1")
    assert await peer.status("Retrieve", *args) == "Good"  # done: still not again
    other = await peer.status("Retrieve", s("c-1"), s("AS-0002"), s("A1-L-31-09"))
    assert other == "BadAlreadyExists"
    last, seqs, *_ = await peer.call("Journal", ua.Variant(0, ua.VariantType.UInt32))
    assert last == 1 and seqs == [1]
    assert peer.delivered == [("AS-0001", "A1")]


async def test_refusals_are_status_codes(peer: Peer) -> None:
    await peer.call("ArriveAtPd", s("T-IN"), s("A1"), node=peer.simulation)
    cases = [
        (("Store", s("x1"), s("T-IN")), "BadArgumentsMissing"),
        (("Store", s("x1"), s("T-IN"), s("A1-L-05-02"), s("?")), "BadTooManyArguments"),
        (
            ("Store", s("x1"), ua.Variant(3, ua.VariantType.Int32), s("A1-L-05-02")),
            "BadInvalidArgument",
        ),
        (("Store", s("x1"), s("T-IN"), s("shelf 5")), "BadInvalidArgument"),
        (("Store", s(""), s("T-IN"), s("A1-L-05-02")), "BadInvalidArgument"),
        (("Store", s("x1"), s("T-IN"), s("A1-L-41-02")), "BadOutOfRange"),
        (("Store", s("x1"), s("T-IN"), s("A2-L-05-02")), "BadOutOfRange"),
        (("Store", s("x1"), s("T-IN"), s("A1-R-27-04")), "BadEntryExists"),
        (("Store", s("x1"), s("T-ELSEWHERE"), s("A1-L-05-02")), "BadNotFound"),
        (("Retrieve", s("x1"), s("AS-0001"), s("A1-L-05-02")), "BadNoEntryExists"),
        (("Retrieve", s("x1"), s("AS-0002"), s("A1-R-27-04")), "BadNoMatch"),
    ]
    for (method, *args), expected in cases:
        assert await peer.status(method, *args) == expected, (method, args)
    await peer.sim.block_location("A1-L-05-02")
    assert await peer.status("Store", s("x1"), s("T-IN"), s("A1-L-05-02")) == (
        "BadResourceUnavailable"
    )
    bad_arrivals = [(s("T-IN"), s("A1")), (s("T-X"), s("A9")), (s(""), s("A1"))]
    for args in bad_arrivals:
        assert await peer.status("ArriveAtPd", *args, node=peer.simulation) == "BadInvalidArgument"
    assert peer.sim.crane("A1").journal.last == 0  # nothing was executed
    assert await peer.read("State") == "Idle"


async def test_crane_fault_stops_the_crane_and_clear_fault_resumes(peer: Peer) -> None:
    await peer.call("Retrieve", s("c-1"), s("AS-0002"), s("A1-L-31-09"))
    await peer.call("Retrieve", s("c-2"), s("AS-0001"), s("A1-R-27-04"))
    await peer.call("SetFault", s("CR1"), s("drive overload"), node=peer.simulation)
    assert await peer.read("State") == "Fault" and await peer.read("Fault") == "drive overload"
    assert await peer.read("CurrentCommand") in ("c-1", "c-2")  # stays pending
    refused = await peer.status("Retrieve", s("c-3"), s("AS-0005"), s("A1-L-10-09"))
    assert refused == "BadInvalidState"
    assert await peer.status("ClearFault", ua.Variant(1, ua.VariantType.Int32)) == (
        "BadTooManyArguments"
    )
    await peer.call("ClearFault")
    [first] = await peer.finished("c-1")
    [second] = await peer.finished("c-2")
    assert first.Success and second.Success and await peer.read("Fault") == ""
    assert peer.delivered == [("AS-0002", "A1"), ("AS-0001", "A1")]


async def test_blocked_location_fails_a_queued_command_with_a_reason(peer: Peer) -> None:
    await peer.call("Retrieve", s("c-1"), s("AS-0002"), s("A1-L-31-09"))
    await peer.call("Retrieve", s("c-2"), s("AS-0001"), s("A1-R-27-04"))
    status = await peer.status(
        "BlockLocation",
        s("A1-R-27-04"),
        ua.Variant(True, ua.VariantType.Boolean),
        node=peer.simulation,
    )
    assert status == "Good"
    [failed] = await peer.finished("c-2")
    assert not failed.Success and failed.Reason == "location blocked"
    assert peer.sim.contents()["A1-R-27-04"] == "AS-0001"


async def test_journal_and_contents(peer: Peer) -> None:
    locations, totes = await peer.call("Contents")
    assert dict(zip(locations, totes, strict=True)) == {
        loc: tote for loc, tote in peer.sim.contents().items() if loc.startswith("A1-")
    }
    assert "A1-R-27-04" in locations
    await peer.call("Retrieve", s("c-1"), s("AS-0001"), s("A1-R-27-04"))
    await peer.call("Retrieve", s("c-2"), s("AS-0002"), s("A1-L-31-09"))
    await peer.finished("c-2")
    out = await peer.call("Journal", ua.Variant(1, ua.VariantType.UInt32))
    last, seqs, ids, kinds, tote_ids, locs, ok, reasons, dual, cycles = out
    assert last == 2 and seqs == [2] and ids == ["c-2"] and kinds == ["Retrieve"]
    assert tote_ids == ["AS-0002"] and locs == ["A1-L-31-09"] and ok == [True]
    assert reasons == [""] and dual == [False] and cycles[0] > 0
    locations, _ = await peer.call("Contents")
    assert "A1-R-27-04" not in locations and "A1-L-31-09" not in locations
    assert await peer.status("Journal") == "BadArgumentsMissing"
    assert await peer.status("Journal", s("x")) == "BadInvalidArgument"
    assert await peer.status("Contents", s("x")) == "BadTooManyArguments"


async def test_state_file_that_does_not_fit_stops_the_start(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    state = tmp_path / "asrs.json"
    state.write_text('{"format": 1, "kind": "asrs", "cranes": []}')
    with pytest.raises(RetainedStateError, match="aisles"):
        await AsrsSimulator(reference_line, ScaledClock(1), endpoint, state_file=state).start()
    state.write_text("not json")
    with pytest.raises(RetainedStateError, match="not a valid AS/RS state file"):
        await AsrsSimulator(reference_line, ScaledClock(1), endpoint, state_file=state).start()
    missing = tmp_path / "nowhere" / "asrs.json"
    with pytest.raises(RetainedStateError, match="does not exist"):
        await AsrsSimulator(reference_line, ScaledClock(1), endpoint, state_file=missing).start()
