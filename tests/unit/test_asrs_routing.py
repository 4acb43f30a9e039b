"""AS/RS decisions: storage policies, aisle choice, retrieve sequencing, dual-command pairing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.asrs import (
    AisleGeometry,
    AisleLoad,
    ClassBasedStorage,
    CommandKind,
    RetrieveRequest,
    StoreRequest,
    aisle_for_store,
    fallback_order,
    location_classes,
    next_command,
    plan_commands,
    ranked_locations,
    sequence_retrieves,
    sku_classes,
    storage_policy,
)
from routing.crane import Kinematics, dual_cycle, single_cycle
from routing.rack import BadLocation, Rack

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
CRANE = Kinematics(4.0, 1.0, pd_time=5.0)
A1 = AisleGeometry(Rack("A1", 10, 4), CRANE)
A2 = AisleGeometry(Rack("A2", 10, 4), CRANE)
ALL_A1 = frozenset(loc.id for loc in A1.rack.locations())
ALL = ALL_A1 | {loc.id for loc in A2.rack.locations()}

PROPS = settings(max_examples=150, deadline=None, derandomize=True)


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


# --- storage ----------------------------------------------------------------------------------


def test_ranked_locations_nearest_first_ties_by_id() -> None:
    ranked = ranked_locations(A1)
    assert ranked[:2] == ("A1-L-01-01", "A1-R-01-01")  # both sides are as near
    times = [A1.travel_from_pd(loc) for loc in ranked]
    assert times == sorted(times)
    assert set(ranked) == ALL_A1


def test_closest_open_takes_the_nearest_open_location() -> None:
    policy = storage_policy("closest_open", [A1])
    rng = random.Random(1)
    assert policy.choose(ALL_A1, "S1", {}, rng) == "A1-L-01-01"
    assert policy.choose(ALL_A1 - {"A1-L-01-01"}, "S1", {}, rng) == "A1-R-01-01"
    # x is 4x faster than the hoist here: the second bay at level 1 beats level 2 of bay 1
    assert A1.travel_from_pd("A1-L-02-01") < A1.travel_from_pd("A1-L-01-02")
    assert policy.choose({"A1-L-01-02", "A1-L-02-01"}, "S1", {}, rng) == "A1-L-02-01"
    assert policy.choose(set(), "S1", {}, rng) is None
    assert policy.choose({"A9-L-01-01"}, "S1", {}, rng) is None  # not an aisle of the policy


def test_random_is_seeded_and_spreads_over_the_open_locations() -> None:
    policy = storage_policy("random", [A1, A2])
    picks = [policy.choose(ALL, "S1", {}, random.Random(seed)) for seed in range(200)]
    assert picks == [policy.choose(ALL, "S1", {}, random.Random(seed)) for seed in range(200)]
    assert len(set(picks)) > 100 and {p[:2] for p in picks if p} == {"A1", "A2"}
    assert policy.choose({"A2-R-10-04"}, "S1", {}, random.Random(3)) == "A2-R-10-04"
    assert policy.choose(frozenset(), "S1", {}, random.Random(3)) is None


def test_location_classes_split_each_aisle_nearest_first() -> None:
    classes = location_classes([A1, A2], [0.2, 0.3, 0.5])
    assert [len(c) for c in classes] == [32, 48, 80]  # 80 locations per aisle: 16, 24, 40
    ranked = ranked_locations(A1)
    assert [loc for loc in classes[0] if loc.startswith("A1")] == list(ranked[:16])
    assert set().union(*map(set, classes)) == ALL
    # shares that do not add up to 1 are normalised
    assert [len(c) for c in location_classes([A1], [1, 1])] == [40, 40]


def test_sku_classes_by_cumulative_turnover() -> None:
    turnover = {"S1": 500, "S2": 300, "S3": 100, "S4": 60, "S5": 40, "S6": 0}
    classes = sku_classes(turnover, [0.8, 0.15, 0.05])
    # S1 starts at 0 %, S2 at 50 %: A; S3 at 80 %, S4 at 90 %: B; S5 at 96 %: C
    assert classes == {"S1": 0, "S2": 0, "S3": 1, "S4": 1, "S5": 2}
    assert sku_classes({}, [0.8, 0.2]) == {}
    assert sku_classes({"B": 5, "A": 5}, [0.5, 0.5]) == {"A": 0, "B": 1}  # ties by SKU


def test_class_based_puts_fast_movers_near_the_pd_point() -> None:
    policy = storage_policy("class_based", [A1], [0.2, 0.3, 0.5], [0.8, 0.15, 0.05])
    assert isinstance(policy, ClassBasedStorage)
    a, b, c = (set(x) for x in policy.classes)
    turnover = {"FAST": 900, "MID": 80, "SLOW": 20}
    rng = random.Random(4)
    assert policy.choose(ALL_A1, "FAST", turnover, rng) in a
    assert policy.choose(ALL_A1, "MID", turnover, rng) in b
    assert policy.choose(ALL_A1, "SLOW", turnover, rng) in c
    assert policy.choose(ALL_A1, "NEW", turnover, rng) in c  # no turnover yet: last class
    # class A full: the next class outward; A and B full: C; only A open for a C SKU: inward
    assert policy.choose(ALL_A1 - a, "FAST", turnover, rng) in b
    assert policy.choose(c, "FAST", turnover, rng) in c
    assert policy.choose(a, "SLOW", turnover, rng) in a
    assert policy.choose(frozenset(), "FAST", turnover, rng) is None


def test_fallback_order() -> None:
    assert fallback_order(0, 3) == [0, 1, 2]
    assert fallback_order(1, 3) == [1, 2, 0]
    assert fallback_order(2, 3) == [2, 1, 0]


def test_storage_policy_refuses_bad_config() -> None:
    with pytest.raises(ValueError, match="unknown storage policy 'nearest'"):
        storage_policy("nearest", [A1])
    with pytest.raises(ValueError, match="2 location classes but 3 turnover classes"):
        storage_policy("class_based", [A1], [0.5, 0.5], [0.8, 0.15, 0.05])
    with pytest.raises(ValueError, match="must be positive"):
        storage_policy("class_based", [A1], [0.5, 0.5], [1.0, 0.0])


open_sets = st.sets(st.sampled_from(sorted(ALL)), max_size=40)


@PROPS
@given(
    name=st.sampled_from(["random", "closest_open", "class_based"]),
    open_ids=open_sets,
    sku=st.sampled_from(["S1", "S2", "S3", "S9"]),
    seed=st.integers(0, 1000),
)
def test_a_policy_picks_an_open_location_or_none_when_all_are_full(
    name: str, open_ids: set[str], sku: str, seed: int
) -> None:
    policy = storage_policy(name, [A1, A2])
    turnover = {"S1": 100.0, "S2": 10.0, "S3": 1.0}
    chosen = policy.choose(open_ids, sku, turnover, random.Random(seed))
    if open_ids:
        assert chosen in open_ids
    else:
        assert chosen is None


@PROPS
@given(open_ids=open_sets.filter(bool))
def test_closest_open_is_never_beaten(open_ids: set[str]) -> None:
    chosen = storage_policy("closest_open", [A1, A2]).choose(open_ids, "S", {}, random.Random())
    assert chosen is not None
    geo = {"A1": A1, "A2": A2}
    best = min(geo[loc[:2]].travel_from_pd(loc) for loc in open_ids)
    assert geo[chosen[:2]].travel_from_pd(chosen) == best


@PROPS
@given(open_ids=open_sets.filter(bool), seed=st.integers(0, 1000))
def test_class_based_stays_in_class_while_it_has_room(open_ids: set[str], seed: int) -> None:
    policy = storage_policy("class_based", [A1, A2])
    assert isinstance(policy, ClassBasedStorage)
    chosen = policy.choose(open_ids, "S1", {"S1": 1.0}, random.Random(seed))  # class A
    first_with_room = next(c for c in policy.classes if set(c) & open_ids)
    assert chosen in first_with_room


# --- aisle choice -----------------------------------------------------------------------------


def test_aisle_for_store_fewest_queued_with_room() -> None:
    assert aisle_for_store([AisleLoad("A1", 3, 10), AisleLoad("A2", 1, 10)]) == "A2"
    assert aisle_for_store([AisleLoad("A2", 1, 10), AisleLoad("A1", 1, 10)]) == "A1"  # tie: id
    assert aisle_for_store([AisleLoad("A1", 3, 10), AisleLoad("A2", 1, 0)]) == "A1"  # A2 full
    assert aisle_for_store([AisleLoad("A1", 3, 10), AisleLoad("A2", 0, 5, available=False)]) == "A1"
    assert aisle_for_store([AisleLoad("A1", 0, 0)]) is None
    assert aisle_for_store([]) is None


# --- retrieve sequencing ----------------------------------------------------------------------


def req(tote: str, due: float, **kw: object) -> RetrieveRequest:
    loc = kw.pop("location", "A1-L-05-02")
    return RetrieveRequest(tote, str(loc), f"O-{tote}", at(due), **kw)  # type: ignore[arg-type]


def test_sequence_by_due_then_priority_then_arrival() -> None:
    late = req("late", 60, seq=1)
    early = req("early", 30, seq=2)
    urgent = req("urgent", 60, priority=9, seq=3)
    second = req("second", 60, seq=4)
    assert sequence_retrieves([second, late, urgent, early], NOW) == [early, urgent, late, second]


def test_b2b_windows_waiting_orders_go_last_or_wait() -> None:
    b2c = req("b2c", 120, seq=1)
    window_open = req("open", 600, deliver_from=at(-10), deliver_until=at(90), seq=2)
    window_shut = req("shut", 30, deliver_from=at(20), deliver_until=at(30), seq=3)
    later_shut = req("later", 30, deliver_from=at(40), deliver_until=at(50), seq=4)
    ranked = sequence_retrieves([later_shut, b2c, window_shut, window_open], NOW)
    # the open window ends (90) before the B2C cut-off (120); shut windows by when they open
    assert ranked == [window_open, b2c, window_shut, later_shut]
    held = sequence_retrieves([later_shut, b2c, window_shut, window_open], NOW, hold_waiting=True)
    assert held == [window_open, b2c]
    assert window_shut.ready(at(20)) and not window_shut.ready(at(19))


@PROPS
@given(
    st.lists(
        st.tuples(
            st.integers(0, 300), st.integers(0, 9), st.one_of(st.none(), st.integers(-60, 60))
        ),
        max_size=30,
    )
)
def test_sequence_properties(rows: list[tuple[int, int, int | None]]) -> None:
    requests = [
        req(
            f"T{i}",
            due,
            priority=p,
            seq=i,
            deliver_from=None if start is None else at(start),
            deliver_until=None if start is None else at(start + 120),
        )
        for i, (due, p, start) in enumerate(rows)
    ]
    ranked = sequence_retrieves(requests, NOW)
    assert sorted(r.seq for r in ranked) == list(range(len(rows)))
    ready = [r.ready(NOW) for r in ranked]
    assert ready == sorted(ready, reverse=True)  # every ready one before every waiting one
    deadlines = [r.deadline for r in ranked if r.ready(NOW)]
    assert deadlines == sorted(deadlines)


# --- crane commands ---------------------------------------------------------------------------


def store(tote: str, location: str, seq: int = 0) -> StoreRequest:
    return StoreRequest(tote, location, seq)


def test_dual_command_pairs_the_most_urgent_retrieve_with_the_best_store() -> None:
    far_r = req("R1", 30, location="A1-L-10-04", seq=1)  # x 6.65 m, y 1.75 m
    near_r = req("R2", 60, location="A1-L-01-01", seq=2)
    stores = [store("S1", "A1-L-01-04", 1), store("S2", "A1-R-10-03", 2)]
    cmd = next_command(A1, stores, [near_r, far_r], NOW, dual_command=True)
    assert cmd is not None and cmd.kind is CommandKind.DUAL
    assert cmd.retrieve == far_r  # most urgent, not nearest
    assert cmd.store == stores[1]  # next to the retrieve: the shortest dual cycle
    # out to the store (x decides: 6.65 / 4), over to the retrieve (0.5 m up), back (y: 1.75)
    assert cmd.seconds == pytest.approx(4 * 5.0 + 6.65 / 4 + 0.5 + 1.75)
    # among every location of the aisle as a store, none makes a shorter cycle with R1
    everywhere = [store(f"S{i}", loc, i) for i, loc in enumerate(sorted(ALL_A1))]
    best = next_command(A1, everywhere, [far_r], NOW, dual_command=True)
    assert best is not None and best.store is not None
    r_at = A1.rack.position(A1.rack.check(far_r.location))
    assert best.seconds == pytest.approx(
        min(
            dual_cycle(CRANE, A1.rack.position(A1.rack.check(s.location)), r_at) for s in everywhere
        )
    )
    assert best.seconds < cmd.seconds


def test_single_commands_when_dual_is_off_or_one_side_is_empty() -> None:
    r = req("R1", 30, location="A1-L-03-02", seq=1)
    s = store("S1", "A1-R-04-01", 1)
    cmd = next_command(A1, [s], [r], NOW, dual_command=False)
    assert cmd is not None and (cmd.kind, cmd.retrieve) == (CommandKind.RETRIEVE, r)
    assert cmd.seconds == pytest.approx(
        single_cycle(CRANE, A1.rack.position(A1.rack.check(r.location)))
    )
    cmd = next_command(A1, [s], [r], NOW, dual_command=False, infeed_full=True)
    assert cmd is not None and (cmd.kind, cmd.store) == (CommandKind.STORE, s)
    cmd = next_command(A1, [s], [], NOW, dual_command=True)
    assert cmd is not None and cmd.kind is CommandKind.STORE
    cmd = next_command(A1, [], [r], NOW, dual_command=True)
    assert cmd is not None and cmd.kind is CommandKind.RETRIEVE
    assert next_command(A1, [], [], NOW, dual_command=True) is None


def test_stores_go_first_come_and_waiting_retrieves_wait() -> None:
    stores = [store("S2", "A1-L-01-01", 2), store("S1", "A1-L-09-03", 1)]
    cmd = next_command(A1, stores, [], NOW, dual_command=True)
    assert cmd is not None and cmd.store == stores[1]
    waiting = req("R1", 30, deliver_from=at(5), deliver_until=at(30))
    cmd = next_command(A1, stores, [waiting], NOW, dual_command=True)
    assert cmd is not None and cmd.kind is CommandKind.STORE
    assert next_command(A1, [], [waiting], NOW, dual_command=True) is None
    cmd = next_command(A1, [], [waiting], at(5), dual_command=True)
    assert cmd is not None and cmd.retrieve == waiting


def test_a_location_outside_the_aisle_is_refused() -> None:
    with pytest.raises(BadLocation):
        next_command(A1, [store("S1", "A2-L-01-01")], [], NOW, dual_command=True)


locations_a1 = st.sampled_from(sorted(ALL_A1))


@PROPS
@given(
    store_locs=st.lists(locations_a1, max_size=8),
    retrieve_locs=st.lists(st.tuples(locations_a1, st.integers(0, 100)), max_size=8),
    dual=st.booleans(),
)
def test_plan_serves_each_request_once_and_dual_never_costs_more(
    store_locs: list[str], retrieve_locs: list[tuple[str, int]], dual: bool
) -> None:
    stores = [store(f"S{i}", loc, i) for i, loc in enumerate(store_locs)]
    retrieves = [
        req(f"R{i}", due, location=loc, seq=i) for i, (loc, due) in enumerate(retrieve_locs)
    ]
    plan = plan_commands(A1, stores, retrieves, NOW, dual_command=dual)
    assert sorted(c.store.tote for c in plan if c.store) == sorted(s.tote for s in stores)
    assert sorted(c.retrieve.tote for c in plan if c.retrieve) == sorted(r.tote for r in retrieves)
    duals = sum(c.kind is CommandKind.DUAL for c in plan)
    assert duals == (min(len(stores), len(retrieves)) if dual else 0)
    # retrieves leave in order of urgency
    served = [c.retrieve for c in plan if c.retrieve]
    assert served == sequence_retrieves(retrieves, NOW)
    # a dual cycle is never longer than the two single cycles it replaces
    singles = plan_commands(A1, stores, retrieves, NOW, dual_command=False)
    assert sum(c.seconds for c in plan) <= sum(c.seconds for c in singles) + 1e-9
