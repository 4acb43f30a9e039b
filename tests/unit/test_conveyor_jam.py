"""Jams on the conveyor loop: a jam holds its zone and the zones before it, the rest runs on.

Reference line: 24 zones of 1.5 m (36 m), 2 m/s, min_gap 0.8 m, scanner at the end of Z05
(7.5 m), divert D1 to CH-DHL at the end of Z08 (12 m), jam_hold_zones 2.
"""

from __future__ import annotations

import pytest

from kernel.config.model import Conveyor
from simulators.conveyor.facts import DivertFinished, ItemRead, ZoneMotionChanged
from simulators.conveyor.motion import LoopModel
from tests.unit.conveyor_loop import run


def positions(model: LoopModel, *items: str) -> list[float | None]:
    return [model.item_position(i) for i in items]


def running(model: LoopModel) -> set[str]:
    return {z for z in model.zone_ids if model.zone_running(z)}


def test_a_jam_holds_its_zone_and_the_zones_before_it(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    facts = model.set_jammed("Z10", True, 0.0)
    assert [f for f in facts if isinstance(f, ZoneMotionChanged)] == [
        ZoneMotionChanged(z, False, 0.0) for z in ("Z08", "Z09", "Z10")
    ]
    assert running(model) == set(model.zone_ids) - {"Z08", "Z09", "Z10"}
    facts = model.set_jammed("Z10", False, 1.0)
    assert [f for f in facts if isinstance(f, ZoneMotionChanged)] == [
        ZoneMotionChanged(z, True, conveyor.belt_speed) for z in ("Z08", "Z09", "Z10")
    ]
    assert running(model) == set(model.zone_ids)


def test_a_jam_at_the_start_of_the_loop_holds_the_last_zones(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    model.set_jammed("Z01", True, 0.0)
    assert set(model.zone_ids) - running(model) == {"Z23", "Z24", "Z01"}


def test_downstream_items_move_on_and_divert_while_upstream_ones_stop(
    conveyor: Conveyor,
) -> None:
    model = LoopModel(conveyor)
    model.set_jammed("Z06", True, 0.0)  # holds Z04..Z06: 4.5 m to 9 m
    upstream, _ = model.induct("UP", "Z01", 0.0)  # at 0 m, runs into the held section
    held, _ = model.induct("HELD", "Z05", 0.0)  # at 6 m, inside it
    downstream, _ = model.induct("DOWN", "Z07", 0.0)  # at 9 m, past it
    model.request_divert(downstream, "CH-DHL")
    facts = run(model, 1.0)
    late, _ = model.induct("LATE", "Z01", 1.0)  # upstream is at 2 m: room at 0 m
    facts += run(model, 20.0)
    (done,) = [f for f in facts if isinstance(f, DivertFinished)]
    assert (done.item_id, done.success, done.at) == (downstream, True, pytest.approx(1.5))
    assert positions(model, upstream, held, late) == pytest.approx([4.5, 6.0, 3.7])
    assert model.zone_item("Z04") == upstream  # its front stands at the held entry
    assert not [f for f in facts if isinstance(f, ItemRead) and f.item_id == held]


def test_items_queue_at_min_gap_behind_the_held_entry(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    model.set_jammed("Z10", True, 0.0)  # entry of the held section at 10.5 m
    items = [model.induct(f"T{i}", "Z01", 0.0)[0] for i in range(4)]
    run(model, 30.0)
    assert positions(model, *items) == pytest.approx([10.5, 9.7, 8.9, 8.1])


def test_clearing_the_jam_moves_everything_again_with_gaps_kept(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    model.set_jammed("Z10", True, 0.0)
    items = [model.induct(f"T{i}", "Z01", 0.0)[0] for i in range(3)]
    held, _ = model.induct("H", "Z09", 0.0)  # at 12 m, inside the held section
    run(model, 30.0)
    model.set_jammed("Z10", False, 30.0)
    run(model, 30.5)
    assert positions(model, *items, held) == pytest.approx([11.5, 10.7, 9.9, 13.0])


def test_two_jams_hold_two_sections(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    model.set_jammed("Z10", True, 0.0)  # Z08..Z10, entry 10.5 m
    model.set_jammed("Z20", True, 0.0)  # Z18..Z20, entry 25.5 m
    first, _ = model.induct("A", "Z01", 0.0)
    second, _ = model.induct("B", "Z12", 0.0)  # at 16.5 m
    third, _ = model.induct("C", "Z09", 0.0)  # at 12 m, held
    run(model, 20.0)
    assert positions(model, first, second, third) == pytest.approx([10.5, 25.5, 12.0])
    model.set_jammed("Z20", False, 20.0)
    run(model, 21.0)
    assert positions(model, first, second, third) == pytest.approx([10.5, 27.5, 12.0])
    assert set(model.zone_ids) - running(model) == {"Z08", "Z09", "Z10"}


def test_overlapping_jams_hold_their_union(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    model.set_jammed("Z10", True, 0.0)
    model.set_jammed("Z11", True, 0.0)
    assert set(model.zone_ids) - running(model) == {"Z08", "Z09", "Z10", "Z11"}
    model.set_jammed("Z10", False, 0.0)
    assert set(model.zone_ids) - running(model) == {"Z09", "Z10", "Z11"}


def test_a_unit_not_in_execute_stops_every_zone(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    model.set_jammed("Z10", True, 0.0)
    item, _ = model.induct("A", "Z12", 0.0)
    facts = model.set_producing(False, 1.0)
    assert len([f for f in facts if isinstance(f, ZoneMotionChanged)]) == 21
    assert running(model) == set()
    model.step(50.0)
    assert model.item_position(item) == pytest.approx(18.5)
    model.set_producing(True, 50.0)
    assert set(model.zone_ids) - running(model) == {"Z08", "Z09", "Z10"}


def scenario(conveyor: Conveyor, step: float) -> tuple[list[object], list[float | None]]:
    """Items queueing at a held entry that is a divert point (the end of Z08), the front one
    leaving there, the others closing up; then the jam clears."""
    model = LoopModel(conveyor)
    items = [model.induct(f"T{i}", "Z01", 0.0)[0] for i in range(4)]
    ahead, _ = model.induct("AHEAD", "Z07", 0.0)
    facts: list[object] = list(model.set_jammed("Z11", True, 0.0))  # Z09..Z11, entry 12 m
    facts += run(model, 3.0, 0.1)  # same placement on the belt in both runs
    model.request_divert(items[0], "CH-DHL")
    model.request_divert(items[2], "CH-DHL")
    model.set_chute_full("CH-UPS", True, 3.0)
    model.request_divert(ahead, "CH-UPS")  # refused at the end of Z09... if it got there
    facts += run(model, 20.0, step)
    facts += model.set_jammed("Z11", False, 20.0)
    facts += run(model, 60.0, step)
    timed = [f for f in facts if isinstance(f, ItemRead | DivertFinished)]
    return timed, positions(model, *items, ahead)


def test_step_length_does_not_change_the_outcome_with_a_jam(conveyor: Conveyor) -> None:
    fine_facts, fine_pos = scenario(conveyor, 0.01)
    coarse_facts, coarse_pos = scenario(conveyor, 7.0)
    assert [type(f) for f in fine_facts] == [type(f) for f in coarse_facts]
    for a, b in zip(fine_facts, coarse_facts, strict=True):
        assert isinstance(a, ItemRead | DivertFinished)
        assert isinstance(b, ItemRead | DivertFinished)
        assert (a.item_id, a.at) == (b.item_id, pytest.approx(b.at))
    assert fine_pos == pytest.approx(coarse_pos)
    diverted = [f for f in fine_facts if isinstance(f, DivertFinished) and f.success]
    assert len(diverted) == 2


def test_the_item_behind_a_diverted_one_closes_up_to_the_held_entry(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    model.set_jammed("Z11", True, 0.0)  # entry at 12 m, where D1 fires
    first, _ = model.induct("A", "Z07", 0.0)  # 9 m
    model.step(0.4)
    second, _ = model.induct("B", "Z07", 0.4)  # 9 m, 0.8 m behind
    model.request_divert(first, "CH-DHL")
    facts = model.step(10.0)  # one long step
    (done,) = [f for f in facts if isinstance(f, DivertFinished)]
    assert done.success and done.at == pytest.approx(1.5)
    assert model.item_position(second) == pytest.approx(12.0)
