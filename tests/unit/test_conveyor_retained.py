"""The conveyor's tracking table, divert journal and retained state, without a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernel.config.model import Conveyor
from simulators.conveyor.journal import DivertJournal
from simulators.conveyor.motion import LoopModel, TrackedItem
from simulators.conveyor.packml import PackMLState
from simulators.conveyor.retained import (
    RetainedState,
    RetainedStateError,
    read_state,
    write_state,
)


def busy_loop(conveyor: Conveyor) -> LoopModel:
    """Two diverts done (one refused), one item on the belt with a request, one waiting."""
    model = LoopModel(conveyor)
    a, _ = model.induct("A", "Z01", 0.0)
    b, _ = model.induct("B", "Z03", 0.0)
    model.request_divert(a, "CH-DHL")
    model.set_chute_full("CH-UPS", True, 0.0)
    model.request_divert(b, "CH-UPS")
    model.step(6.5)  # A left at 6 s, B refused at 5.25 s
    c, _ = model.induct("C", "Z05", 6.5)
    model.induct("D", "Z05", 6.5)  # waits behind C
    model.request_divert(c, "CH-GLS")
    return model


def test_tracking_names_zone_belt_and_request(conveyor: Conveyor) -> None:
    model = busy_loop(conveyor)
    b = model.tracking()[0].item_id
    assert [(t.tote_id, t.zone_id, t.on_belt, t.requested) for t in model.tracking()] == [
        ("B", "Z11", True, ""),  # 3 m + 13 m = 16 m
        ("C", "Z05", True, "CH-GLS"),
        ("D", "Z05", False, ""),
    ]
    assert model.tracking()[0] == TrackedItem(b, "B", "Z11", True, "")


def test_the_journal_numbers_diverts_and_answers_from_a_sequence(conveyor: Conveyor) -> None:
    model = busy_loop(conveyor)
    entries = model.journal.since(0)
    assert [(e.sequence, e.tote_id, e.chute_id, e.ok) for e in entries] == [
        (1, "B", "CH-UPS", False),
        (2, "A", "CH-DHL", True),
    ]
    assert model.journal.since(1) == entries[1:]
    assert model.journal.since(2) == []


def test_the_journal_keeps_the_last_entries_of_its_ring() -> None:
    journal = DivertJournal(size=3)
    for i in range(5):
        journal.record(f"I{i}", f"T{i}", "CH", True)
    assert journal.last == 5
    assert [e.sequence for e in journal.since(0)] == [3, 4, 5]  # older ones are gone
    assert [e.sequence for e in journal.since(3)] == [4, 5]


def test_retained_state_round_trips_through_a_file(conveyor: Conveyor, tmp_path: Path) -> None:
    model = busy_loop(conveyor)
    path = tmp_path / "state.json"
    state = RetainedState(conveyor="C1", packml_state=PackMLState.HELD, loop=model.retained())
    write_state(path, state)
    loaded = read_state(path)
    assert loaded is not None and loaded.packml_state is PackMLState.HELD

    again = LoopModel(conveyor, start=100.0)
    again.restore(loaded.loop, 100.0)
    before = [(t.item_id, t.tote_id, t.zone_id, t.on_belt) for t in model.tracking()]
    assert [(t.item_id, t.tote_id, t.zone_id, t.on_belt) for t in again.tracking()] == before
    assert all(t.requested == "" for t in again.tracking())  # requests are not retained
    assert again.journal.since(0) == model.journal.since(0)
    assert again.chute("CH-DHL") == model.chute("CH-DHL")
    assert again.induct("E", "Z12", 100.0)[0] == "C1-000005"


def test_a_missing_file_is_no_state_and_a_broken_one_a_clear_error(tmp_path: Path) -> None:
    assert read_state(tmp_path / "absent.json") is None
    with pytest.raises(RetainedStateError, match="does not exist"):
        read_state(tmp_path / "no-such-dir" / "state.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(RetainedStateError, match="not a valid conveyor state file"):
        read_state(broken)
    broken.write_text(json.dumps({"format": 1, "conveyor": "C1", "packml_state": "Dancing"}))
    with pytest.raises(RetainedStateError, match="not a valid conveyor state file"):
        read_state(broken)


def test_state_that_does_not_fit_the_loop_is_refused(conveyor: Conveyor, tmp_path: Path) -> None:
    loop = busy_loop(conveyor).retained()
    waiting = [w.model_copy(update={"zone": "Z99"}) for w in loop.waiting]
    with pytest.raises(ValueError, match="unknown zone"):
        LoopModel(conveyor).restore(loop.model_copy(update={"waiting": waiting}), 0.0)
    items = [i.model_copy(update={"position": 99.0}) for i in loop.items]
    with pytest.raises(ValueError, match="off the loop"):
        LoopModel(conveyor).restore(loop.model_copy(update={"items": items}), 0.0)
