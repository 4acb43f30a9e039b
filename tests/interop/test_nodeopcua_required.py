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
    PACKML_URI,
    SERVER_OBJECT,
    Connection,
    Json,
    NodeOpcua,
    call,
    node,
    ok,
    path,
    read,
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


def qualified(ref: Json) -> tuple[str | None, str]:
    name = ref["browseName"]
    return name["namespaceUri"], name["name"]


async def find_state_machine(nodeopcua: NodeOpcua, conn: Connection) -> Json:
    """The component of ``Line/C1`` whose type is (a subtype of) PackMLBaseStateMachineType."""
    result = await nodeopcua.run(
        conn,
        [
            {
                "op": "browse",
                "node": unit(),
                "referenceType": HAS_COMPONENT,
                "nodeClassMask": OBJECT,
            }
        ],
    )
    assert PACKML_URI in (result["namespaces"] or []), (
        f"the server's namespace array {result['namespaces']} has no {PACKML_URI}"
    )
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
    assert machines, (
        "no HasComponent of Line/C1 has a type definition that is (a subtype of) "
        f"PackMLBaseStateMachineType; components: {[qualified(r) for r in candidates]}"
    )
    machine: Json = machines[0]
    return machine


async def test_required_opc30050_client_drives_the_unit_by_standard_names(
    nodeopcua: NodeOpcua, conn: Connection
) -> None:
    machine = await find_state_machine(nodeopcua, conn)
    (tree,) = await nodeopcua.steps(
        conn,
        [
            {
                "op": "tree",
                "node": node(machine["nodeId"]),
                "depth": 4,
                "nodeClassMask": OBJECT | VARIABLE | METHOD,
            }
        ],
    )
    nodes = ok(tree)["nodes"]
    methods: dict[str, Json] = {}
    for n in nodes:  # breadth first: the outermost of two methods of one name is taken
        if n["nodeClass"] == "Method" and n["browseName"]["namespaceUri"] == PACKML_URI:
            methods.setdefault(n["browseName"]["name"], n)
    missing = {cmd for cmd, _ in COMMANDS} - set(methods)
    assert not missing, f"no {sorted(missing)} method below {qualified(machine)}"
    current = [n for n in nodes if qualified(n) == (NS0, "CurrentState")]
    ids = {
        n["parent"]: n["nodeId"] for n in nodes if qualified(n) == (NS0, "Id")
    }  # CurrentState's Id property, by CurrentState
    assert current and all(c["nodeId"] in ids for c in current), "CurrentState without its Id"

    def state_is(check: int, name: str) -> list[Json]:
        """Wait until a CurrentState reads ``name``; then every CurrentState's Id and the
        BrowseName of the node it names."""
        nodes_ = [node(c["nodeId"]) for c in current]
        wait: Json = {"op": "wait_value", "nodes": nodes_, "field": "text", "equals": name}
        steps: list[Json] = [wait]
        for j, c in enumerate(current):
            id_step = f"check{check}_id{j}"
            steps.append({**read(node(ids[c["nodeId"]]), "Value"), "id": id_step})
            named = {"nodeId": {"$ref": f"{id_step}.attributes.Value.value"}}
            steps.append(read(named, "BrowseName"))
        return steps

    expected = ["Execute", *(state for _, state in COMMANDS)]
    steps = state_is(0, "Execute")
    for i, (command, state) in enumerate(COMMANDS, start=1):
        steps.append(call(node(methods[command]["parent"]), node(methods[command]["nodeId"])))
        steps += state_is(i, state)
    results = iter(await nodeopcua.steps(conn, steps))

    for i, state in enumerate(expected):
        if i:
            command = COMMANDS[i - 1][0]
            called = next(results)
            assert ok(called)["statusCode"] == "Good", (command, called)
        wait = ok(next(results))
        assert wait["matched"], f"no CurrentState reads {state}: {wait['values']}"
        named: dict[str, Any] = {}
        for c in current:
            state_id, browse_name = next(results), next(results)
            named[c["nodeId"]] = (
                browse_name["attributes"]["BrowseName"].get("value")
                if browse_name.get("ok")
                else None,
                state_id,
            )
        got, state_id = named[wait["matched"][0]]
        assert got == {"namespaceUri": PACKML_URI, "name": state}, (
            f"the Id of the CurrentState that reads {state} names {got}: {state_id}"
        )
