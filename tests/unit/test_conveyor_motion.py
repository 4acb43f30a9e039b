"""The conveyor loop's motion model, driven by explicit line times (no server, no clock)."""

from __future__ import annotations

import pytest

from kernel.config.model import Conveyor
from simulators.conveyor.facts import ChuteChanged, DivertFinished, ItemRead, ZoneChanged
from simulators.conveyor.motion import LoopModel, UnknownName
from tests.unit.conveyor_loop import run


def reads(facts: list[object]) -> list[ItemRead]:
    return [f for f in facts if isinstance(f, ItemRead)]


def diverts(facts: list[object]) -> list[DivertFinished]:
    return [f for f in facts if isinstance(f, DivertFinished)]


def test_scan_happens_when_the_front_leaves_the_scanner_zone(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    item, _ = model.induct("T1", "Z01", 0.0)
    # scanner reads as items leave Z05: 5 zones x 1.5 m = 7.5 m at 2 m/s = 3.75 s
    facts = run(model, 10.0)
    (read,) = reads(facts)
    assert read.item_id == item
    assert read.codes == ("T1",)
    assert read.at == pytest.approx(3.75)


def test_step_length_does_not_change_crossing_times(conveyor: Conveyor) -> None:
    fine, coarse = LoopModel(conveyor), LoopModel(conveyor)
    fine.induct("T1", "Z03", 0.0)
    coarse.induct("T1", "Z03", 0.0)
    assert [r.at for r in reads(run(fine, 60.0, 0.01))] == pytest.approx(
        [r.at for r in reads(run(coarse, 60.0, 7.0))]
    )


def test_an_item_without_divert_recirculates_and_is_scanned_again(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    model.induct("T1", "Z01", 0.0)
    loop_seconds = model.length / conveyor.belt_speed
    times = [r.at for r in reads(run(model, 3.75 + 2 * loop_seconds + 0.1))]
    assert times == pytest.approx([3.75, 3.75 + loop_seconds, 3.75 + 2 * loop_seconds])


def test_requested_divert_sends_the_item_into_its_chute(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    item, _ = model.induct("T1", "Z01", 0.0)
    model.request_divert(item, "CH-UPS")  # D2 at the end of Z09: 13.5 m -> 6.75 s
    facts = run(model, 20.0)
    (done,) = diverts(facts)
    assert (done.divert_id, done.chute_id, done.success) == ("D2", "CH-UPS", True)
    assert done.at == pytest.approx(6.75)
    assert model.chute("CH-UPS").count == 1
    assert model.item_position(item) is None
    assert len(reads(facts)) == 1  # left the loop, never scanned again


def test_full_or_disabled_chute_refuses_and_the_item_rides_on(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    a, _ = model.induct("A", "Z01", 0.0)
    model.set_chute_full("CH-DHL", True, 0.0)
    model.request_divert(a, "CH-DHL")
    facts = run(model, 10.0)
    (refused,) = diverts(facts)
    assert not refused.success
    assert model.item_position(a) is not None
    assert model.chute("CH-DHL").count == 0

    model.set_chute_full("CH-DHL", False, model.now)
    model.set_chute_enabled("CH-DHL", False, model.now)
    model.request_divert(a, "CH-DHL")
    (refused_again,) = diverts(run(model, model.now + model.length / 2.0))
    assert not refused_again.success


def test_chute_drains_one_item_per_drain_interval(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    item, _ = model.induct("T1", "Z01", 0.0)
    model.request_divert(item, "CH-DHL")  # D1 at 12 m -> 6 s; drain 15 s
    run(model, 6.5)
    assert model.chute("CH-DHL") == ChuteChanged("CH-DHL", 1, False, True, 1)
    run(model, 20.9)
    assert model.chute("CH-DHL").count == 1
    run(model, 21.1)
    assert model.chute("CH-DHL").count == 0
    assert model.chute("CH-DHL").delivered == 1


def test_induction_waits_for_min_gap(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    first, _ = model.induct("A", "Z01", 0.0)
    second, _ = model.induct("B", "Z01", 0.0)
    assert model.item_position(first) == 0.0
    assert model.item_position(second) is None  # waiting: the first is still on the spot
    model.step(0.2)  # 0.4 m moved, gap 0.8 m not yet free
    assert model.item_position(second) is None
    model.step(0.4)  # 0.8 m moved
    assert model.item_position(second) == 0.0
    assert model.item_position(first) == pytest.approx(0.8)


def test_photo_eyes_report_changes_only(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    item, facts = model.induct("T1", "Z01", 0.0)
    assert facts == [ZoneChanged("Z01", True, item)]
    assert model.step(0.5) == []  # still in Z01
    assert model.step(1.0) == [ZoneChanged("Z01", False, ""), ZoneChanged("Z02", True, item)]


def test_no_read_rate_one_gives_empty_codes(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    model.rates.no_read = 1.0
    model.induct("T1", "Z01", 0.0)
    (read,) = reads(run(model, 5.0))
    assert read.codes == () and read.no_read and not read.multi_read


def test_stopped_belt_does_not_move(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    item, _ = model.induct("T1", "Z01", 0.0)
    model.set_producing(False, 1.0)
    model.step(100.0)
    assert model.item_position(item) == pytest.approx(2.0)
    model.set_jammed("Z02", True, 100.0)
    model.set_producing(True, 100.0)
    model.step(110.0)
    assert model.item_position(item) == pytest.approx(2.0)


def test_unknown_names_are_refused(conveyor: Conveyor) -> None:
    model = LoopModel(conveyor)
    item, _ = model.induct("T1", "Z01", 0.0)
    with pytest.raises(UnknownName):
        model.request_divert(item, "NO-SUCH-CHUTE")
    with pytest.raises(UnknownName):
        model.request_divert("NO-SUCH-ITEM", "CH-DHL")
    with pytest.raises(UnknownName):
        model.induct("T2", "NO-SUCH-ZONE", 0.0)
