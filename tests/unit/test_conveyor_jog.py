"""Jogging one zone of the conveyor loop outside production (commissioning).

Reference line: 24 zones of 1.5 m (36 m), 2 m/s, min_gap 0.8 m, scanner at the end of Z05
(7.5 m), divert D1 to CH-DHL at the end of Z08 (12 m).
"""

from __future__ import annotations

import pytest

from kernel.config.model import Conveyor
from simulators.conveyor.facts import DivertFinished, ItemRead, ZoneMotionChanged
from simulators.conveyor.motion import MAX_JOG_SECONDS, JogRefused, LoopModel, UnknownName
from tests.unit.conveyor_loop import run


def stopped(conveyor: Conveyor, *inducts: tuple[str, str]) -> tuple[LoopModel, list[str]]:
    """A loop with totes placed at the start of their zones, then the unit out of Execute."""
    model = LoopModel(conveyor)
    items = [model.induct(tote, zone, 0.0)[0] for tote, zone in inducts]
    model.set_producing(False, 0.0)
    return model, items


def motion(facts: list[object]) -> list[ZoneMotionChanged]:
    return [f for f in facts if isinstance(f, ZoneMotionChanged)]


def test_a_jog_runs_one_zone_at_its_speed_then_stops_it(conveyor: Conveyor) -> None:
    model, [item] = stopped(conveyor, ("T1", "Z03"))  # Z03 starts at 3.0 m
    facts = model.jog("Z03", 0.5, 1.0, 0.0)
    assert motion(facts) == [ZoneMotionChanged("Z03", True, 0.5)]
    assert {z for z in model.zone_ids if model.zone_running(z)} == {"Z03"}
    facts = run(model, 1.0)
    assert model.item_position(item) == pytest.approx(3.5)  # 0.5 m/s for 1 s
    assert motion(facts) == [ZoneMotionChanged("Z03", False, 0.0)]
    assert not model.zone_running("Z03")
    run(model, 5.0)
    assert model.item_position(item) == pytest.approx(3.5)  # nothing moves after the jog


def test_jogged_items_stop_at_the_zone_end_and_keep_the_gap(conveyor: Conveyor) -> None:
    # T1 at the start of Z05 (6.0 m), T2 at the start of Z04 (4.5 m)
    model, [first, second] = stopped(conveyor, ("T1", "Z05"), ("T2", "Z04"))
    model.jog("Z04", 2.0, 5.0, 0.0)
    run(model, 5.0)
    assert model.item_position(second) == pytest.approx(6.0 - 0.8)  # min_gap behind T1
    facts = model.jog("Z05", 2.0, 10.0, 5.0)
    facts += run(model, 15.0)
    # T1 stops just short of Z05's end, where the scanner reads: no scan, no divert
    assert model.item_position(first) == pytest.approx(7.5, abs=1e-5)
    assert model.item_position(first) < 7.5
    assert not [f for f in facts if isinstance(f, ItemRead | DivertFinished)]
    # T2 is in Z04, which does not run now: it stays there
    assert model.item_position(second) == pytest.approx(5.2)


def test_a_jogged_item_is_read_once_production_starts(conveyor: Conveyor) -> None:
    model, [item] = stopped(conveyor, ("T1", "Z05"))
    model.jog("Z05", 2.0, 2.0, 0.0)
    run(model, 2.0)
    facts = model.set_producing(True, 2.0) + run(model, 2.5)
    reads = [f for f in facts if isinstance(f, ItemRead)]
    assert [r.item_id for r in reads] == [item]


def test_jog_is_refused_while_producing_or_jammed(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    with pytest.raises(JogRefused, match="Execute"):
        model.jog("Z03", 1.0, 1.0, 0.0)
    model.set_producing(False, 0.0)
    model.set_jammed("Z03", True, 0.0)
    with pytest.raises(JogRefused, match="jammed"):
        model.jog("Z03", 1.0, 1.0, 0.0)
    model.jog("Z04", 1.0, 1.0, 0.0)  # another zone may run


@pytest.mark.parametrize(
    ("speed", "seconds", "match"),
    [
        (0.0, 1.0, "speed"),
        (-1.0, 1.0, "speed"),
        (2.5, 1.0, "speed"),  # above the belt speed of 2 m/s
        (1.0, 0.0, "duration"),
        (1.0, MAX_JOG_SECONDS + 1, "duration"),
    ],
)
def test_jog_out_of_range_is_refused_and_changes_nothing(
    conveyor: Conveyor, speed: float, seconds: float, match: str
) -> None:
    model, _ = stopped(conveyor, ("T1", "Z03"))
    with pytest.raises(ValueError, match=match):
        model.jog("Z03", speed, seconds, 0.0)
    assert not any(model.zone_running(z) for z in model.zone_ids)


def test_unknown_zone(conveyor: Conveyor) -> None:
    model, _ = stopped(conveyor)
    with pytest.raises(UnknownName):
        model.jog("Z99", 1.0, 1.0, 0.0)


def test_a_packml_state_change_ends_the_jog(conveyor: Conveyor) -> None:
    model, [item] = stopped(conveyor, ("T1", "Z03"))
    model.jog("Z03", 0.5, 10.0, 0.0)
    run(model, 1.0)
    facts = model.set_producing(False, 1.0)  # e.g. Stop while held
    assert motion(facts) == [ZoneMotionChanged("Z03", False, 0.0)]
    run(model, 3.0)
    assert model.item_position(item) == pytest.approx(3.5)
