from routing.sortation import ItemInfo, Outcome, RejectReason, SortPlan, WaitReason, decide

PLAN = SortPlan(
    chutes={"DHL": "CH-DHL", "CUST-ACME": "VAS-1"},
    reject_chute="REJECT",
    b2b_chute="VAS-2",
    max_passes=3,
)
ITEMS = {
    "T1": ItemInfo("DHL"),
    "T2": ItemInfo("NOWHERE"),
    "T3": ItemInfo("CUST-NEW", is_b2b=True),
}


def test_known_destination_goes_to_its_chute() -> None:
    d = decide(PLAN, ("T1",), ITEMS)
    assert (d.outcome, d.chute, d.code) == (Outcome.DIVERTED, "CH-DHL", "T1")


def test_unknown_destination_goes_to_reject() -> None:
    d = decide(PLAN, ("T2",), ITEMS)
    assert (d.outcome, d.chute, d.reason) == (
        Outcome.REJECTED,
        "REJECT",
        RejectReason.UNKNOWN_DESTINATION,
    )


def test_b2b_without_plan_entry_goes_to_b2b_chute() -> None:
    assert decide(PLAN, ("T3",), ITEMS).chute == "VAS-2"


def test_unknown_code_goes_to_reject() -> None:
    d = decide(PLAN, ("NOPE",), ITEMS)
    assert (d.chute, d.reason) == ("REJECT", RejectReason.UNKNOWN_ITEM)


def test_no_read_recirculates_then_rejects_on_last_pass() -> None:
    first = decide(PLAN, (), ITEMS, passes=1)
    assert (first.outcome, first.chute) == (Outcome.NO_READ, None)
    last = decide(PLAN, (), ITEMS, passes=3)
    assert (last.outcome, last.chute, last.reason) == (
        Outcome.REJECTED,
        "REJECT",
        RejectReason.TOO_MANY_PASSES,
    )


def test_multi_read_recirculates() -> None:
    d = decide(PLAN, ("T1", "T2"), ITEMS, passes=1)
    assert (d.outcome, d.chute) == (Outcome.MULTI_READ, None)


def test_full_chute_recirculates_then_rejects() -> None:
    full = frozenset({"CH-DHL"})
    assert decide(PLAN, ("T1",), ITEMS, 1, full).outcome is Outcome.CHUTE_UNAVAILABLE
    assert decide(PLAN, ("T1",), ITEMS, 3, full).chute == "REJECT"


def test_cancelled_order_goes_to_reject() -> None:
    d = decide(PLAN, ("T9",), {"T9": ItemInfo("DHL", cancelled=True)})
    assert (d.outcome, d.chute, d.reason) == (Outcome.REJECTED, "REJECT", RejectReason.CANCELLED)


# --- several chutes per destination ------------------------------------------------------------

MULTI = SortPlan(
    chutes={"DHL": ("CH-DHL-1", "CH-DHL-2", "CH-DHL-3"), "UPS": "CH-UPS"},
    reject_chute="REJECT",
    max_passes=3,
)
DHL = {"T1": ItemInfo("DHL")}


def test_plan_entries_are_normalised_to_tuples() -> None:
    assert MULTI.routes == {"DHL": ("CH-DHL-1", "CH-DHL-2", "CH-DHL-3"), "UPS": ("CH-UPS",)}


def test_multi_chute_destination_goes_to_the_emptiest_chute() -> None:
    counts = {"CH-DHL-1": 5, "CH-DHL-2": 2, "CH-DHL-3": 4}
    assert decide(MULTI, ("T1",), DHL, counts=counts).chute == "CH-DHL-2"


def test_multi_chute_tie_goes_to_the_first_listed() -> None:
    assert decide(MULTI, ("T1",), DHL).chute == "CH-DHL-1"
    counts = {"CH-DHL-1": 3, "CH-DHL-2": 1, "CH-DHL-3": 1}
    assert decide(MULTI, ("T1",), DHL, counts=counts).chute == "CH-DHL-2"


def test_full_or_disabled_chutes_of_a_destination_are_skipped() -> None:
    counts = {"CH-DHL-1": 0, "CH-DHL-2": 0, "CH-DHL-3": 9}
    d = decide(MULTI, ("T1",), DHL, 1, frozenset({"CH-DHL-1", "CH-DHL-2"}), counts)
    assert (d.outcome, d.chute) == (Outcome.DIVERTED, "CH-DHL-3")


def test_every_chute_of_a_destination_unavailable_recirculates_then_rejects() -> None:
    down = frozenset({"CH-DHL-1", "CH-DHL-2", "CH-DHL-3"})
    first = decide(MULTI, ("T1",), DHL, 1, down)
    assert (first.outcome, first.chute, first.reason) == (
        Outcome.CHUTE_UNAVAILABLE,
        None,
        WaitReason.CHUTES_UNAVAILABLE,
    )
    last = decide(MULTI, ("T1",), DHL, 3, down)
    assert (last.outcome, last.chute, last.reason) == (
        Outcome.REJECTED,
        "REJECT",
        RejectReason.TOO_MANY_PASSES,
    )


# --- dynamic B2B allocation --------------------------------------------------------------------

POOL = SortPlan(
    chutes={"DHL": "CH-DHL", "CUST-ACME": "VAS-1", "CUST-OWN": ("VAS-9",)},
    reject_chute="REJECT",
    b2b_chute="VAS-1",
    max_passes=3,
    b2b_pool=("VAS-1", "VAS-2", "VAS-3"),
)


def b2b(order: str, destination: str = "CUST-NEW", tote: str = "T1") -> dict[str, ItemInfo]:
    return {tote: ItemInfo(destination, is_b2b=True, order_id=order)}


def test_b2b_order_is_allocated_a_free_pool_chute() -> None:
    d = decide(POOL, ("T1",), b2b("O1"), allocations={"O9": "VAS-1"})
    assert (d.outcome, d.chute, d.allocated) == (Outcome.DIVERTED, "VAS-2", True)


def test_allocation_prefers_the_plan_entry_then_the_emptiest_pool_chute() -> None:
    assert decide(POOL, ("T1",), b2b("O1", "CUST-ACME")).chute == "VAS-1"
    held = {"O9": "VAS-1"}
    counts = {"VAS-2": 3, "VAS-3": 1}
    d = decide(POOL, ("T1",), b2b("O1", "CUST-ACME"), counts=counts, allocations=held)
    assert (d.chute, d.allocated) == ("VAS-3", True)


def test_order_holding_a_chute_goes_there_without_a_new_allocation() -> None:
    held = {"O1": "VAS-3", "O2": "VAS-1"}
    d = decide(POOL, ("T1",), b2b("O1", "CUST-ACME"), allocations=held)
    assert (d.outcome, d.chute, d.allocated) == (Outcome.DIVERTED, "VAS-3", False)


def test_held_chute_full_recirculates_rather_than_taking_another() -> None:
    d = decide(POOL, ("T1",), b2b("O1"), 1, frozenset({"VAS-3"}), allocations={"O1": "VAS-3"})
    assert (d.outcome, d.chute, d.allocated) == (Outcome.CHUTE_UNAVAILABLE, None, False)
    last = decide(POOL, ("T1",), b2b("O1"), 3, frozenset({"VAS-3"}), allocations={"O1": "VAS-3"})
    assert (last.chute, last.reason) == ("REJECT", RejectReason.TOO_MANY_PASSES)


def test_dedicated_lane_outside_the_pool_is_kept() -> None:
    d = decide(POOL, ("T1",), b2b("O1", "CUST-OWN"))
    assert (d.chute, d.allocated) == ("VAS-9", False)


def test_full_or_disabled_pool_chutes_are_not_allocated() -> None:
    d = decide(POOL, ("T1",), b2b("O1"), 1, frozenset({"VAS-1", "VAS-2"}))
    assert (d.chute, d.allocated) == ("VAS-3", True)


def test_no_free_pool_chute_recirculates_then_rejects() -> None:
    held = {"O7": "VAS-1", "O8": "VAS-2", "O9": "VAS-3"}
    first = decide(POOL, ("T1",), b2b("O1"), 1, allocations=held)
    assert (first.outcome, first.chute, first.reason, first.allocated) == (
        Outcome.CHUTE_UNAVAILABLE,
        None,
        WaitReason.NO_FREE_CHUTE,
        False,
    )
    last = decide(POOL, ("T1",), b2b("O1"), 3, allocations=held)
    assert (last.outcome, last.chute, last.reason) == (
        Outcome.REJECTED,
        "REJECT",
        RejectReason.TOO_MANY_PASSES,
    )


def test_released_chute_is_allocated_again() -> None:
    held = {"O7": "VAS-1", "O8": "VAS-2", "O9": "VAS-3"}
    assert decide(POOL, ("T1",), b2b("O1"), allocations=held).chute is None
    del held["O8"]  # its order completed
    d = decide(POOL, ("T1",), b2b("O1"), allocations=held)
    assert (d.chute, d.allocated) == ("VAS-2", True)


def test_overflow_shares_the_static_chute_when_no_pool_chute_is_free() -> None:
    plan = SortPlan(
        POOL.chutes, "REJECT", "VAS-1", 3, b2b_pool=("VAS-1", "VAS-2"), b2b_overflow=True
    )
    held = {"O7": "VAS-1", "O8": "VAS-2"}
    d = decide(plan, ("T1",), b2b("O1"), allocations=held)
    assert (d.outcome, d.chute, d.allocated) == (Outcome.DIVERTED, "VAS-1", False)
    d = decide(plan, ("T1",), b2b("O1", "CUST-ACME"), 1, frozenset({"VAS-1"}), allocations=held)
    assert (d.outcome, d.reason) == (Outcome.CHUTE_UNAVAILABLE, WaitReason.CHUTES_UNAVAILABLE)


def test_b2c_and_cancelled_orders_never_allocate() -> None:
    d = decide(POOL, ("T1",), {"T1": ItemInfo("CUST-ACME", order_id="O1")})
    assert (d.chute, d.allocated) == ("VAS-1", False)
    info = {"T1": ItemInfo("CUST-NEW", is_b2b=True, cancelled=True, order_id="O1")}
    d = decide(POOL, ("T1",), info)
    assert (d.chute, d.reason, d.allocated) == ("REJECT", RejectReason.CANCELLED, False)
