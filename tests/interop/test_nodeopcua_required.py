"""REQUIRED behaviour of the conveyor server, checked through node-opcua.

Each test states what the issue asks of the server beyond the model as documented so far:
read-only variables answer ``BadNotWritable``; every array (the methods' argument lists
included) has ValueRank 1; events also reach a client subscribed on the Server object; and a
generic OPC 30050 (PackML) client finds the unit's state machine by its type definition, reads
``CurrentState`` and its ``Id`` and drives it with the standard methods. They fail until the
server does so; the failure message says what is missing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.interop.nodeopcua_client import (
    BASE_EVENT_TYPE,
    EVENT_FIELDS,
    LC,
    SERVER_OBJECT,
    Connection,
    Json,
    NodeOpcua,
    call,
    node,
    ok,
    path,
    string_args,
    unit,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

NS0 = "http://opcfoundation.org/UA/"
HAS_COMPONENT = "HasComponent"
OBJECT, VARIABLE, METHOD = 1, 2, 4  # NodeClass mask bits
# command -> the state it leads to, from Execute round to Execute (no acting work: each
# acting state ends by itself)
COMMANDS: tuple[tuple[str, str], ...] = (
    ("Hold", "Held"),
    ("Unhold", "Execute"),
    ("Stop", "Stopped"),
    ("Reset", "Idle"),
    ("Start", "Execute"),
)


async def test_required_read_only_writes_answer_bad_not_writable(
    nodeopcua: NodeOpcua, conn: Connection
) -> None:
    chute = unit("Sorter", "S1", "Chutes", "CH-DPD")
    targets: list[tuple[Json, str, Any]] = [
        (path("Full", start=chute), "Boolean", True),
        (path("Count", start=chute), "UInt32", 7),
        (unit("State"), "String", "Stopped"),
        (unit("Zones", "Z02", "SpeedActual"), "Double", 0.5),
    ]
    steps = [
        {"op": "write", "node": ref, "dataType": data_type, "value": value}
        for ref, data_type, value in targets
    ]
    answers = {
        ref["path"][-1].split(":")[-1]: ok(step)["statusCode"]
        for (ref, *_), step in zip(targets, await nodeopcua.steps(conn, steps), strict=True)
    }
    assert answers == dict.fromkeys(answers, "BadNotWritable")


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


async def test_required_arrays_and_argument_lists_have_value_rank_one(
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
    assert arrays_not_of_rank_one(nodes) == []


async def test_required_events_reach_a_subscription_on_the_server_object(
    nodeopcua: NodeOpcua, conn: Connection
) -> None:
    sorter = unit("Sorter", "S1")
    item = {"$ref": "induct.outputArguments.0"}
    emitters = [unit("Scanners", "SCAN1"), path("Diverts", "D7", start=sorter)]
    steps = [
        {"op": "subscribe_events", "id": "server", "nodes": [node(SERVER_OBJECT)]},
        {"op": "subscribe_events", "id": "emitters", "nodes": emitters},
        call(path("Simulation"), f"{LC}:Induct", *string_args("TOTE-SRV-1", "Z03"), id="induct"),
        call(sorter, f"{LC}:Divert", *string_args(item, "VAS-1")),
        {"op": "events", "subscription": "emitters", "count": 2, "match": {"ItemId": item}},
        {"op": "events", "subscription": "server", "count": 2, "match": {"ItemId": item}},
    ]
    for step in steps[:2]:
        step.update(fields=EVENT_FIELDS)
    for step in steps[4:]:
        step.update(durationMs=10000)
    results = await nodeopcua.steps(conn, steps)
    server_item = ok(results[0])["items"][0]
    assert server_item["statusCode"] == "Good", server_item
    at_emitters, at_server = (ok(r)["events"] for r in results[4:])
    assert [e["fields"]["SourceName"] for e in at_emitters] == ["SCAN1", "D7"]  # they happen
    assert [(e["fields"]["SourceName"], e["fields"]["EventType"]) for e in at_server] == [
        (e["fields"]["SourceName"], e["fields"]["EventType"]) for e in at_emitters
    ], "no scan or divert event reached the subscription on the Server object (i=2253)"
    assert at_server[1]["fields"]["Success"] is True
