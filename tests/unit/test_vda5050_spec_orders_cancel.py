"""VDA 5050 2.1, section 6.6.3: cancelOrder on the simulated robot R02 (what it stops, what it
fails, when it reports FINISHED, noOrderToCancel) and how master control's tracker reads it.

Each test is named after the section it checks and quotes the rule in its docstring.
"""

from __future__ import annotations

from devices.base import RobotActionFailed
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from tests.unit.vda5050_spec_support import LONG, _drop, _pick, _until, running


async def test_6_6_3_cancel_order_fails_waiting_actions(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.3: "After receiving the instantAction cancelOrder, the vehicle stops ... If there are
    actions scheduled, these actions shall be cancelled and report 'FAILED' ... The orderId and
    orderUpdateId are kept." """
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"], {"G11": [_pick("o1-pick")]}))
        link.robot.handle_order(link.update("o1", ["G12"], {"G12": [_drop("o1-drop")]}))
        await _until(manual_clock, lambda: link.robot.driving)
        link.cancel("c1")
        await manual_clock.advance(LONG)
        state = link.state()
        assert (state["lastNodeId"], state["driving"]) == ("G10", False)  # stops on the next node
        assert (state["orderId"], state["orderUpdateId"]) == ("o1", 1)
        assert state["nodeStates"] == [] and state["edgeStates"] == []
        assert {a["actionId"]: a["actionStatus"] for a in state["actionStates"]} == {
            "o1-pick": "FAILED",
            "o1-drop": "FAILED",
            "c1": "FINISHED",
        }
        assert link.robot.loads == {}


async def test_6_6_3_cancel_order_runs_until_the_running_action_ends(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.3: "While actions are running, the cancelOrder action shall report 'RUNNING', until
    all actions are cancelled/finished. After all movement of the vehicle and all of its actions
    are stopped, the cancelOrder action status shall report 'FINISHED'." """
    async with running(reference_line, manual_clock) as link:
        at_g10 = {"G10": [_pick("o1-pick"), _drop("o1-drop")]}
        link.robot.handle_order(link.order("o1", ["P2", "G10"], at_g10))
        await _until(manual_clock, lambda: link.status("o1-pick") == "RUNNING")
        link.cancel("c1")
        assert (link.status("c1"), link.status("o1-drop")) == ("RUNNING", "WAITING")
        await manual_clock.advance(LONG)
        assert {a: s.status for a, s in link.robot.actions.items()} == {
            "o1-pick": "FINISHED",  # picking cannot be interrupted: it reports how it ended
            "o1-drop": "FAILED",
            "c1": "FINISHED",
        }


async def test_6_6_3_cancel_while_waiting_for_the_horizon_clears_it(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.3 with 6.6.2 step 3: a vehicle holding a horizon is "waiting for an update and
    executing an order"; cancelOrder ends that order at once, horizon included."""
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"], horizon=1))
        await manual_clock.advance(LONG)
        assert link.nodes() == [("G11", 4, False)]
        link.cancel("c1")
        assert link.status("c1") == "FINISHED"
        assert link.nodes() == [] and not link.robot.executing()


async def test_6_6_3_1_new_order_after_cancellation_starts_where_the_vehicle_stands(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.3.1: "After the cancellation of an order, the vehicle shall be in a state to receive
    a new order ... the new order has to begin on the node the AGV is now standing on." """
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"]))
        await _until(manual_clock, lambda: link.robot.driving)
        link.cancel("c1")
        await manual_clock.advance(LONG)
        assert link.robot.last_node_id == "G10"
        link.robot.handle_order(link.order("o2", ["P2", "G10"]))  # where o1 started
        assert link.robot.order_id == "o1"
        assert [e[0] for e in link.errors()] == ["noRouteError"]
        link.robot.handle_order(link.order("o3", ["G10", "G20"]))
        assert (link.robot.order_id, link.robot.order_update_id) == ("o3", 0)
        assert link.errors() == []  # accepting a new order ends the rejection warning
        await manual_clock.advance(LONG)
        assert link.robot.last_node_id == "G20"


async def test_6_6_3_2_cancel_without_order_reports_noOrderToCancel(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.3.2: "If the AGV receives a cancelOrder action but, the AGV currently has no order,
    or the previous order was canceled, the cancelOrder action shall be reported as 'FAILED'.
    The AGV shall report a 'noOrderToCancel' error with the errorLevel set to 'WARNING'. The
    actionId of the instantAction shall be passed as an errorReference." """
    async with running(reference_line, manual_clock) as link:
        link.cancel("c0")  # no order yet
        assert link.status("c0") == "FAILED"
        assert link.errors() == [("noOrderToCancel", "WARNING", [("actionId", "c0")])]
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"]))
        await _until(manual_clock, lambda: link.robot.driving)
        link.cancel("c1")
        await manual_clock.advance(LONG)
        assert link.status("c1") == "FINISHED"
        link.cancel("c2")  # the previous order was cancelled
        assert link.status("c2") == "FAILED"
        assert link.errors() == [("noOrderToCancel", "WARNING", [("actionId", "c2")])]


async def test_6_6_3_cancelled_order_ends_in_the_tracker_with_its_actions_failed(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.3: scheduled actions "report 'FAILED' in their actionState" and cancelOrder
    "FINISHED": master control reads that as the actions failed and the order over."""
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"], {"G11": [_pick("o1-pick")]}))
        link.report()
        await _until(manual_clock, lambda: link.robot.driving)
        link.cancel("c1")
        await manual_clock.advance(LONG)
        events = link.report()
        assert [(type(e).__name__, getattr(e, "action_id", None)) for e in events] == [
            ("RobotActionFailed", "o1-pick"),
            ("RobotOrderFinished", None),
            ("RobotActionFinished", "c1"),
        ]
        failed = events[0]
        assert isinstance(failed, RobotActionFailed) and failed.reason == "order cancelled"
