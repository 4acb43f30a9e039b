"""The conveyor simulator through node-opcua: the documented model (docs/opcua-model.md) as a
client of another stack sees it. Browse tree, typed reads, a PackML command, an inducted item's
scan and divert events, writes to a writable and to a read-only variable.

What the issue requires beyond the model as it is now lives in
``test_nodeopcua_required.py``."""

from __future__ import annotations

from typing import Any

import pytest

from controller.config.model import LineConfig
from simulators.conveyor import ConveyorSimulator
from tests.interop.nodeopcua_client import (
    BASE_EVENT_TYPE,
    EVENT_FIELDS,
    LC,
    LC_URI,
    Connection,
    Json,
    NodeOpcua,
    browse,
    call,
    node,
    ok,
    path,
    read,
    string_args,
    unit,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

FOLDER_TYPE = "ns=0;i=61"
CURRENT_READ, CURRENT_WRITE = 1, 2


def children(step: Json, node_class: str | None = None) -> dict[str, Json]:
    """The references of a browse step by name, all of them in the line's namespace."""
    refs = ok(step)["references"]
    out = {r["browseName"]["name"]: r for r in refs if r["browseName"]["namespaceUri"] == LC_URI}
    if node_class is None:
        return out
    return {n: r for n, r in out.items() if r["nodeClass"] == node_class}


async def test_browse_tree_is_the_documented_model(
    nodeopcua: NodeOpcua, conn: Connection, line: LineConfig
) -> None:
    conv = line.conveyor
    sorter = unit("Sorter", conv.sorter.id)
    steps = [
        browse(node("i=85")),
        browse(path("Line")),
        browse(unit()),
        browse(unit("Zones")),
        browse(unit("Zones", "Z01")),
        browse(unit("Scanners")),
        browse(unit("Scanners", conv.scanner.id)),
        browse(unit("Sorter")),
        browse(sorter),
        browse(path("Diverts", start=sorter)),
        browse(path("Diverts", "D1", start=sorter)),
        browse(path("Chutes", start=sorter)),
        browse(path("Chutes", "CH-DHL", start=sorter)),
        browse(path("Simulation")),
        browse(node(BASE_EVENT_TYPE), referenceType="HasSubtype"),
    ]
    (
        objects,
        line_folder,
        c1,
        zones,
        z01,
        scanners,
        scan1,
        sorters,
        s1,
        diverts,
        d1,
        chutes,
        ch_dhl,
        simulation,
        event_types,
    ) = await nodeopcua.steps(conn, steps)

    assert {"Line", "Simulation"} <= set(children(objects))
    assert children(objects)["Line"]["typeDefinition"] == FOLDER_TYPE
    assert set(children(line_folder)) == {conv.id}
    assert {"State", "Watchdog", "WatchdogTimeout", "WatchdogTripped"} <= set(
        children(c1, "Variable")
    )
    packml = {"Start", "Stop", "Hold", "Unhold", "Reset", "Suspend", "Unsuspend", "Abort", "Clear"}
    assert packml <= set(children(c1, "Method"))
    assert {"Zones", "Scanners", "Sorter"} <= set(children(c1, "Object"))
    for folder in ("Zones", "Scanners", "Sorter"):
        assert children(c1)[folder]["typeDefinition"] == FOLDER_TYPE

    assert set(children(zones)) == {z.id for z in conv.zones}
    zone_vars = {"Running", "SpeedSetpoint", "SpeedActual", "Occupied", "ItemId", "Jammed"}
    assert zone_vars <= set(children(z01, "Variable"))
    assert "Jog" in children(z01, "Method")

    assert set(children(scanners)) == {conv.scanner.id}
    assert "Zone" in children(scan1, "Variable")
    assert set(children(sorters)) == {conv.sorter.id}
    assert {"Divert", "Tracking", "Journal"} <= set(children(s1, "Method"))
    assert {"Diverts", "Chutes"} <= set(children(s1, "Object"))
    assert set(children(diverts)) == {d.id for d in conv.sorter.diverts}
    assert {"Chute", "Zone"} <= set(children(d1, "Variable"))
    assert set(children(chutes)) == {ch.id for ch in conv.sorter.chutes}
    assert {"Kind", "Full", "Enabled", "Count", "Delivered"} <= set(children(ch_dhl, "Variable"))
    assert "Induct" in children(simulation, "Method")
    assert {"ScanEventType", "DivertCompletedEventType"} <= set(children(event_types))


async def test_reads_are_typed_as_documented(nodeopcua: NodeOpcua, conn: Connection) -> None:
    chute = unit("Sorter", "S1", "Chutes", "CH-DHL")
    typed = ["Value", "DataType", "ValueRank", "AccessLevel"]
    cases: list[tuple[Json, str, Any, bool]] = [  # node, data type, value, writable
        (unit("State"), "String", "Execute", False),
        (unit("Watchdog"), "UInt32", 0, True),
        (unit("WatchdogTimeout"), "Double", 3.0, False),
        (unit("WatchdogTripped"), "Boolean", False, False),
        (unit("Zones", "Z01", "SpeedSetpoint"), "Double", 2.0, False),
        (unit("Zones", "Z01", "Occupied"), "Boolean", False, False),
        (unit("Zones", "Z01", "ItemId"), "String", "", False),
        (unit("Scanners", "SCAN1", "Zone"), "String", "Z05", False),
        (unit("Sorter", "S1", "Diverts", "D1", "Chute"), "String", "CH-DHL", False),
        (path("Kind", start=chute), "String", "carrier", False),
        (path("Full", start=chute), "Boolean", False, False),
        (path("Enabled", start=chute), "Boolean", True, True),
        (path("Count", start=chute), "UInt32", 0, False),
        (path("Delivered", start=chute), "UInt32", 0, False),
    ]
    steps = [read(ref, *typed) for ref, *_ in cases]
    steps.append(read(unit("Sorter", "S1", "Divert", "0:InputArguments"), "Value", "DataType"))
    steps.append(read(unit("Sorter", "S1", "Tracking", "0:OutputArguments"), "Value"))
    steps.append(read(unit("Scanners", "SCAN1"), "EventNotifier"))
    results = await nodeopcua.steps(conn, steps)

    for (ref, data_type, value, writable), step in zip(cases, results, strict=False):
        attrs = ok(step)["attributes"]
        where = ref["path"][-1]
        assert attrs["Value"]["statusCode"] == "Good", (where, attrs)
        assert (attrs["Value"]["dataType"], attrs["Value"]["arrayType"]) == (data_type, "Scalar")
        assert attrs["Value"]["value"] == value, where
        assert attrs["DataType"]["name"] == data_type, where
        assert attrs["ValueRank"]["value"] == -1, where
        access = attrs["AccessLevel"]["value"]
        assert access & CURRENT_READ, where
        assert bool(access & CURRENT_WRITE) is writable, where

    divert_args, tracking_outputs, notifier = results[len(cases) :]
    value = ok(divert_args)["attributes"]["Value"]
    assert value["arrayType"] == "Array"
    assert divert_args["attributes"]["DataType"]["name"] == "Argument"
    assert [(a["name"], a["dataType"], a["valueRank"]) for a in value["value"]] == [
        ("ItemId", "ns=0;i=12", -1),
        ("Destination", "ns=0;i=12", -1),
    ]
    outputs = ok(tracking_outputs)["attributes"]["Value"]["value"]
    assert [a["name"] for a in outputs] == ["ItemIds", "ToteIds", "Zones", "OnBelt", "Requested"]
    assert {a["valueRank"] for a in outputs} == {1}
    assert ok(notifier)["attributes"]["EventNotifier"]["value"] & 1  # SubscribeToEvents


async def test_packml_command_leads_to_its_state(nodeopcua: NodeOpcua, conn: Connection) -> None:
    def command(name: str, *args: Json) -> Json:
        return {"op": "call", "object": unit(), "method": f"{LC}:{name}", "inputArguments": args}

    def state_is(name: str) -> Json:
        return {"op": "wait_value", "nodes": [unit("State")], "equals": name, "timeoutMs": 5000}

    steps = [
        command("Hold"),
        state_is("Held"),
        read(unit("Zones", "Z01", "Running"), "Value"),
        command("Hold"),
        command("Unhold"),
        state_is("Execute"),
        command("Start", {"dataType": "String", "value": "now"}),
        read(unit("State")),
    ]
    hold, held, running, hold_again, unhold, execute, start_with_arg, after = await nodeopcua.steps(
        conn, steps
    )
    assert ok(hold)["statusCode"] == "Good"
    assert ok(held)["matched"], held["values"]
    assert ok(running)["attributes"]["Value"]["value"] is False  # belts stand outside Execute
    assert ok(hold_again)["statusCode"] == "BadInvalidState"
    assert ok(unhold)["statusCode"] == "Good"
    assert ok(execute)["matched"], execute["values"]
    assert ok(start_with_arg)["statusCode"] == "BadTooManyArguments"
    assert ok(after)["attributes"]["Value"]["value"] == "Execute"


async def test_divert_of_an_inducted_item_gives_its_scan_and_divert_events(
    nodeopcua: NodeOpcua, conn: Connection
) -> None:
    sorter = unit("Sorter", "S1")
    item = {"$ref": "induct.outputArguments.0"}
    induct = path("Simulation")
    subscribe: Json = {"op": "subscribe_events", "id": "events", "fields": EVENT_FIELDS}
    subscribe["nodes"] = [unit("Scanners", "SCAN1"), path("Diverts", "D8", start=sorter)]
    steps: list[Json] = [
        {"op": "resolve", "node": path("ScanEventType", start=node(BASE_EVENT_TYPE))},
        {"op": "resolve", "node": path("DivertCompletedEventType", start=node(BASE_EVENT_TYPE))},
        subscribe,
        call(induct, f"{LC}:Induct", *string_args("TOTE-NODE-1", "Z03"), id="induct"),
        call(sorter, f"{LC}:Divert", *string_args(item, "VAS-2")),
        {"op": "events", "subscription": "events", "count": 2, "durationMs": 20000},
        call(sorter, f"{LC}:Journal", {"dataType": "UInt32", "value": 0}),
        call(sorter, f"{LC}:Divert", *string_args(item, "NO-SUCH-CHUTE")),
        call(induct, f"{LC}:Induct", *string_args("TOTE-NODE-2", "NO-SUCH-ZONE")),
    ]
    steps[5]["match"] = {"ItemId": item}
    results = await nodeopcua.steps(conn, steps)
    scan_type, divert_type, subscribed, induct, divert, events, journal, bad_chute, bad_zone = (
        results
    )
    assert [i["statusCode"] for i in ok(subscribed)["items"]] == ["Good", "Good"]
    assert ok(induct)["statusCode"] == "Good"
    (item_id,) = induct["outputArguments"]
    assert isinstance(item_id, str) and item_id
    assert ok(divert)["statusCode"] == "Good"

    scan, done = ok(events)["events"]
    assert scan["fields"]["EventType"] == ok(scan_type)["nodeId"]
    assert scan["node"] == subscribed["items"][0]["nodeId"]
    assert scan["fields"]["SourceName"] == "SCAN1"
    assert scan["fields"]["SourceNode"] == subscribed["items"][0]["nodeId"]
    assert scan["fields"]["Codes"] == ["TOTE-NODE-1"]
    assert (scan["fields"]["NoRead"], scan["fields"]["MultiRead"]) == (False, False)
    assert done["fields"]["EventType"] == ok(divert_type)["nodeId"]
    assert done["fields"]["SourceName"] == "D8"
    fields = done["fields"]
    assert (fields["ChuteId"], fields["DivertId"], fields["Success"]) == ("VAS-2", "D8", True)
    assert isinstance(fields["Sequence"], int) and fields["Sequence"] >= 1

    assert ok(journal)["statusCode"] == "Good"
    last, sequences, item_ids, tote_ids, chute_ids, oks = journal["outputArguments"]
    assert last == fields["Sequence"]
    entry = sequences.index(fields["Sequence"])
    assert (item_ids[entry], tote_ids[entry], chute_ids[entry], oks[entry]) == (
        item_id,
        "TOTE-NODE-1",
        "VAS-2",
        True,
    )
    assert ok(bad_chute)["statusCode"] == "BadInvalidArgument"
    assert ok(bad_zone)["statusCode"] == "BadInvalidArgument"


async def test_writes_to_writable_and_read_only_variables(
    nodeopcua: NodeOpcua, conn: Connection, sim: ConveyorSimulator
) -> None:
    chute = unit("Sorter", "S1", "Chutes", "CH-UPS")

    def write(name: str, data_type: str, value: Any) -> Json:
        return {
            "op": "write",
            "node": path(name, start=chute),
            "dataType": data_type,
            "value": value,
        }

    steps = [
        write("Enabled", "Boolean", False),
        read(path("Enabled", start=chute)),
        write("Full", "Boolean", True),
        read(path("Full", start=chute)),
        write("Enabled", "Boolean", True),
    ]
    try:
        disable, disabled, full, still_not_full, enable = await nodeopcua.steps(conn, steps)
    finally:
        await sim.set_chute_enabled("CH-UPS", True)
    assert ok(disable)["statusCode"] == "Good"
    assert ok(disabled)["attributes"]["Value"]["value"] is False
    # the model says read-only; which Bad code is in test_nodeopcua_required.py
    assert ok(full)["statusCode"].startswith("Bad"), full
    assert ok(still_not_full)["attributes"]["Value"]["value"] is False
    assert ok(enable)["statusCode"] == "Good"
