"""The crane model: cycles take exactly routing.crane's times, queue order, idempotent command
ids, refusals, faults, blocked locations and power loss."""

from __future__ import annotations

import pytest

from routing.crane import Kinematics, dual_cycle, single_cycle, travel_time
from routing.rack import Rack
from simulators.asrs.motion import CraneModel
from simulators.asrs.motion_values import (
    Accepted,
    Command,
    CommandFinished,
    CraneState,
    Kind,
    Refusal,
    Refused,
    ToteDelivered,
    Transport,
)

RACK = Rack("A1", bays=40, levels=10)
K = Kinematics(speed_x=4.0, speed_y=1.0, accel_x=0.5, accel_y=0.3, pd_time=5.0)


def model(contents: dict[str, str] | None = None) -> CraneModel:
    return CraneModel("CR1", RACK, K, contents or {"A1-L-10-05": "T-1", "A1-R-30-08": "T-2"})


def store(cid: str, tote: str, loc: str) -> Command:
    return Command(cid, store=Transport(Kind.STORE, tote, loc))


def retrieve(cid: str, tote: str, loc: str) -> Command:
    return Command(cid, retrieve=Transport(Kind.RETRIEVE, tote, loc))


def dual(cid: str, s: tuple[str, str], r: tuple[str, str]) -> Command:
    return Command(cid, Transport(Kind.STORE, *s), Transport(Kind.RETRIEVE, *r))


def pos(loc: str) -> tuple[float, float]:
    return RACK.position(RACK.check(loc))


def finished(facts: list[object]) -> list[CommandFinished]:
    return [f for f in facts if isinstance(f, CommandFinished)]


def run_until_idle(m: CraneModel, start: float = 0.0, step: float = 0.5) -> list[object]:
    facts: list[object] = []
    t = start
    while m.state is not CraneState.IDLE or m.queue:
        t += step
        facts += m.step(t)
        assert t < 10_000
    return facts


def test_single_store_takes_the_single_cycle() -> None:
    m = model()
    m.arrive("T-9")
    assert m.submit(store("c1", "T-9", "A1-L-20-07"), 100.0) == Accepted(duplicate=False)
    cycle = single_cycle(K, pos("A1-L-20-07"))
    assert m.state is CraneState.PICKING_UP
    assert m.step(100.0 + cycle - 1e-6) == []
    [done] = finished(m.step(100.0 + cycle))
    assert done.at == pytest.approx(100.0 + cycle)
    assert done.entry.ok and done.entry.kind == "Store" and done.entry.sequence == 1
    assert done.entry.cycle_seconds == pytest.approx(cycle)
    assert m.contents["A1-L-20-07"] == "T-9" and m.pd_input == []
    assert m.state is CraneState.IDLE and m.position(200.0) == (0.0, 0.0)


def test_single_retrieve_delivers_then_finishes() -> None:
    m = model()
    m.submit(retrieve("c1", "T-2", "A1-R-30-08"), 0.0)
    cycle = single_cycle(K, pos("A1-R-30-08"))
    facts = m.step(cycle)
    assert [type(f) for f in facts] == [ToteDelivered, CommandFinished]
    assert facts[0] == ToteDelivered("T-2", "A1", pytest.approx(cycle))
    assert "A1-R-30-08" not in m.contents


def test_dual_command_takes_the_dual_cycle_and_finishes_both_halves() -> None:
    m = model()
    m.arrive("T-9")
    m.submit(dual("d1", ("T-9", "A1-L-20-07"), ("T-1", "A1-L-10-05")), 0.0)
    cycle = dual_cycle(K, pos("A1-L-20-07"), pos("A1-L-10-05"))
    assert m.step(cycle - 1e-6) == []
    facts = finished(m.step(cycle))
    assert [(f.entry.kind, f.entry.dual, f.entry.ok) for f in facts] == [
        ("Store", True, True),
        ("Retrieve", True, True),
    ]
    assert all(f.entry.cycle_seconds == pytest.approx(cycle) for f in facts)
    assert m.contents == {"A1-L-20-07": "T-9", "A1-R-30-08": "T-2"}


def test_crane_moves_both_axes_along_the_kinematics() -> None:
    m = model()
    m.submit(retrieve("c1", "T-2", "A1-R-30-08"), 0.0)
    target = pos("A1-R-30-08")
    half = travel_time(K, (0.0, 0.0), target) / 2
    m.step(half)
    assert m.state is CraneState.MOVING
    x, y = m.position(half)
    assert 0 < x < target[0] and 0 < y <= target[1]


def test_commands_run_in_order_and_the_queue_waits() -> None:
    m = model()
    m.submit(retrieve("c1", "T-1", "A1-L-10-05"), 0.0)
    m.submit(retrieve("c2", "T-2", "A1-R-30-08"), 0.0)
    assert m.current_command == "c1" and len(m.queue) == 1
    facts = finished(run_until_idle(m))
    assert [f.entry.command_id for f in facts] == ["c1", "c2"]
    first = single_cycle(K, pos("A1-L-10-05"))
    second = single_cycle(K, pos("A1-R-30-08"))
    assert facts[1].at == pytest.approx(first + second)


def test_same_command_id_is_not_executed_twice() -> None:
    m = model()
    command = retrieve("c1", "T-1", "A1-L-10-05")
    assert m.submit(command, 0.0) == Accepted(duplicate=False)
    assert m.submit(command, 1.0) == Accepted(duplicate=True)
    assert len(m.pending) == 1
    run_until_idle(m)
    assert m.submit(command, 1000.0) == Accepted(duplicate=True)  # done: still not again
    assert m.pending == [] and m.journal.last == 1
    other = m.submit(retrieve("c1", "T-2", "A1-R-30-08"), 1000.0)
    assert isinstance(other, Refused) and other.reason is Refusal.ID_REUSED


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (store("s", "T-9", "A1-L-10-05"), Refusal.OCCUPIED),
        (store("s", "T-8", "A1-L-11-05"), Refusal.NOT_AT_PD),
        (retrieve("r", "T-1", "A1-L-11-05"), Refusal.EMPTY),
        (retrieve("r", "T-2", "A1-L-10-05"), Refusal.WRONG_TOTE),
        (retrieve("r", "T-1", "A1-L-41-05"), Refusal.OUT_OF_RANGE),
        (retrieve("r", "T-1", "A2-L-10-05"), Refusal.OUT_OF_RANGE),
        (retrieve("r", "T-1", "nowhere"), Refusal.BAD_ARGUMENT),
        (retrieve("", "T-1", "A1-L-10-05"), Refusal.BAD_ARGUMENT),
        (retrieve("r", "", "A1-L-10-05"), Refusal.BAD_ARGUMENT),
        (dual("d", ("T-9", "A1-L-10-05"), ("T-1", "A1-L-10-05")), Refusal.BAD_ARGUMENT),
    ],
)
def test_refusals(command: Command, reason: Refusal) -> None:
    m = model()
    m.arrive("T-9")
    result = m.submit(command, 0.0)
    assert isinstance(result, Refused) and result.reason is reason
    assert m.pending == [] and command.command_id not in m.known


def test_queued_commands_reserve_their_locations_and_totes() -> None:
    m = model()
    m.arrive("T-9")
    assert isinstance(m.submit(store("s1", "T-9", "A1-L-11-05"), 0.0), Accepted)
    again = m.submit(store("s2", "T-9", "A1-L-12-05"), 0.0)
    assert isinstance(again, Refused) and again.reason is Refusal.NOT_AT_PD
    m.arrive("T-8")
    taken = m.submit(store("s3", "T-8", "A1-L-11-05"), 0.0)
    assert isinstance(taken, Refused) and taken.reason is Refusal.OCCUPIED
    assert isinstance(m.submit(retrieve("r1", "T-1", "A1-L-10-05"), 0.0), Accepted)
    twice = m.submit(retrieve("r2", "T-1", "A1-L-10-05"), 0.0)
    assert isinstance(twice, Refused) and twice.reason is Refusal.EMPTY


def test_fault_stops_the_crane_and_resumes_the_command_after_clearing() -> None:
    m = model()
    m.submit(retrieve("c1", "T-2", "A1-R-30-08"), 0.0)
    m.submit(retrieve("c2", "T-1", "A1-L-10-05"), 0.0)
    m.step(3.0)
    m.set_fault("drive overload", 3.0)
    stopped = m.position(3.0)
    assert m.state is CraneState.FAULT and m.position(50.0) == stopped
    assert m.step(500.0) == []
    refused = m.submit(retrieve("c3", "T-1", "A1-L-10-05"), 500.0)
    assert isinstance(refused, Refused) and refused.reason is Refusal.FAULT
    assert m.clear_fault(500.0)
    facts = finished(run_until_idle(m, start=500.0))
    assert [(f.entry.command_id, f.entry.ok) for f in facts] == [("c1", True), ("c2", True)]
    assert not m.clear_fault(900.0)


def test_blocked_location_refuses_new_and_fails_queued_commands() -> None:
    m = model()
    m.submit(retrieve("c1", "T-1", "A1-L-10-05"), 0.0)
    m.submit(retrieve("c2", "T-2", "A1-R-30-08"), 0.0)
    m.set_blocked("A1-R-30-08", True)
    refused = m.submit(retrieve("c3", "T-2", "A1-R-30-08"), 0.0)
    assert isinstance(refused, Refused) and refused.reason is Refusal.BLOCKED
    facts = finished(run_until_idle(m))
    assert [(f.entry.command_id, f.entry.ok, f.entry.reason) for f in facts] == [
        ("c1", True, ""),
        ("c2", False, "location blocked"),
    ]
    assert m.contents == {"A1-R-30-08": "T-2"}


def test_dual_with_a_blocked_half_runs_the_other_half_alone() -> None:
    m = model()
    m.arrive("T-9")
    m.submit(retrieve("c0", "T-2", "A1-R-30-08"), 0.0)
    m.submit(dual("d1", ("T-9", "A1-L-20-07"), ("T-1", "A1-L-10-05")), 0.0)
    m.set_blocked("A1-L-10-05", True)
    facts = finished(run_until_idle(m))
    outcome = [(f.entry.kind, f.entry.ok, f.entry.dual) for f in facts[1:]]
    assert outcome == [("Store", True, False), ("Retrieve", False, False)]
    assert m.contents["A1-L-20-07"] == "T-9"


def test_power_loss_fails_pending_commands_and_sets_the_load_down() -> None:
    m = model()
    m.arrive("T-9")
    m.submit(store("s1", "T-9", "A1-L-20-07"), 0.0)
    m.submit(retrieve("r1", "T-1", "A1-L-10-05"), 0.0)
    m.step(K.pd_time + 0.1)  # the store tote is on the crane
    assert m.load is not None and m.load.tote == "T-9"
    after = model()
    facts = after.restore(m.contents, m.pd_input, m.load, m.pending, m.known.values(), 0, [], 10.0)
    assert [(f.entry.command_id, f.entry.ok, f.entry.reason) for f in finished(facts)] == [
        ("s1", False, "power loss"),
        ("r1", False, "power loss"),
    ]
    assert after.pd_input == ["T-9"] and after.load is None
    assert after.submit(store("s1", "T-9", "A1-L-20-07"), 11.0) == Accepted(duplicate=True)
    assert after.pending == []
