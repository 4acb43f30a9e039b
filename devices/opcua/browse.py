"""Find the conveyor model's nodes on a server by BrowseName paths (docs/opcua-model.md).

Nothing here knows a NodeId in advance: the namespace index comes from the server's namespace array,
and every node is found by translating browse paths, in one request. The unit's PackML state machine
and commands are the standard ones of OPC 30050 (:mod:`devices.opcua.packml`). A server that lacks a
node the line config expects raises :class:`ModelMismatch` naming the missing path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asyncua import Client, Node, ua

from devices.opcua.packml import PackMLMismatch, RemotePackML, resolve_packml
from kernel.config.model import LineConfig

SCAN_EVENT_TYPE = "ScanEventType"
DIVERT_EVENT_TYPE = "DivertCompletedEventType"


class ModelMismatch(Exception):
    """The server does not expose the conveyor model the line config describes."""


@dataclass(frozen=True)
class RemoteChute:
    chute_id: str
    full: Node
    enabled: Node
    count: Node


@dataclass(frozen=True)
class RemoteZone:
    """A zone's live variables for the line view; each None on a server without it."""

    running: Node | None
    occupied: Node | None
    item_id: Node | None

    def nodes(self) -> list[Node]:
        return [n for n in (self.running, self.occupied, self.item_id) if n is not None]


ZONE_VIEW_VARIABLES = ("Running", "Occupied", "ItemId")


@dataclass(frozen=True)
class RemoteModel:
    """Handles on the nodes the sorter adapter uses."""

    idx: int
    conveyor: Node
    packml: RemotePackML  # the unit's standard PackML nodes (OPC 30050)
    watchdog: Node
    watchdog_tripped: Node
    scanners: dict[str, Node]
    sorter: Node
    divert_method: Node
    diverts: dict[str, Node]
    chutes: dict[str, RemoteChute]
    scan_event_type: Node
    divert_event_type: Node
    jammed: dict[str, Node]  # zone id -> its Jammed variable
    zones: dict[str, Node]  # zone id -> the zone object (its Jog method)
    # reconciliation after a reconnect (docs/opcua-model.md, Tracking); None on a server
    # without them, which then cannot be reconciled
    tracking_method: Node | None = None
    journal_method: Node | None = None
    # the zones' belts and photo-eyes, only shown (the controller decides on nothing of them)
    zone_view: dict[str, RemoteZone] = field(default_factory=dict)

    def qn(self, name: str) -> ua.QualifiedName:
        return ua.QualifiedName(name, self.idx)


async def resolve(client: Client, config: LineConfig) -> RemoteModel:
    """Browse the server for the model of ``config.conveyor``; raises ModelMismatch."""
    conv = config.conveyor
    try:
        idx = await client.get_namespace_index(conv.opcua.namespace)
    except ValueError:
        raise ModelMismatch(f"namespace {conv.opcua.namespace!r} not on the server") from None

    def q(*names: str) -> list[ua.QualifiedName]:
        return [ua.QualifiedName(n, idx) for n in names]

    base = ["Line", conv.id]
    sorter = [*base, "Sorter", conv.sorter.id]
    paths: dict[str, list[ua.QualifiedName]] = {
        "conveyor": q(*base),
        "watchdog": q(*base, "Watchdog"),
        "watchdog_tripped": q(*base, "WatchdogTripped"),
        "sorter": q(*sorter),
        "divert_method": q(*sorter, "Divert"),
        f"scanner:{conv.scanner.id}": q(*base, "Scanners", conv.scanner.id),
    }
    for z in conv.zones:
        paths[f"zone:{z.id}"] = q(*base, "Zones", z.id)
        paths[f"zone:{z.id}:Jammed"] = q(*base, "Zones", z.id, "Jammed")
    for d in conv.sorter.diverts:
        paths[f"divert:{d.id}"] = q(*sorter, "Diverts", d.id)
    for c in conv.sorter.chutes:
        for var in ("Full", "Enabled", "Count"):
            paths[f"chute:{c.id}:{var}"] = q(*sorter, "Chutes", c.id, var)
    objects = await find_nodes(client.nodes.objects, paths)
    optional_paths = {"tracking": q(*sorter, "Tracking"), "journal": q(*sorter, "Journal")}
    for z in conv.zones:
        for var in ZONE_VIEW_VARIABLES:
            optional_paths[f"zone:{z.id}:{var}"] = q(*base, "Zones", z.id, var)
    optional = await find_nodes(client.nodes.objects, optional_paths, required=False)

    event_base = [
        ua.QualifiedName("Types", 0),
        ua.QualifiedName("EventTypes", 0),
        ua.QualifiedName("BaseEventType", 0),
    ]
    types = await find_nodes(
        client.nodes.root,
        {
            "scan": [*event_base, ua.QualifiedName(SCAN_EVENT_TYPE, idx)],
            "divert": [*event_base, ua.QualifiedName(DIVERT_EVENT_TYPE, idx)],
        },
    )
    try:
        packml = await resolve_packml(client, objects["conveyor"])
    except PackMLMismatch as exc:
        raise ModelMismatch(str(exc)) from None
    return RemoteModel(
        idx=idx,
        conveyor=objects["conveyor"],
        packml=packml,
        watchdog=objects["watchdog"],
        watchdog_tripped=objects["watchdog_tripped"],
        scanners={conv.scanner.id: objects[f"scanner:{conv.scanner.id}"]},
        sorter=objects["sorter"],
        divert_method=objects["divert_method"],
        diverts={d.id: objects[f"divert:{d.id}"] for d in conv.sorter.diverts},
        chutes={
            c.id: RemoteChute(
                chute_id=c.id,
                full=objects[f"chute:{c.id}:Full"],
                enabled=objects[f"chute:{c.id}:Enabled"],
                count=objects[f"chute:{c.id}:Count"],
            )
            for c in conv.sorter.chutes
        },
        scan_event_type=types["scan"],
        divert_event_type=types["divert"],
        jammed={z.id: objects[f"zone:{z.id}:Jammed"] for z in conv.zones},
        zones={z.id: objects[f"zone:{z.id}"] for z in conv.zones},
        tracking_method=optional.get("tracking"),
        journal_method=optional.get("journal"),
        zone_view={
            z.id: RemoteZone(
                running=optional.get(f"zone:{z.id}:Running"),
                occupied=optional.get(f"zone:{z.id}:Occupied"),
                item_id=optional.get(f"zone:{z.id}:ItemId"),
            )
            for z in conv.zones
        },
    )


async def find_nodes(
    start: Node, paths: dict[str, list[ua.QualifiedName]], required: bool = True
) -> dict[str, Node]:
    keys = list(paths)
    found = await start.get_children_by_path([paths[k] for k in keys], raise_on_partial_error=False)
    result: dict[str, Node] = {}
    missing: list[str] = []
    for key, nodes in zip(keys, found, strict=True):
        node = nodes[0] if nodes else None
        if node is None:
            missing.append("/".join(qn.Name for qn in paths[key]))
        else:
            result[key] = node
    if missing and required:
        raise ModelMismatch(f"not found on the server: {', '.join(missing)}")
    return result
