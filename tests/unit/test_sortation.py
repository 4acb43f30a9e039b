from routing.sortation import ItemInfo, Outcome, RejectReason, SortPlan, decide

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
