"""The conveyor unit as an OPC 30050 (PackML) unit, driven through node-opcua.

First as docs/opcua-model.md describes it: the commands are the standard methods of the state
machine whose state they leave, each machine's ``CurrentState`` with its ``Id`` and ``Number``
follows, the belts run only in Execute. Then as a generic OPC 30050 client that knows nothing
of linectl's model would: it finds the state machine below the unit by its type definition and
drives it by the standard browse names alone. Last, ``Admin.StopReason`` and
``WatchdogTripped`` after the unit held itself for a silent client.

The first two start and end with the unit in Execute (they share one simulator)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator
from tests.interop.nodeopcua_client import (
    PACKML_URI,
    Connection,
    Json,
    NodeOpcua,
    call,
    current_state,
    machine,
    node,
    ok,
    packml,
    read,
    unit,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

NS0 = "http://opcfoundation.org/UA/"
OBJECT, VARIABLE, METHOD = 1, 2, 4  # NodeClass mask bits
LEVELS = ("BaseStateMachine", "MachineState", "ExecuteState")
# the machine whose method each command is (docs/opcua-model.md, PackML unit)
COMMAND_MACHINE = {
    "Abort": "BaseStateMachine",
    "Clear": "BaseStateMachine",
    "Stop": "MachineState",
    "Reset": "MachineState",  # out of Stopped (ExecuteState's Reset leaves Complete)
    "Start": "ExecuteState",
    "Hold": "ExecuteState",
    "Unhold": "ExecuteState",
}
INACTIVE = None
# the PackML state -> (name, Number) of BaseStateMachine, MachineState, ExecuteState
STATES: dict[str, tuple[tuple[str, int] | None, ...]] = {
    "Execute": (("Cleared", 19), ("Running", 18), ("Execute", 6)),
    "Held": (("Cleared", 19), ("Running", 18), ("Held", 11)),
    "Stopped": (("Cleared", 19), ("Stopped", 2), INACTIVE),
    "Idle": (("Cleared", 19), ("Running", 18), ("Idle", 4)),
    "Aborted": (("Aborted", 9), INACTIVE, INACTIVE),
}
# command -> the state it leads to, round from Execute to Execute
ROUND: tuple[tuple[str, str], ...] = (
    ("Hold", "Held"),
    ("Unhold", "Execute"),
    ("Stop", "Stopped"),
    ("Reset", "Idle"),
    ("Start", "Execute"),
    ("Abort", "Aborted"),
    ("Clear", "Stopped"),
    ("Reset", "Idle"),
    ("Start", "Execute"),
)
BELT_SPEED = 2.0  # the reference line's conveyor.belt_speed, m/s
WATCHDOG_TIMEOUT = 0.3  # wall seconds of a silent counter before the unit holds itself


def command(name: str, *args: Json, on: str | None = None) -> Json:
    """A standard command method, called on the machine the model puts it on (or ``on``)."""
    return call(machine(on or COMMAND_MACHINE[name]), f"packml:{name}", *args)


def named_by(id_step: str) -> Json:
    """Reads the BrowseName of the node an earlier read of an ``Id`` names."""
    return read({"nodeId": {"$ref": f"{id_step}.attributes.Value.value"}}, "BrowseName")


def snapshot() -> list[Json]:
    """Every machine's CurrentState, Id (with the BrowseName of the node it names) and
    Number; the belt of the first zone, CurMachSpeed and StopReason."""
    steps: list[Json] = []
    for level in LEVELS:
        steps.append(read(current_state(level)))
        steps.append({**read(current_state(level, "Id")), "id": f"id_{level}"})
        steps.append(named_by(f"id_{level}"))
        steps.append(read(current_state(level, "Number")))
    steps.append(read(unit("Zones", "Z01", "Running")))
    steps.append(read(unit(*packml("Status", "CurMachSpeed"))))
    steps.append(read(unit(*packml("Admin", "StopReason"))))
    return steps


def value(step: Json) -> Any:
    return ok(step)["attributes"]["Value"]


def check_snapshot(state: str, results: list[Json]) -> None:
    """The three machines show ``state`` as the model's table has it; the belts run and
    CurMachSpeed is the belt speed in Execute only; a client's command clears StopReason."""
    for i, (level, expected) in enumerate(zip(LEVELS, STATES[state], strict=True)):
        current, state_id, named, number = results[4 * i : 4 * i + 4]
        if expected is None:
            for step in (current, state_id, number):
                assert value(step)["statusCode"] == "BadStateNotActive", (state, level, step)
            continue
        name, expected_number = expected
        assert value(current)["value"]["text"] == name, (state, level, current)
        assert value(number) == {
            "statusCode": "Good",
            "dataType": "UInt32",
            "arrayType": "Scalar",
            "value": expected_number,
        }, (state, level)
        # the Id names the state object of the machine's type, by standard browse name
        browse_name = ok(named)["attributes"]["BrowseName"]["value"]
        assert browse_name == {"namespaceUri": PACKML_URI, "name": name}, (state, level)
    running, speed, reason = results[12:]
    assert value(running)["value"] is (state == "Execute"), state
    assert value(speed)["value"] == (BELT_SPEED if state == "Execute" else 0.0), state
    stop_reason = value(reason)["value"]
    assert (stop_reason["ID"], stop_reason["message"]) == (0, ""), stop_reason


def wait_for(level: str, name: str) -> Json:
    return {
        "op": "wait_value",
        "nodes": [current_state(level)],
        "field": "text",
        "equals": name,
        "timeoutMs": 5000,
    }


async def test_documented_commands_drive_the_nested_state_machines(
    nodeopcua: NodeOpcua, conn: Connection
) -> None:
    def reaches(state: str) -> list[Json]:
        """Wait for the innermost active machine to show ``state``; then a snapshot."""
        active = [(lv, s[0]) for lv, s in zip(LEVELS, STATES[state], strict=True) if s]
        return [wait_for(*active[-1]), *snapshot()]

    steps = reaches("Execute")
    refusals: list[Json] = []
    for name, state in ROUND:
        steps += [command(name), *reaches(state)]
        if (name, state) == ("Hold", "Held"):  # refused where the model says so
            refusals = [
                command("Hold"),
                command("Start", {"dataType": "String", "value": "now"}),
                command("Unhold", {"dataType": "Boolean", "value": True}),
            ]
            steps += [*refusals, *snapshot()]
    results = iter(await nodeopcua.steps(conn, steps))
    size = len(snapshot())

    def next_snapshot(state: str) -> None:
        check_snapshot(state, [next(results) for _ in range(size)])

    assert ok(next(results))["matched"], "the unit is not in Execute to begin with"
    next_snapshot("Execute")
    for name, state in ROUND:
        called = ok(next(results))
        assert called["statusCode"] == "Good", (name, called)
        waited = ok(next(results))
        assert waited["matched"], (name, state, waited["values"])
        next_snapshot(state)
        if (name, state) == ("Hold", "Held"):
            hold_again, start_with_arg, unhold_with_arg = (next(results) for _ in refusals)
            assert ok(hold_again)["statusCode"] == "BadInvalidState"
            assert ok(start_with_arg)["statusCode"] == "BadTooManyArguments"
            assert ok(unhold_with_arg)["statusCode"] == "BadTooManyArguments"
            next_snapshot("Held")  # none of them changed anything


def qualified(ref: Json) -> tuple[str | None, str]:
    name = ref["browseName"]
    return name["namespaceUri"], name["name"]


async def find_state_machine(nodeopcua: NodeOpcua, conn: Connection) -> Json:
    """The component of the unit whose type is (a subtype of) PackMLBaseStateMachineType,
    found by type definition: no browse name of the machine, no NodeId is assumed."""
    browse_components: Json = {
        "op": "browse",
        "node": unit(),
        "referenceType": "HasComponent",
        "nodeClassMask": OBJECT,
    }
    result = await nodeopcua.run(conn, [browse_components])
    assert PACKML_URI in (result["namespaces"] or []), result["namespaces"]
    (components,) = result["steps"]
    candidates = [r for r in ok(components)["references"] if r["typeDefinition"]]
    type_ids = sorted({r["typeDefinition"] for r in candidates})
    steps = [{"op": "supertypes", "node": node(t)} for t in type_ids]
    chains = {
        t: ok(s)["types"] for t, s in zip(type_ids, await nodeopcua.steps(conn, steps), strict=True)
    }
    wanted = (PACKML_URI, "PackMLBaseStateMachineType")
    machines = [
        r for r in candidates if any(qualified(t) == wanted for t in chains[r["typeDefinition"]])
    ]
    assert len(machines) == 1, [qualified(r) for r in candidates]
    found: Json = machines[0]
    return found


async def test_generic_opc30050_client_drives_the_unit_by_standard_names(
    nodeopcua: NodeOpcua, conn: Connection
) -> None:
    """Hold, Unhold, Stop, Reset, Start by standard browse name on whichever machine below
    the state machine offers them; each time some CurrentState reads the state and its Id
    names the state object of that name."""
    found = await find_state_machine(nodeopcua, conn)
    tree_step: Json = {
        "op": "tree",
        "node": node(found["nodeId"]),
        "depth": 4,
        "nodeClassMask": OBJECT | VARIABLE | METHOD,
    }
    (tree,) = await nodeopcua.steps(conn, [tree_step])
    nodes = ok(tree)["nodes"]
    methods: dict[str, Json] = {}
    for n in nodes:  # breadth first: the outermost of two methods of one name is taken
        if n["nodeClass"] == "Method" and n["browseName"]["namespaceUri"] == PACKML_URI:
            methods.setdefault(n["browseName"]["name"], n)
    commands = ROUND[:5]
    missing = {name for name, _ in commands} - set(methods)
    assert not missing, f"no {sorted(missing)} method below {qualified(found)}"
    current = [n for n in nodes if qualified(n) == (NS0, "CurrentState")]
    ids = {n["parent"]: n["nodeId"] for n in nodes if qualified(n) == (NS0, "Id")}
    assert len(current) == 3 and all(c["nodeId"] in ids for c in current), current

    def state_is(check: int, name: str) -> list[Json]:
        """Wait until a CurrentState reads ``name``; then every CurrentState's Id and the
        BrowseName of the node it names."""
        wait: Json = {
            "op": "wait_value",
            "nodes": [node(c["nodeId"]) for c in current],
            "field": "text",
            "equals": name,
        }
        steps: list[Json] = [wait]
        for j, c in enumerate(current):
            id_step = f"check{check}_id{j}"
            steps.append({**read(node(ids[c["nodeId"]])), "id": id_step})
            steps.append(named_by(id_step))
        return steps

    steps = state_is(0, "Execute")
    for i, (name, state) in enumerate(commands, start=1):
        steps.append(call(node(methods[name]["parent"]), node(methods[name]["nodeId"])))
        steps += state_is(i, state)
    results = iter(await nodeopcua.steps(conn, steps))

    for i, state in enumerate(["Execute", *(s for _, s in commands)]):
        if i:
            called = next(results)
            assert ok(called)["statusCode"] == "Good", (commands[i - 1], called)
        wait = ok(next(results))
        assert wait["matched"], f"no CurrentState reads {state}: {wait['values']}"
        named: dict[str, Any] = {}
        for c in current:
            state_id, browse_name = next(results), next(results)
            got = browse_name["ok"] and browse_name["attributes"]["BrowseName"].get("value")
            named[c["nodeId"]] = (got, state_id)
        got, state_id = named[wait["matched"][0]]
        assert got == {"namespaceUri": PACKML_URI, "name": state}, (state, state_id)


@pytest_asyncio.fixture(loop_scope="module")
async def watched(line: LineConfig, pki_dir: Path) -> AsyncIterator[Connection]:
    """A simulator of its own whose watchdog expires soon after the first counter write."""
    watchdog = line.conveyor.watchdog.model_copy(update={"timeout": WATCHDOG_TIMEOUT})
    conveyor = line.conveyor.model_copy(update={"watchdog": watchdog})
    line = line.model_copy(update={"conveyor": conveyor})
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    async with ConveyorSimulator(line, ScaledClock(10), endpoint):
        yield Connection(endpoint, pki_dir)


async def test_stop_reason_after_the_watchdog_held_the_unit(
    nodeopcua: NodeOpcua, watched: Connection
) -> None:
    """A client writes the counter once and falls silent: the unit holds itself, sets
    WatchdogTripped and says why in StopReason (ID 1, Trigger true); a client's Stop clears
    both. (Stop, not Unhold: back in Execute the silent counter would trip it again.)"""
    reason = read(unit(*packml("Admin", "StopReason")))
    tripped = read(unit("WatchdogTripped"))
    steps = [
        {"op": "write", "node": unit("Watchdog"), "dataType": "UInt32", "value": 1},
        wait_for("ExecuteState", "Held"),
        tripped,
        reason,
        command("Stop"),
        wait_for("MachineState", "Stopped"),
        tripped,
        reason,
    ]
    (
        written,
        held,
        tripped_held,
        reason_held,
        stop,
        stopped,
        tripped_after,
        reason_after,
    ) = await nodeopcua.steps(watched, steps)
    assert ok(written)["statusCode"] == "Good"
    assert ok(held)["matched"], held["values"]
    assert value(tripped_held)["value"] is True
    stop_reason = value(reason_held)
    assert stop_reason["dataType"] == "ExtensionObject"
    got = stop_reason["value"]
    assert (got["ID"], got["message"], got["trigger"]) == (1, "controller watchdog expired", True)
    assert ok(stop)["statusCode"] == "Good"
    assert ok(stopped)["matched"], stopped["values"]
    assert value(tripped_after)["value"] is False
    got = value(reason_after)["value"]
    assert (got["ID"], got["message"]) == (0, "")
