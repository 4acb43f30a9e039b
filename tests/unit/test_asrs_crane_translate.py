"""The cranes adapter's boundary: completion events and Journal/Contents outputs checked once."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from devices.errors import InvalidMessage
from devices.opcua.crane_model import (
    completion_from_event,
    contents_from_outputs,
    journal_from_outputs,
)

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
