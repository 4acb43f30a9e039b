"""The cranes adapter's boundary: completion events, Journal/Contents outputs and the P&D
input checked once."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from devices.base import DeviceEvent, TotesAtPdInput
from devices.errors import InvalidMessage
from devices.opcua.cranes.adapter import OpcUaCranes
from devices.opcua.cranes.model import (
    completion_from_event,
    contents_from_outputs,
    journal_from_outputs,
    pd_input_from_value,
)
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def event(**changes: object) -> SimpleNamespace:
    fields: dict[str, object] = {
        "CommandId": "c-1",
        "ToteId": "T-1",
        "Location": "A1-L-01-01",
        "Kind": "Store",
        "Success": True,
        "Reason": "",
        "Sequence": 3,
        "Dual": False,
        "CycleSeconds": 21.5,
        "Time": NOW,
    }
    fields.update(changes)
    return SimpleNamespace(**fields)


def test_completion_from_event() -> None:
    c = completion_from_event(event(), NOW)
    assert (c.command_id, c.kind, c.sequence, c.ok, c.cycle_seconds) == (
        "c-1",
        "Store",
        3,
        True,
        21.5,
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"Success": None},
        {"Sequence": 0},
        {"Sequence": "3"},
        {"Kind": "Move"},
        {"CommandId": ""},
        {"ToteId": None},
    ],
)
def test_malformed_completion_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidMessage):
        completion_from_event(event(**bad), NOW)


def test_journal_from_outputs() -> None:
    out = [
        5,
        [5, 4],
        ["c-5", "c-4"],
        ["Retrieve", "Store"],
        ["T-5", "T-4"],
        ["A1-L-01-02", "A1-L-01-01"],
        [False, True],
        ["power loss", ""],
        [False, True],
        [0.0, 30.0],
    ]
    last, entries = journal_from_outputs(out)
    assert last == 5 and [e.sequence for e in entries] == [4, 5]
    assert entries[1].reason == "power loss" and not entries[1].ok


@pytest.mark.parametrize(
    "out",
    [
        [1, [1], ["c"], ["Store"], ["T"], ["A1-L-01-01"], [True], [""], [False]],  # 9 outputs
        [-1, [], [], [], [], [], [], [], [], []],
        [1, [1], ["c"], ["Store"], ["T"], ["A1-L-01-01"], [True], [""], [False], []],
        [1, [1], ["c"], ["Fly"], ["T"], ["A1-L-01-01"], [True], [""], [False], [1.0]],
    ],
)
def test_malformed_journal_is_refused(out: list[object]) -> None:
    with pytest.raises(InvalidMessage):
        journal_from_outputs(out)


def test_contents_from_outputs() -> None:
    assert contents_from_outputs([["A1-L-01-01"], ["T-1"]]) == {"A1-L-01-01": "T-1"}
    with pytest.raises(InvalidMessage):
        contents_from_outputs([["A1-L-01-01"], []])


def test_pd_input_from_value() -> None:
    assert pd_input_from_value(["T-1", "T-2"]) == ("T-1", "T-2")
    assert pd_input_from_value([]) == ()
    for bad in (None, "T-1", 3, ["T-1", 2]):
        with pytest.raises(InvalidMessage, match="PdInput must be a list of strings"):
            pd_input_from_value(bad)


async def test_bad_pd_input_values_are_dropped_with_one_warning(
    reference_line: LineConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """The adapter's handling of PdInput values (the seam ``consume`` and ``read_levels``
    call): malformed ones are counted and dropped, warned about once; a list that repeats the
    last one reported for the aisle is not reported again."""
    caplog.set_level(logging.DEBUG, logger="devices.opcua.cranes")
    metrics = Metrics()
    cranes = OpcUaCranes(reference_line, ManualClock(NOW), metrics, "opc.tcp://127.0.0.1:1/")
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    assert cranes._incoming.pd_input("A1", 42) is None
    assert cranes._incoming.pd_input("A1", ["T-1", None]) is None
    assert cranes._incoming.pd_input("A1", ["T-1"]) == ("T-1",)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [(r.getMessage(), getattr(r, "crane", None)) for r in warned] == [
        ("invalid P&D input dropped", "CR1")
    ]
    assert metrics.registry.get_sample_value("linectl_opcua_events_total", {"kind": "invalid"}) == 2

    for totes in [("T-1",), ("T-1",), (), ("T-1",)]:
        await cranes._incoming.emit_pd_input("A1", totes, events)
    reported = [events.get_nowait() for _ in range(events.qsize())]
    assert reported == [
        TotesAtPdInput("A1", "CR1", ("T-1",), NOW),
        TotesAtPdInput("A1", "CR1", (), NOW),
        TotesAtPdInput("A1", "CR1", ("T-1",), NOW),
    ]
