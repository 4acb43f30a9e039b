"""The conveyor simulator through node-opcua: the documented model (docs/opcua-model.md) as a
client of another stack sees it. The browse tree (the unit an OPC 30050 PackMLBaseObjectType,
linectl's nodes under it), typed reads, an inducted item's scan and divert events on the
emitters and on the Server object. The PackML commands are in ``test_nodeopcua_packml.py``,
writes and array ranks in ``test_nodeopcua_conformance.py``."""

from __future__ import annotations

from typing import Any

import pytest

from kernel.config.model import LineConfig
from tests.interop.nodeopcua_client import (
    BASE_EVENT_TYPE,
    EVENT_FIELDS,
    LC,
    LC_URI,
    PACKML_URI,
    SERVER_OBJECT,
    Connection,
    Json,
    NodeOpcua,
    browse,
    call,
    current_state,
    machine,
    node,
    ok,
    packml,
    path,
    read,
    string_args,
    unit,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

FOLDER_TYPE = "ns=0;i=61"
CURRENT_READ, CURRENT_WRITE = 1, 2
COMMANDS = {"Abort", "Clear", "Stop", "Reset", "Start", "Hold", "Unhold", "Suspend", "Unsuspend"}


def children(step: Json, node_class: str | None = None, namespace: str = LC_URI) -> dict[str, Json]:
    """The references of a browse step in ``namespace`` (the line's), by name."""
    refs = ok(step)["references"]
    out = {r["browseName"]["name"]: r for r in refs if r["browseName"]["namespaceUri"] == namespace}
    if node_class is None:
        return out
    return {n: r for n, r in out.items() if r["nodeClass"] == node_class}


def standard(step: Json, node_class: str | None = None) -> dict[str, Json]:
    """The references of a browse step in the PackML namespace, by name."""
    return children(step, node_class, PACKML_URI)


def all_names(step: Json, node_class: str) -> set[str]:
    """The names of a browse step's references of ``node_class``, in any namespace."""
    return {r["browseName"]["name"] for r in ok(step)["references"] if r["nodeClass"] == node_class}


async def test_browse_tree_is_the_documented_model(
    nodeopcua: NodeOpcua, conn: Connection, line: LineConfig
) -> None:
    conv = line.conveyor
    sorter = unit("Sorter", conv.sorter.id)
    steps = [
        browse(node("i=85")),
        {**browse(path("Line")), "id": "line"},
        read({"nodeId": {"$ref": "line.references.0.typeDefinition"}}, "BrowseName"),
        browse(unit()),
        browse(machine("BaseStateMachine")),
        browse(machine("MachineState")),
        browse(machine("ExecuteState")),
        browse(current_state("ExecuteState")),
        browse(unit(*packml("Status"))),
        browse(unit(*packml("Admin"))),
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
        unit_type,
        c1,
        base,
        machine_state,
        execute,
        execute_current,
        status,
        admin,
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
    assert ok(unit_type)["attributes"]["BrowseName"]["value"] == {
        "namespaceUri": PACKML_URI,
        "name": "PackMLBaseObjectType",
    }

    # the unit: OPC 30050's parts in the PackML namespace, linectl's in the line's
    assert {"BaseStateMachine", "Status", "Admin"} <= set(standard(c1, "Object"))
    unit_methods = {"SetMachSpeed", "SetUnitMode", "SetProduct", "SetParameter"}
    assert unit_methods <= set(standard(c1, "Method"))
    assert not COMMANDS & all_names(c1, "Method"), "commands are the state machines' methods"
    assert "State" not in all_names(c1, "Variable"), "the state is in CurrentState"
    linectl = {"Watchdog", "WatchdogTimeout", "WatchdogTripped"}
    assert set(children(c1, "Variable")) == linectl
    assert set(children(c1, "Object")) == {"Zones", "Scanners", "Sorter"}
    for folder in ("Zones", "Scanners", "Sorter"):
        assert children(c1)[folder]["typeDefinition"] == FOLDER_TYPE

    # each command on the machine whose state it leaves, each machine with its CurrentState
    for machine_step, methods, sub in (
        (base, {"Abort", "Clear"}, "MachineState"),
        (machine_state, {"Stop", "Reset"}, "ExecuteState"),
        (execute, {"Start", "Hold", "Unhold", "Suspend", "Unsuspend", "Reset"}, None),
    ):
        assert set(standard(machine_step, "Method")) == methods
        assert "CurrentState" in all_names(machine_step, "Variable")
        assert (sub is None) or sub in standard(machine_step, "Object")
    assert {"Id", "Number"} <= all_names(execute_current, "Variable")
    tags = {"UnitModeCurrent", "UnitSupportedModes", "MachSpeed", "CurMachSpeed"}
    assert tags | {"EquipmentBlocked", "EquipmentStarved"} <= set(standard(status, "Variable"))
    assert "StopReason" in standard(admin, "Variable")

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


ANY = object()  # a value the test does not fix


def shown(value: Json) -> Any:
    """A read Value as the model documents it: the text of a LocalizedText."""
    return value["value"]["text"] if value["dataType"] == "LocalizedText" else value["value"]


async def test_reads_are_typed_as_documented(
    nodeopcua: NodeOpcua, conn: Connection, line: LineConfig
) -> None:
    chute = unit("Sorter", "S1", "Chutes", "CH-DHL")
    status = unit(*packml("Status"))
    speed = line.conveyor.belt_speed
    typed = ["Value", "DataType", "ValueRank", "AccessLevel"]
    # node, Variant type, DataType, value, writable
    cases: list[tuple[Json, str, str, Any, bool]] = [
        (current_state("BaseStateMachine"), "LocalizedText", "LocalizedText", "Cleared", False),
        (current_state("MachineState"), "LocalizedText", "LocalizedText", "Running", False),
        (current_state("ExecuteState"), "LocalizedText", "LocalizedText", "Execute", False),
        (current_state("ExecuteState", "Id"), "NodeId", "NodeId", ANY, False),
        (current_state("ExecuteState", "Number"), "UInt32", "UInt32", 6, False),
        (
            path(*packml("UnitModeCurrent"), start=status),
            "Int32",
            "ProductionMaintenanceModeEnum",
            1,
            False,
        ),
        (path(*packml("UnitSupportedModes"), start=status), "NodeId", "NodeId", ANY, False),
        (path(*packml("MachSpeed"), start=status), "Float", "Float", speed, False),
        (path(*packml("CurMachSpeed"), start=status), "Float", "Float", speed, False),
        (path(*packml("EquipmentBlocked"), start=status), "Boolean", "Boolean", False, False),
        (path(*packml("EquipmentStarved"), start=status), "Boolean", "Boolean", False, False),
        (
            unit(*packml("Admin", "StopReason")),
            "ExtensionObject",
            "PackMLAlarmDataType",
            ANY,
            False,
        ),
        (unit("Watchdog"), "UInt32", "UInt32", 0, True),
        (unit("WatchdogTimeout"), "Double", "Double", 3.0, False),
        (unit("WatchdogTripped"), "Boolean", "Boolean", False, False),
        (unit("Zones", "Z01", "SpeedSetpoint"), "Double", "Double", speed, False),
        (unit("Zones", "Z01", "Occupied"), "Boolean", "Boolean", False, False),
        (unit("Zones", "Z01", "ItemId"), "String", "String", "", False),
        (unit("Scanners", "SCAN1", "Zone"), "String", "String", "Z05", False),
        (unit("Sorter", "S1", "Diverts", "D1", "Chute"), "String", "String", "CH-DHL", False),
        (path("Kind", start=chute), "String", "String", "carrier", False),
        (path("Full", start=chute), "Boolean", "Boolean", False, False),
        (path("Enabled", start=chute), "Boolean", "Boolean", True, True),
        (path("Count", start=chute), "UInt32", "UInt32", 0, False),
        (path("Delivered", start=chute), "UInt32", "UInt32", 0, False),
    ]
    steps = [read(ref, *typed) for ref, *_ in cases]
    steps.append(read(path(*packml("MachSpeed"), "0:EURange", start=status)))
    steps.append(read(unit("Sorter", "S1", "Divert", "0:InputArguments"), "Value", "DataType"))
    steps.append(read(unit("Sorter", "S1", "Tracking", "0:OutputArguments"), "Value"))
    steps.append(read(unit("Scanners", "SCAN1"), "EventNotifier"))
    results = await nodeopcua.steps(conn, steps)

    read_values: dict[str, Json] = {}
    for (ref, variant, data_type, value, writable), step in zip(cases, results, strict=False):
        attrs = ok(step)["attributes"]
        where = "/".join(ref["path"])
        read_values[ref["path"][-1].split(":")[-1]] = attrs
        assert attrs["Value"]["statusCode"] == "Good", (where, attrs)
        assert (attrs["Value"]["dataType"], attrs["Value"]["arrayType"]) == (variant, "Scalar")
        assert value is ANY or shown(attrs["Value"]) == value, (where, attrs["Value"])
        assert attrs["DataType"]["name"] == data_type, where
        assert attrs["ValueRank"]["value"] == -1, where
        access = attrs["AccessLevel"]["value"]
        assert access & CURRENT_READ, where
        assert bool(access & CURRENT_WRITE) is writable, where

    # the supported modes name the enumeration UnitModeCurrent is of
    modes = read_values["UnitSupportedModes"]["Value"]["value"]
    assert modes == read_values["UnitModeCurrent"]["DataType"]["value"]
    # no stop of the unit's own yet
    reason = read_values["StopReason"]["Value"]["value"]
    assert (reason["ID"], reason["message"], reason["trigger"]) == (0, "", False)

    eu_range, divert_args, tracking_outputs, notifier = results[len(cases) :]
    assert ok(eu_range)["attributes"]["Value"]["value"] == {"low": speed, "high": speed}
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


async def test_divert_of_an_inducted_item_gives_its_scan_and_divert_events(
    nodeopcua: NodeOpcua, conn: Connection
) -> None:
    """The events reach a subscription on the scanner and divert and one on the Server object
    alone (i=2253), with the same fields."""
    sorter = unit("Sorter", "S1")
    item = {"$ref": "induct.outputArguments.0"}
    induct = path("Simulation")
    emitters = [unit("Scanners", "SCAN1"), path("Diverts", "D8", start=sorter)]
    steps: list[Json] = [
        {"op": "resolve", "node": path("ScanEventType", start=node(BASE_EVENT_TYPE))},
        {"op": "resolve", "node": path("DivertCompletedEventType", start=node(BASE_EVENT_TYPE))},
        {"op": "subscribe_events", "id": "emitters", "nodes": emitters, "fields": EVENT_FIELDS},
        {"op": "subscribe_events", "id": "server", "nodes": [node(SERVER_OBJECT)]},
        call(induct, f"{LC}:Induct", *string_args("TOTE-NODE-1", "Z03"), id="induct"),
        call(sorter, f"{LC}:Divert", *string_args(item, "VAS-2")),
        {"op": "events", "subscription": "emitters", "count": 2, "match": {"ItemId": item}},
        {"op": "events", "subscription": "server", "count": 2, "match": {"ItemId": item}},
        call(sorter, f"{LC}:Journal", {"dataType": "UInt32", "value": 0}),
        call(sorter, f"{LC}:Divert", *string_args(item, "NO-SUCH-CHUTE")),
        call(induct, f"{LC}:Induct", *string_args("TOTE-NODE-2", "NO-SUCH-ZONE")),
    ]
    steps[3]["fields"] = EVENT_FIELDS
    for step in steps[6:8]:
        step["durationMs"] = 20000
    results = await nodeopcua.steps(conn, steps)
    scan_type, divert_type, at_emitters, at_server, induct, divert = results[:6]
    events, server_events, journal, bad_chute, bad_zone = results[6:]
    assert [i["statusCode"] for i in ok(at_emitters)["items"]] == ["Good", "Good"]
    assert [i["statusCode"] for i in ok(at_server)["items"]] == ["Good"]
    assert ok(induct)["statusCode"] == "Good"
    (item_id,) = induct["outputArguments"]
    assert isinstance(item_id, str) and item_id
    assert ok(divert)["statusCode"] == "Good"

    scan, done = ok(events)["events"]
    scanner_id, divert_id = (i["nodeId"] for i in at_emitters["items"])
    assert scan["fields"]["EventType"] == ok(scan_type)["nodeId"]
    assert (scan["node"], scan["fields"]["SourceNode"]) == (scanner_id, scanner_id)
    assert scan["fields"]["SourceName"] == "SCAN1"
    assert scan["fields"]["Codes"] == ["TOTE-NODE-1"]
    assert (scan["fields"]["NoRead"], scan["fields"]["MultiRead"]) == (False, False)
    assert done["fields"]["EventType"] == ok(divert_type)["nodeId"]
    assert (done["node"], done["fields"]["SourceNode"]) == (divert_id, divert_id)
    assert done["fields"]["SourceName"] == "D8"
    fields = done["fields"]
    assert (fields["ChuteId"], fields["DivertId"], fields["Success"]) == ("VAS-2", "D8", True)
    assert isinstance(fields["Sequence"], int) and fields["Sequence"] >= 1

    # the Server object delivers the same two events, fields and all
    via_server = ok(server_events)["events"]
    assert {e["node"] for e in via_server} == {"ns=0;i=2253"}, via_server
    assert [e["fields"] for e in via_server] == [scan["fields"], done["fields"]]

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
