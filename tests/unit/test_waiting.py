"""Waiting reasons as typed values: each kind's text (the API's ``waiting_reason``, byte for byte
what the controller wrote before the values were typed), and their stored data read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from controller.line.journal import PendingEvent
from controller.orders.waiting import (
    ActionFailed,
    AsrsBusy,
    AsrsStockShort,
    AsrsUnavailable,
    CaseToteFailed,
    ConveyorUnavailable,
    EndedWithoutDrop,
    GaveUp,
    GivingWay,
    LineHeld,
    NoRobotFree,
    Other,
    OutsideDeliveryWindow,
    Overdue,
    Reassigning,
    RobotCancelled,
    RobotLost,
    RobotRefused,
    RobotUnavailable,
    ShortPick,
    Stage,
    StockRefused,
    StockShort,
    ToteNotFound,
    VerificationMismatch,
    Waiting,
    WaitKind,
    from_data,
    same_reason,
    to_data,
)
from controller.store.stock import PickOutcome

ROBOT_STEP = Overdue(Stage.ROBOT_STEP, "R01", 93.46, 90.0)

# every kind (the causes of a lost trip nested in reassigning and gave_up) and its text
TEXTS: list[tuple[Waiting, str]] = [
    (NoRobotFree(), "no_robot_free"),
    (ConveyorUnavailable(), "conveyor_unavailable"),
    (OutsideDeliveryWindow(), "outside_delivery_window"),
    (LineHeld(), "line_held"),
    (StockShort("SKU-0001", 3, 1, 0), "stock_short: SKU-0001 missing 3 (on hand 1, reserved 0)"),
    (
        AsrsStockShort("SKU-A", 6, 60),
        "stock_short: SKU-A missing 6 in the AS/RS (60 units free in rack totes)",
    ),
    (
        StockRefused("SKU S1 at L01A: on hand 4, reserved 4, cannot reserve 1 more"),
        "stock_short: SKU S1 at L01A: on hand 4, reserved 4, cannot reserve 1 more",
    ),
    (AsrsBusy(2, 2), "asrs_busy: 2 orders' case totes out (at most 2)"),
    (
        AsrsUnavailable("tote T-12 is not in the AS/RS rack (STATION:VAS-1)"),
        "asrs_unavailable: tote T-12 is not in the AS/RS rack (STATION:VAS-1)",
    ),
    (RobotRefused("rate_limited", "R02"), "robot_refused: rate_limited (R02)"),
    (RobotUnavailable("robot R02 offline"), "robot_unavailable: robot R02 offline"),
    (
        Reassigning(ActionFailed("pick", "R01", "load already picked")),
        "reassigning: pick failed on robot R01: load already picked",
    ),
    (
        Reassigning(RobotLost("R03", "connection lost")),
        "reassigning: robot R03 unavailable: connection lost",
    ),
    (
        Reassigning(RobotCancelled("R04")),
        "reassigning: operator cancelled the order of robot R04",
    ),
    (
        Reassigning(EndedWithoutDrop("R05")),
        "reassigning: robot R05 ended its trip without the drop",
    ),
    (
        Reassigning(ROBOT_STEP),
        "reassigning: robot R01 made no progress on its trip for 93 s (deadline 90 s)",
    ),
    (
        GaveUp(ActionFailed("pick", "R01", "load already picked"), 3),
        "pick failed on robot R01: load already picked; gave up after 3 attempts",
    ),
    (
        GivingWay("R02", "deadlock with R03"),
        "robot R02 gives way (deadlock with R03); its trip continues after",
    ),
    (
        ShortPick("SKU-0008", "L04B", None, 0, 1),
        "short pick: SKU SKU-0008 at L04B: picked 0 of 1",
    ),
    (
        ShortPick("SKU-A", "STATION:VAS-1", "T-12", 4, 6),
        "short pick: SKU SKU-A in tote T-12 at STATION:VAS-1: picked 4 of 6",
    ),
    (
        VerificationMismatch(("line 20 (SKU-0006): expected 3, counted 2", "tote T-9: gone")),
        "verification mismatch: line 20 (SKU-0006): expected 3, counted 2; tote T-9: gone",
    ),
    (
        CaseToteFailed("T-12", "location empty"),
        "AS/RS retrieve of tote T-12 failed: location empty",
    ),
    (
        ToteNotFound("TOTE-1"),
        "tote TOTE-1 not found on the conveyor after it came back; "
        "check the line and the reject chute",
    ),
    (
        Overdue(Stage.SCAN, "TOTE-1", 130.0, 120.0),
        "tote TOTE-1 not scanned within 120 s of conveyor running time after its drop: lost on "
        "the conveyor; check the belt from the induction to the scanner and the reject chute",
    ),
    (
        Overdue(Stage.SORT, "TOTE-2", 50.0, 45.0),
        "tote TOTE-2 scanned but not in a chute within 45 s of conveyor running time: lost on "
        "the conveyor; check the diverts, the chutes and the reject chute",
    ),
    (ROBOT_STEP, "robot R01 made no progress on its trip for 93 s (deadline 90 s)"),
    (
        Overdue(Stage.CRANE_COMMAND, "ns-A1-R7.1", 400.0, 300.0),
        "crane command ns-A1-R7.1 not reported finished within 300 s; "
        "check the crane and its aisle",
    ),
    (
        Overdue(Stage.STATION, "ST-1", 4000.0, 3600.0),
        "waiting for verification at station ST-1 for over 3600 s",
    ),
    (Other("no robot free"), "no robot free"),
]


def kinds(value: Waiting) -> set[WaitKind]:
    cause = getattr(value, "cause", None)
    return {value.kind} | ({cause.kind} if cause is not None else set())


def test_every_kind_has_a_text() -> None:
    assert set().union(*(kinds(w) for w, _ in TEXTS)) == set(WaitKind)
    assert {s for w, _ in TEXTS if isinstance(w, Overdue) for s in [w.stage]} == set(Stage)


@pytest.mark.parametrize(("value", "text"), TEXTS, ids=[t[:40] for _, t in TEXTS])
def test_render_gives_the_text_and_the_stored_data_gives_the_value_back(
    value: Waiting, text: str
) -> None:
    assert value.render() == text
    stored = json.dumps(to_data(value))  # as the store keeps it
    back = from_data(json.loads(stored))
    assert back == value and type(back) is type(value)
    assert back.render() == text
    assert to_data(value)["kind"] == value.kind.value


def test_the_stored_data_names_the_kind_and_its_fields() -> None:
    assert to_data(NoRobotFree()) == {"kind": "no_robot_free"}
    assert to_data(StockShort("S1", 3, 1, 0)) == {
        "kind": "stock_short",
        "sku": "S1",
        "missing": 3,
        "on_hand": 1,
        "reserved": 0,
    }
    assert to_data(GaveUp(RobotCancelled("R04"), 2)) == {
        "kind": "gave_up",
        "cause": {"kind": "robot_cancelled", "robot": "R04"},
        "attempts": 2,
    }


def test_an_overdue_stage_keeps_its_figures_as_they_are_and_its_history_data_rounds_them() -> None:
    overdue = Overdue(Stage.ROBOT_STEP, "R01", 3.46, 2.45)
    assert from_data(to_data(overdue)) == overdue  # rounded, 3.5 would render as "4 s"
    assert overdue.data() == {
        "stage": "robot_step",
        "subject": "R01",
        "waited_seconds": 3.5,
        "deadline_seconds": 2.5,
    }


def test_data_of_no_known_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        from_data({"kind": "from_a_newer_release", "text": "?"})
    with pytest.raises(ValueError):
        from_data({"kind": "action_failed", "action": "pick", "robot": "R1", "reason": "x"})
    with pytest.raises(ValueError):
        from_data({"kind": "stock_short", "sku": "S1"})  # fields missing


def test_stock_shortages_are_the_stock_short_kinds() -> None:
    short = {k for k in WaitKind if k.stock_short}
    assert short == {WaitKind.STOCK_SHORT, WaitKind.ASRS_STOCK_SHORT, WaitKind.STOCK_REFUSED}
    # each renders as the API has always shown a shortage
    assert all(w.render().startswith("stock_short: ") for w, _ in TEXTS if w.kind.stock_short)


def test_a_reason_is_the_same_when_only_its_figures_of_the_moment_changed() -> None:
    assert same_reason(StockShort("S1", 3, 1, 0), StockShort("S1", 3, 5, 4))
    assert not same_reason(StockShort("S1", 3, 1, 0), StockShort("S1", 2, 1, 0))
    assert not same_reason(StockShort("S1", 3, 1, 0), StockShort("S2", 3, 1, 0))
    assert same_reason(AsrsStockShort("S1", 6, 60), AsrsStockShort("S1", 6, 54))
    assert not same_reason(AsrsStockShort("S1", 6, 60), StockShort("S1", 6, 0, 0))
    assert same_reason(AsrsBusy(2, 2), AsrsBusy(2, 3))
    assert not same_reason(AsrsBusy(2, 2), AsrsBusy(3, 3))
    assert same_reason(NoRobotFree(), NoRobotFree())
    assert not same_reason(None, NoRobotFree())
    assert not same_reason(LineHeld(), NoRobotFree())
    assert not same_reason(StockRefused("a"), StockRefused("b"))
    # a reason read back as text only is never taken for a typed one
    assert not same_reason(Other("line_held"), LineHeld())


def test_a_short_pick_outcome_gives_its_reason_as_a_value_and_as_its_words() -> None:
    outcome = PickOutcome("O1", "1", "SKU-0008", "L04B", reserved=1, picked=0)
    assert outcome.short_pick == ShortPick("SKU-0008", "L04B", None, 0, 1)
    assert outcome.reason == "short pick: SKU SKU-0008 at L04B: picked 0 of 1"
    full = PickOutcome("O1", "1", "SKU-0008", "L04B", reserved=1, picked=1)
    assert full.short_pick is None and full.reason is None


def test_an_event_waiting_for_the_store_is_logged_with_the_reason_as_text() -> None:
    at = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    event = PendingEvent("B", "waiting", at, None, {"waiting": LineHeld(), "step": "queued"})
    assert event.summary() == {
        "order": "B",
        "type": "waiting",
        "at": at.isoformat(),
        "status": None,
        "waiting_reason": "line_held",
        "step": "queued",
    }
    cleared = PendingEvent("B", "robot_assigned", at, None, {"waiting": None})
    assert cleared.summary()["waiting_reason"] is None
