"""Commissioning check: browse every configured device and say what is there and what is not.

``linectl devices check`` uses this before a line goes live. The conveyor's OPC UA server is
browsed for every node docs/opcua-model.md implies for the configured ids (by browse path, as
the adapter does) and each node's class and data type is compared with the model. The robot
fleet is checked passively on the broker: the retained ``connection`` and ``factsheet`` messages
and the periodic ``state`` of every configured robot are collected for a few seconds and
validated against the schema of the robot's configured VDA 5050 version.

Nothing here writes to a device. Outcomes are values (:class:`DeviceReport`), never exceptions:
an unreachable endpoint is a report too, and so is a server that refuses the session (login,
certificate trust, pinned certificate, security offered), each named
(:mod:`devices.opcua.refusals`).

The check is put together from one module per concept: this module browses the OPC UA servers
and checks the whole line; :mod:`devices.check_nodes` lists the nodes expected;
:mod:`devices.check_robots` checks the robots on the broker; :mod:`devices.check_report` holds
the report values.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from asyncua import Client, Node, ua

from devices.check_nodes import (
    EVENT_TYPES_PATH,
    Expected,
    Step,
    current_states,
    expected_crane_nodes,
    expected_nodes,
)
from devices.check_report import DeviceReport, Finding, Status
from devices.check_robots import check_robots
from devices.opcua.connection import connect_client
from devices.opcua.refusals import connect_failure
from devices.opcua.security import secure_client
from kernel.config.model import LineConfig, OpcUaEndpoint

__all__ = [
    "DeviceReport",
    "Expected",
    "Finding",
    "Status",
    "check_conveyor",
    "check_cranes",
    "check_line",
    "check_robots",
    "expected_crane_nodes",
    "expected_nodes",
]

log = logging.getLogger(__name__)

PATHS_PER_REQUEST = 100  # kept small: servers may limit browse paths per TranslateBrowsePaths


async def check_conveyor(config: LineConfig, connect_timeout: float = 5.0) -> DeviceReport:
    """Connect to ``conveyor.opcua.endpoint`` and check every expected node."""
    conv = config.conveyor
    expected = expected_nodes(config)
    states = current_states(("Line", conv.id))
    return await _check_server(f"conveyor {conv.id}", conv.opcua, expected, states, connect_timeout)


async def check_cranes(config: LineConfig, connect_timeout: float = 5.0) -> DeviceReport:
    """Connect to ``asrs.opcua.endpoint`` and check every crane's nodes."""
    cranes = ", ".join(a.crane.id for a in config.asrs.aisles)
    return await _check_server(
        f"AS/RS cranes {cranes}",
        config.asrs.opcua,
        expected_crane_nodes(config),
        [],
        connect_timeout,
    )


async def _check_server(
    device: str,
    opcua: OpcUaEndpoint,
    expected: list[Expected],
    states: list[Expected],
    connect_timeout: float,
) -> DeviceReport:
    endpoint = opcua.endpoint
    client = Client(endpoint, timeout=connect_timeout)
    try:
        async with asyncio.timeout(connect_timeout):
            await secure_client(client, opcua)
            await connect_client(client)
    except (OSError, TimeoutError, ua.UaError) as exc:
        failure = connect_failure(exc)
        log.info(
            "OPC UA endpoint not connected",
            extra={"device": device, "endpoint": endpoint, "reason": failure.detail},
        )
        status = Status.REFUSED if failure.cause.refused else Status.UNREACHABLE
        return DeviceReport(device, endpoint, (Finding("endpoint", status, failure.detail),))
    try:
        async with asyncio.timeout(connect_timeout * 4):
            findings, facts = await _browse(client, opcua.namespace, expected, states)
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
    client: Client, namespace: str, expected: list[Expected], states: list[Expected]
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
    # the innermost active state machine's state (an inactive one reads Bad_StateNotActive)
    shown = await _read(client, (nodes[e] for e in states if e in nodes), ua.AttributeIds.Value)
    texts = [v.Text for v in shown.values() if isinstance(v, ua.LocalizedText) and v.Text]
    if texts:
        facts.append(("PackML state", texts[-1]))
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
    """Translate every expected browse path, a chunk per request; absent paths are left out
    (a path in a standard namespace the server lacks is sent with an index no name has)."""
    types_base = [ua.QualifiedName(n, 0) for n in EVENT_TYPES_PATH]
    uris = await client.get_namespace_array()

    def qualified(step: Step) -> ua.QualifiedName:
        if isinstance(step, str):
            return ua.QualifiedName(step, idx)
        return ua.QualifiedName(step.name, uris.index(step.uri) if step.uri in uris else 65535)

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
                    *(qualified(step) for step in e.path),
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
