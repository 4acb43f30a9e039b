"""Commissioning check: browse every configured device and say what is there and what is not.

``linectl devices check`` uses this before a line goes live. The conveyor's OPC UA server is
browsed for every node docs/opcua-model.md implies for the configured ids (by browse path, as
the adapter does) and each node's class and data type is compared with the model. The robot
fleet is checked passively on the broker: the retained ``connection`` and ``factsheet`` messages
and the periodic ``state`` of every configured robot are collected for a few seconds and
validated against the schema of the robot's configured VDA 5050 version.

Nothing here writes to a device. Outcomes are values (:class:`DeviceReport`), never exceptions:
an unreachable endpoint is a report too.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiomqtt
from asyncua import Client, Node, ua

from controller.config.model import LineConfig, OpcUaEndpoint
from devices.opcua.browse import DIVERT_EVENT_TYPE, SCAN_EVENT_TYPE
from devices.opcua.security import secure_client
from devices.opcua.supervise import connect_client
from devices.vda5050 import schema
from devices.vda5050.link import broker_address
from devices.vda5050.mqtt_client import BrokerClient
from devices.vda5050.topics import topic

log = logging.getLogger(__name__)

PACKML_METHODS = (
    "Start",
    "Stop",
    "Hold",
    "Unhold",
    "Reset",
    "Suspend",
    "Unsuspend",
    "Abort",
    "Clear",
)
ZONE_VARIABLES = (
    ("Running", ua.VariantType.Boolean),
    ("SpeedSetpoint", ua.VariantType.Double),
    ("SpeedActual", ua.VariantType.Double),
    ("Occupied", ua.VariantType.Boolean),
    ("ItemId", ua.VariantType.String),
    ("Jammed", ua.VariantType.Boolean),
)
CHUTE_VARIABLES = (
    ("Kind", ua.VariantType.String),
    ("Full", ua.VariantType.Boolean),
    ("Enabled", ua.VariantType.Boolean),
    ("Count", ua.VariantType.UInt32),
    ("Delivered", ua.VariantType.UInt32),
)
EVENT_FIELDS = {
    SCAN_EVENT_TYPE: (
        ("ItemId", ua.VariantType.String),
        ("Codes", ua.VariantType.String),
        ("NoRead", ua.VariantType.Boolean),
        ("MultiRead", ua.VariantType.Boolean),
    ),
    DIVERT_EVENT_TYPE: (
        ("ItemId", ua.VariantType.String),
        ("ChuteId", ua.VariantType.String),
        ("DivertId", ua.VariantType.String),
        ("Success", ua.VariantType.Boolean),
        ("Sequence", ua.VariantType.UInt32),
    ),
}
CRANE_VARIABLES = (
    ("Aisle", ua.VariantType.String),
    ("State", ua.VariantType.String),
    ("PositionX", ua.VariantType.Double),
    ("PositionY", ua.VariantType.Double),
    ("CurrentCommand", ua.VariantType.String),
    ("QueueLength", ua.VariantType.UInt32),
    ("Fault", ua.VariantType.String),
    ("PdInput", ua.VariantType.String),  # an array (ValueRank 1)
)
CRANE_METHODS = ("Store", "Retrieve", "DualCommand", "ClearFault", "Journal", "Contents")
CRANE_EVENT_TYPE = "CraneCommandCompletedEventType"
CRANE_EVENT_FIELDS = (
    ("CommandId", ua.VariantType.String),
    ("ToteId", ua.VariantType.String),
    ("Location", ua.VariantType.String),
    ("Kind", ua.VariantType.String),
    ("Success", ua.VariantType.Boolean),
    ("Reason", ua.VariantType.String),
    ("Sequence", ua.VariantType.UInt32),
)
EVENT_TYPES_PATH = ("Types", "EventTypes", "BaseEventType")  # namespace 0
ROBOT_TOPICS = ("connection", "state", "factsheet")
PATHS_PER_REQUEST = 100  # kept small: servers may limit browse paths per TranslateBrowsePaths


class Status(StrEnum):
    FOUND = "found"
    MISSING = "missing"
    WRONG_TYPE = "wrong type"
    INVALID = "invalid"  # a message that does not validate against its schema
    OFFLINE = "offline"  # a robot whose connection message says it is not ONLINE
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Finding:
    """One thing looked for: a browse path, or a robot's topic."""

    item: str
    status: Status
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status is Status.FOUND


@dataclass(frozen=True)
class DeviceReport:
    """What was found on one device; ``ok`` when everything expected is there and right."""

    device: str
    address: str
    findings: tuple[Finding, ...]
    facts: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return bool(self.findings) and all(f.ok for f in self.findings)

    def problems(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    def as_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "address": self.address,
            "ok": self.ok,
            "facts": dict(self.facts),
            "found": sum(1 for f in self.findings if f.ok),
            "findings": [
                {"item": f.item, "status": f.status.value, "detail": f.detail}
                for f in self.findings
            ],
        }


# --- OPC UA ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """A node the model requires: where (under Objects, or under the event types), its class,
    and for variables their data type."""

    path: tuple[str, ...]
    node_class: ua.NodeClass
    data_type: ua.VariantType | None = None
    event_notifier: bool = False
    under_types: bool = False

    @property
    def name(self) -> str:
        return "/".join((*EVENT_TYPES_PATH, *self.path) if self.under_types else self.path)


def expected_nodes(config: LineConfig) -> list[Expected]:
    """Every node docs/opcua-model.md implies for ``config.conveyor`` (``Simulation`` is
    simulator-only and not expected)."""
    conv = config.conveyor
    obj, var, meth = ua.NodeClass.Object, ua.NodeClass.Variable, ua.NodeClass.Method
    base = ("Line", conv.id)
    sorter = (*base, "Sorter", conv.sorter.id)
    out = [
        Expected(("Line",), obj),
        Expected(base, obj),
        Expected((*base, "State"), var, ua.VariantType.String),
    ]
    out += [
        Expected((*base, "Watchdog"), var, ua.VariantType.UInt32),
        Expected((*base, "WatchdogTimeout"), var, ua.VariantType.Double),
        Expected((*base, "WatchdogTripped"), var, ua.VariantType.Boolean),
    ]
    out += [Expected((*base, m), meth) for m in PACKML_METHODS]
    out.append(Expected((*base, "Zones"), obj))
    for zone in conv.zones:
        zp = (*base, "Zones", zone.id)
        out.append(Expected(zp, obj))
        out += [Expected((*zp, name), var, vtype) for name, vtype in ZONE_VARIABLES]
        out.append(Expected((*zp, "Jog"), meth))
    sp = (*base, "Scanners", conv.scanner.id)
    out += [
        Expected((*base, "Scanners"), obj),
        Expected(sp, obj, event_notifier=True),
        Expected((*sp, "Zone"), var, ua.VariantType.String),
        Expected((*base, "Sorter"), obj),
        Expected(sorter, obj),
        Expected((*sorter, "Divert"), meth),
        Expected((*sorter, "Tracking"), meth),
        Expected((*sorter, "Journal"), meth),
        Expected((*sorter, "Diverts"), obj),
    ]
    for divert in conv.sorter.diverts:
        dp = (*sorter, "Diverts", divert.id)
        out.append(Expected(dp, obj, event_notifier=True))
        out += [Expected((*dp, p), var, ua.VariantType.String) for p in ("Chute", "Zone")]
    out.append(Expected((*sorter, "Chutes"), obj))
    for chute in conv.sorter.chutes:
        cp = (*sorter, "Chutes", chute.id)
        out.append(Expected(cp, obj))
        out += [Expected((*cp, name), var, vtype) for name, vtype in CHUTE_VARIABLES]
    for type_name, fields in EVENT_FIELDS.items():
        out.append(Expected((type_name,), ua.NodeClass.ObjectType, under_types=True))
        out += [Expected((type_name, name), var, vtype, under_types=True) for name, vtype in fields]
    return out


def expected_crane_nodes(config: LineConfig) -> list[Expected]:
    """Every node docs/opcua-model.md (Cranes) implies for ``config.asrs``."""
    obj, var, meth = ua.NodeClass.Object, ua.NodeClass.Variable, ua.NodeClass.Method
    out = [Expected(("Line",), obj), Expected(("Line", "Asrs"), obj)]
    for aisle in config.asrs.aisles:
        cp = ("Line", "Asrs", aisle.crane.id)
        out.append(Expected(cp, obj, event_notifier=True))
        out += [Expected((*cp, name), var, vtype) for name, vtype in CRANE_VARIABLES]
        out += [Expected((*cp, m), meth) for m in CRANE_METHODS]
    out.append(Expected((CRANE_EVENT_TYPE,), ua.NodeClass.ObjectType, under_types=True))
    out += [
        Expected((CRANE_EVENT_TYPE, name), var, vtype, under_types=True)
        for name, vtype in CRANE_EVENT_FIELDS
    ]
    return out


async def check_conveyor(config: LineConfig, connect_timeout: float = 5.0) -> DeviceReport:
    """Connect to ``conveyor.opcua.endpoint`` and check every expected node."""
    conv = config.conveyor
    expected = expected_nodes(config)
    return await _check_server(
        f"conveyor {conv.id}", conv.opcua, expected, expected[2], connect_timeout
    )


async def check_cranes(config: LineConfig, connect_timeout: float = 5.0) -> DeviceReport:
    """Connect to ``asrs.opcua.endpoint`` and check every crane's nodes."""
    cranes = ", ".join(a.crane.id for a in config.asrs.aisles)
    return await _check_server(
        f"AS/RS cranes {cranes}",
        config.asrs.opcua,
        expected_crane_nodes(config),
        None,
        connect_timeout,
    )


async def _check_server(
    device: str,
    opcua: OpcUaEndpoint,
    expected: list[Expected],
    state: Expected | None,
    connect_timeout: float,
) -> DeviceReport:
    endpoint = opcua.endpoint
    client = Client(endpoint, timeout=connect_timeout)
    try:
        async with asyncio.timeout(connect_timeout):
            await secure_client(client, opcua)
            await connect_client(client)
    except (OSError, TimeoutError, ua.UaError) as exc:
        reason = str(exc) or type(exc).__name__
        log.info(
            "OPC UA endpoint unreachable",
            extra={"device": device, "endpoint": endpoint, "reason": reason},
        )
        return DeviceReport(device, endpoint, (Finding("endpoint", Status.UNREACHABLE, reason),))
    try:
        async with asyncio.timeout(connect_timeout * 4):
            findings, facts = await _browse(client, opcua.namespace, expected, state)
    except (OSError, TimeoutError, ua.UaError) as exc:
        reason = f"browsing failed: {exc or type(exc).__name__}"
        findings, facts = [Finding("endpoint", Status.UNREACHABLE, reason)], []
    finally:
        try:
            await client.disconnect()
        except (OSError, TimeoutError, ua.UaError) as exc:  # the report stands either way
            log.info("disconnect failed", extra={"endpoint": endpoint, "reason": str(exc)})
    return DeviceReport(device, endpoint, tuple(findings), tuple(facts))


async def _browse(
    client: Client, namespace: str, expected: list[Expected], state: Expected | None
) -> tuple[list[Finding], list[tuple[str, str]]]:
    try:
        idx = await client.get_namespace_index(namespace)
    except ValueError:
        return [Finding(f"namespace {namespace}", Status.MISSING)], []
    facts = [("namespace", f"{namespace} (ns={idx})")]
    nodes = await _resolve(client, idx, expected)
    classes = await _read(client, nodes.values(), ua.AttributeIds.NodeClass)
    data_types = await _read(
        client,
        (n for e, n in nodes.items() if e.data_type and classes[n] == e.node_class),
        ua.AttributeIds.DataType,
    )
    notifiers = await _read(
        client,
        (n for e, n in nodes.items() if e.event_notifier and classes[n] == e.node_class),
        ua.AttributeIds.EventNotifier,
    )
    missing = {e.path for e in expected if e not in nodes and not e.under_types}
    missing |= {(*EVENT_TYPES_PATH, *e.path) for e in expected if e not in nodes and e.under_types}
    findings: list[Finding] = []
    for e in expected:
        node = nodes.get(e)
        if node is None:
            full = (*EVENT_TYPES_PATH, *e.path) if e.under_types else e.path
            if not any(full[:i] in missing for i in range(1, len(full))):
                findings.append(Finding(e.name, Status.MISSING))  # its parent's report covers it
            continue
        findings.append(_judge(e, classes[node], data_types.get(node), notifiers.get(node)))
    if state is not None and any(f.item == state.name and f.ok for f in findings):
        facts.append(("PackML state", str(await nodes[state].read_value())))
    return findings, facts


def _judge(e: Expected, node_class: Any, data_type: Any, notifier: Any) -> Finding:
    if node_class != e.node_class:
        got = ua.NodeClass(node_class).name if isinstance(node_class, int) else str(node_class)
        return Finding(e.name, Status.WRONG_TYPE, f"expected {e.node_class.name}, got {got}")
    if e.data_type is not None:
        want = ua.NodeId(e.data_type.value, 0)
        if data_type != want:
            return Finding(
                e.name,
                Status.WRONG_TYPE,
                f"expected {e.data_type.name}, got {_type_name(data_type)}",
            )
        return Finding(e.name, Status.FOUND, e.data_type.name)
    if e.event_notifier:
        flags = ua.EventNotifier.parse_bitfield(int(notifier or 0))
        if ua.EventNotifier.SubscribeToEvents not in flags:
            return Finding(e.name, Status.WRONG_TYPE, "EventNotifier lacks SubscribeToEvents")
    return Finding(e.name, Status.FOUND, e.node_class.name)


def _type_name(data_type: Any) -> str:
    if isinstance(data_type, ua.NodeId) and data_type.NamespaceIndex == 0:
        name = ua.ObjectIdNames.get(data_type.Identifier)
        if name:
            return str(name)
    return str(data_type)


async def _resolve(client: Client, idx: int, expected: Sequence[Expected]) -> dict[Expected, Node]:
    """Translate every expected browse path, a chunk per request; absent paths are left out."""
    types_base = [ua.QualifiedName(n, 0) for n in EVENT_TYPES_PATH]
    found: dict[Expected, Node] = {}
    for start, subset in (
        (client.nodes.objects, [e for e in expected if not e.under_types]),
        (client.nodes.root, [e for e in expected if e.under_types]),
    ):
        for i in range(0, len(subset), PATHS_PER_REQUEST):
            chunk = subset[i : i + PATHS_PER_REQUEST]
            paths = [
                [
                    *(types_base if e.under_types else []),
                    *(ua.QualifiedName(n, idx) for n in e.path),
                ]
                for e in chunk
            ]
            results = await start.get_children_by_path(paths, raise_on_partial_error=False)
            for e, nodes in zip(chunk, results, strict=True):
                if nodes and nodes[0] is not None:
                    found[e] = nodes[0]
    return found


async def _read(client: Client, nodes: Iterable[Node], attr: ua.AttributeIds) -> dict[Node, Any]:
    """One attribute of many nodes, a chunk per request; unreadable values come back as None."""
    todo = list(nodes)
    out: dict[Node, Any] = {}
    for i in range(0, len(todo), PATHS_PER_REQUEST):
        chunk = todo[i : i + PATHS_PER_REQUEST]
        values = await client.read_attributes(chunk, attr)
        for node, dv in zip(chunk, values, strict=True):
            good = dv.StatusCode is None or dv.StatusCode.is_good()
            out[node] = dv.Value.Value if good and dv.Value is not None else None
    return out


# --- VDA 5050 robots ------------------------------------------------------------------------


async def check_robots(config: LineConfig, wait: float = 3.0) -> list[DeviceReport]:
    """Listen on the broker for ``wait`` seconds (less once every robot has sent everything)
    to the connection, state and factsheet topics of every configured robot."""
    try:
        address = broker_address(config.mqtt.url)
    except ValueError as exc:
        return _all_unreachable(config, str(exc))
    topics = {
        topic(config.mqtt.interface_name, _manufacturer(config, r.serial), r.serial, sub): (
            r.serial,
            sub,
        )
        for r in config.robots.fleet
        for sub in ROBOT_TOPICS
    }
    seen: dict[tuple[str, str], bytes] = {}
    try:
        async with BrokerClient(
            address.host,
            address.port,
            identifier=f"linectl-check-{uuid.uuid4().hex[:8]}",
            tls_params=aiomqtt.TLSParameters() if address.tls else None,
            timeout=max(wait, 1.0),
        ) as client:
            await client.subscribe([(t, 1) for t in topics])
            await _collect(client, topics, seen, wait)
    except aiomqtt.MqttError as exc:
        log.info("broker unreachable", extra={"url": config.mqtt.url, "reason": str(exc)})
        return _all_unreachable(config, f"broker {config.mqtt.url}: {exc}")
    return [_robot_report(config, r.serial, r.version, seen) for r in config.robots.fleet]


async def _collect(
    client: aiomqtt.Client,
    topics: dict[str, tuple[str, str]],
    seen: dict[tuple[str, str], bytes],
    wait: float,
) -> None:
    """Keep the latest payload per (serial, topic) until all are in or ``wait`` has passed."""
    try:
        async with asyncio.timeout(wait):
            async for message in client.messages:
                key = topics.get(message.topic.value)
                if key is None or not isinstance(message.payload, bytes) or not message.payload:
                    continue  # an empty retained message is a cleared one
                seen[key] = message.payload
                if len(seen) == len(topics):
                    return
    except TimeoutError:
        return


def _manufacturer(config: LineConfig, serial: str) -> str:
    return config.robot_model(serial).manufacturer


def _all_unreachable(config: LineConfig, reason: str) -> list[DeviceReport]:
    return [
        DeviceReport(
            f"robot {r.serial}", config.mqtt.url, (Finding("broker", Status.UNREACHABLE, reason),)
        )
        for r in config.robots.fleet
    ]


def _robot_report(
    config: LineConfig, serial: str, version: str, seen: dict[tuple[str, str], bytes]
) -> DeviceReport:
    prefix = topic(config.mqtt.interface_name, _manufacturer(config, serial), serial, "")
    facts: list[tuple[str, str]] = [("version", version)]
    findings: list[Finding] = []
    for sub in ROBOT_TOPICS:
        raw = seen.get((serial, sub))
        if raw is None:
            findings.append(Finding(sub, Status.MISSING, "nothing received"))
            continue
        parsed = schema.parse(version, sub, raw)
        if parsed.payload is None:
            findings.append(Finding(sub, Status.INVALID, parsed.errors[0]))
            continue
        findings.append(_robot_finding(sub, parsed.payload, facts))
    return DeviceReport(f"robot {serial}", prefix + "*", tuple(findings), tuple(facts))


def _robot_finding(sub: str, payload: dict[str, Any], facts: list[tuple[str, str]]) -> Finding:
    if sub == "connection":
        state = str(payload["connectionState"])
        facts.append(("connection", state))
        if state != "ONLINE":
            return Finding(sub, Status.OFFLINE, state)
        return Finding(sub, Status.FOUND, state)
    if sub == "state":
        mode = str(payload["operatingMode"])
        facts.append(("operating mode", mode))
        return Finding(sub, Status.FOUND, f"valid, operatingMode {mode}")
    return Finding(sub, Status.FOUND, "valid")


async def check_line(
    config: LineConfig, wait: float = 3.0, connect_timeout: float = 5.0
) -> list[DeviceReport]:
    """Check the conveyor, the AS/RS cranes (when the line has any) and every robot at once;
    the conveyor's report comes first, then the cranes'."""
    async with asyncio.TaskGroup() as tg:
        conveyor = tg.create_task(check_conveyor(config, connect_timeout), name="check.conveyor")
        cranes = (
            tg.create_task(check_cranes(config, connect_timeout), name="check.cranes")
            if config.asrs.aisles
            else None
        )
        robots = tg.create_task(check_robots(config, wait), name="check.robots")
    return [
        conveyor.result(),
        *([cranes.result()] if cranes is not None else []),
        *robots.result(),
    ]
