"""OPC UA conformance of the conveyor simulator through node-opcua (docs/opcua-model.md, OPC UA
conformance): a write to a read-only variable, linectl's or OPC 30050's, answers BadNotWritable
and changes nothing, while a chute's ``Enabled`` takes it; every array variable and every
method's argument list is declared one-dimensional (ValueRank 1). Events on the Server object
are checked with the divert in ``test_nodeopcua_conveyor.py``."""

from __future__ import annotations

from typing import Any

import pytest

from simulators.conveyor import ConveyorSimulator
from tests.interop.nodeopcua_client import (
    BASE_EVENT_TYPE,
    Connection,
    Json,
    NodeOpcua,
    current_state,
    node,
    ok,
    packml,
    path,
    read,
    unit,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def shown(value: Json) -> Any:
    """A read Value as the model documents it: the text of a LocalizedText."""
    return value["value"]["text"] if value["dataType"] == "LocalizedText" else value["value"]


async def test_writes_to_writable_and_read_only_variables(
    nodeopcua: NodeOpcua, conn: Connection, sim: ConveyorSimulator
) -> None:
    """A chute's Enabled takes a write; read-only variables, linectl's and OPC 30050's,
    answer BadNotWritable and keep their value."""
    chute = unit("Sorter", "S1", "Chutes", "CH-UPS")
    read_only: list[tuple[Json, str, Any]] = [  # node, data type, value written
        (path("Full", start=chute), "Boolean", True),
        (path("Count", start=chute), "UInt32", 7),
        (unit("Zones", "Z02", "SpeedActual"), "Double", 0.5),
        (unit("WatchdogTripped"), "Boolean", True),
        (current_state("ExecuteState"), "LocalizedText", {"text": "Held"}),
        (current_state("ExecuteState", "Number"), "UInt32", 11),
        (unit(*packml("Status", "MachSpeed")), "Float", 1.0),
    ]

    def write(ref: Json, data_type: str, value: Any) -> Json:
        return {"op": "write", "node": ref, "dataType": data_type, "value": value}

    steps = [
        write(path("Enabled", start=chute), "Boolean", False),
        read(path("Enabled", start=chute)),
        *(write(*case) for case in read_only),
        *(read(ref) for ref, *_ in read_only),
        write(path("Enabled", start=chute), "Boolean", True),
    ]
    try:
        results = await nodeopcua.steps(conn, steps)
    finally:
        await sim.set_chute_enabled("CH-UPS", True)
    disable, disabled, *rest, enable = results
    assert ok(disable)["statusCode"] == "Good"
    assert ok(disabled)["attributes"]["Value"]["value"] is False
    assert ok(enable)["statusCode"] == "Good"
    writes, reads = rest[: len(read_only)], rest[len(read_only) :]
    answers = {
        "/".join(ref["path"]): ok(w)["statusCode"]
        for (ref, *_), w in zip(read_only, writes, strict=True)
    }
    assert answers == dict.fromkeys(answers, "BadNotWritable")
    unchanged = [False, 0, 2.0, False, "Execute", 6, 2.0]
    assert [shown(ok(r)["attributes"]["Value"]) for r in reads] == unchanged


def arrays_not_of_rank_one(nodes: list[Json]) -> list[str]:
    """Variables whose Value is an array (argument lists included) with another ValueRank or
    ArrayDimensions of another length than one, and Arguments whose ValueRank and
    ArrayDimensions disagree."""
    wrong: list[str] = []
    for n in nodes:
        attrs = n.get("attributes")
        if not attrs or attrs["Value"].get("arrayType") != "Array":
            continue
        where = "/".join(p["name"] for p in n["path"])
        rank = attrs["ValueRank"].get("value")
        dims = attrs["ArrayDimensions"].get("value")
        if rank != 1 or dims is None or len(dims) != 1:
            wrong.append(f"{where}: ValueRank {rank}, ArrayDimensions {dims}")
        for arg in attrs["Value"]["value"] if attrs["DataType"].get("name") == "Argument" else []:
            arg_dims = arg["arrayDimensions"] or []
            if (arg["valueRank"] == 1) != (len(arg_dims) == 1) or arg["valueRank"] not in (-1, 1):
                wrong.append(f"{where}[{arg['name']}]: ValueRank {arg['valueRank']} {arg_dims}")
    return wrong


async def test_arrays_and_argument_lists_have_value_rank_one(
    nodeopcua: NodeOpcua, conn: Connection
) -> None:
    attributes = ["Value", "DataType", "ValueRank", "ArrayDimensions"]
    roots = [unit(), path("Simulation"), path("ScanEventType", start=node(BASE_EVENT_TYPE))]
    steps = [{"op": "tree", "node": r, "depth": 8, "attributes": attributes} for r in roots]
    trees = await nodeopcua.steps(conn, steps)
    nodes = [n for tree in trees for n in ok(tree)["nodes"]]
    argument_lists = [
        n for n in nodes if n["browseName"]["name"] in ("InputArguments", "OutputArguments")
    ]
    assert len(argument_lists) >= 10, "the methods' argument lists were not found"
    assert any(n["path"][-1]["name"] == "Codes" for n in nodes)
    assert any(n["path"][-1]["name"] == "SetMachSpeed" for n in nodes)
    assert arrays_not_of_rank_one(nodes) == []
