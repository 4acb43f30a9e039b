"""The AS/RS model on a server (docs/opcua-model.md, Cranes): found by browse paths, and its
events and method outputs checked at the boundary.

:func:`resolve_cranes` finds every crane the line config names under ``Objects/Line/Asrs`` in
one request and raises :class:`~devices.opcua.browse.ModelMismatch` naming what is missing.
The ``*_from_*`` functions turn asyncua values into plain ones, raising
:class:`devices.errors.InvalidMessage` for anything malformed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asyncua import Client, Node, ua

from devices.errors import InvalidMessage
from devices.opcua.browse import ModelMismatch, find_nodes
from devices.opcua.fields import (
    event_text,
    event_time,
    method_outputs,
    output_flags,
    output_strings,
)
from kernel.config.model import LineConfig

COMPLETED_EVENT_TYPE = "CraneCommandCompletedEventType"
VARIABLES = (
    "State",
    "PositionX",
    "PositionY",
    "CurrentCommand",
    "QueueLength",
    "Fault",
    "PdInput",
)
METHODS = ("Store", "Retrieve", "DualCommand", "ClearFault", "Journal", "Contents")


@dataclass(frozen=True)
class RemoteCrane:
    crane_id: str
    aisle: str
    node: Node
    variables: dict[str, Node]  # by name, VARIABLES
    methods: dict[str, Node]  # by name, METHODS


@dataclass(frozen=True)
class RemoteCranes:
    idx: int
    cranes: dict[str, RemoteCrane]  # by aisle
    completed_event_type: Node


async def resolve_cranes(client: Client, config: LineConfig) -> RemoteCranes:
    """Browse the server for every crane of ``config.asrs``; raises ModelMismatch."""
    ns = config.asrs.opcua.namespace
    try:
        idx = await client.get_namespace_index(ns)
    except ValueError:
        raise ModelMismatch(f"namespace {ns!r} not on the server") from None

    def q(*names: str) -> list[ua.QualifiedName]:
        return [ua.QualifiedName(n, idx) for n in names]

    paths: dict[str, list[ua.QualifiedName]] = {}
    for aisle in config.asrs.aisles:
        base = ["Line", "Asrs", aisle.crane.id]
        paths[f"{aisle.id}:"] = q(*base)
        for name in (*VARIABLES, *METHODS):
            paths[f"{aisle.id}:{name}"] = q(*base, name)
    found = await find_nodes(client.nodes.objects, paths)
    event_path = [
        ua.QualifiedName("Types", 0),
        ua.QualifiedName("EventTypes", 0),
        ua.QualifiedName("BaseEventType", 0),
        ua.QualifiedName(COMPLETED_EVENT_TYPE, idx),
    ]
    types = await find_nodes(client.nodes.root, {"completed": event_path})
    cranes = {
        a.id: RemoteCrane(
            crane_id=a.crane.id,
            aisle=a.id,
            node=found[f"{a.id}:"],
            variables={v: found[f"{a.id}:{v}"] for v in VARIABLES},
            methods={m: found[f"{a.id}:{m}"] for m in METHODS},
        )
        for a in config.asrs.aisles
    }
    return RemoteCranes(idx=idx, cranes=cranes, completed_event_type=types["completed"])


@dataclass(frozen=True)
class Completion:
    sequence: int
    command_id: str
    kind: str
    tote: str
    location: str
    ok: bool
    reason: str
    dual: bool
    cycle_seconds: float
    at: datetime | None = None


def _kind(value: Any, name: str) -> str:
    if value not in ("Store", "Retrieve"):
        raise InvalidMessage(f"{name} must be Store or Retrieve, got {value!r}")
    return str(value)


def completion_from_event(event: Any, now: datetime) -> Completion:
    """A completion from a CraneCommandCompletedEventType event."""
    success = getattr(event, "Success", None)
    if not isinstance(success, bool):
        raise InvalidMessage(f"field Success must be a Boolean, got {success!r}")
    sequence = getattr(event, "Sequence", None)
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
        raise InvalidMessage(f"field Sequence must be a positive integer, got {sequence!r}")
    dual = getattr(event, "Dual", None)
    cycle = getattr(event, "CycleSeconds", None)
    reason = getattr(event, "Reason", None)
    return Completion(
        sequence=sequence,
        command_id=event_text(event, "CommandId"),
        kind=_kind(getattr(event, "Kind", None), "field Kind"),
        tote=event_text(event, "ToteId"),
        location=event_text(event, "Location"),
        ok=success,
        reason=reason if isinstance(reason, str) else "",
        dual=dual if isinstance(dual, bool) else False,
        cycle_seconds=float(cycle) if isinstance(cycle, int | float) else 0.0,
        at=event_time(event, now),
    )


def journal_from_outputs(result: Any) -> tuple[int, list[Completion]]:
    """``Journal(Since)``: the highest sequence so far and the entries after ``Since``."""
    last, seqs, ids, kinds, totes, locs, ok, reasons, dual, cycles = method_outputs(
        result, 10, "Journal"
    )
    if not isinstance(last, int) or last < 0:
        raise InvalidMessage(f"output Last must be a non-negative integer, got {last!r}")
    seqs = [] if seqs is None else seqs
    if not isinstance(seqs, list | tuple) or not all(isinstance(v, int) for v in seqs):
        raise InvalidMessage(f"output Sequences must be a list of integers, got {seqs!r}")
    n = len(seqs)
    cycles = [] if cycles is None else cycles
    if not isinstance(cycles, list | tuple) or len(cycles) != n:
        raise InvalidMessage(f"output CycleSeconds must have {n} numbers")
    entries = [
        Completion(s, i, _kind(k, "output Kinds"), t, loc, f, r, d, float(c))
        for s, i, k, t, loc, f, r, d, c in zip(
            seqs,
            output_strings(ids, "CommandIds", n),
            output_strings(kinds, "Kinds", n),
            output_strings(totes, "ToteIds", n),
            output_strings(locs, "Locations", n),
            output_flags(ok, "Success", n),
            output_strings(reasons, "Reasons", n),
            output_flags(dual, "Dual", n),
            cycles,
            strict=True,
        )
    ]
    return last, sorted(entries, key=lambda e: e.sequence)


def contents_from_outputs(result: Any) -> dict[str, str]:
    """``Contents()``: location -> tote."""
    locations, totes = method_outputs(result, 2, "Contents")
    locs = output_strings(locations, "Locations", None)
    return dict(zip(locs, output_strings(totes, "ToteIds", len(locs)), strict=True))


def pd_input_from_value(value: Any) -> tuple[str, ...]:
    """``PdInput``: the totes waiting at the P&D input, in arrival order. A null value (no
    array, or a Bad status) is not taken for an empty list."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidMessage(f"variable PdInput must be a list of strings, got {value!r}")
    return tuple(value)
