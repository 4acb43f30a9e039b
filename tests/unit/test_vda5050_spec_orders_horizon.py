"""VDA 5050 2.1, sections 6.6.2, 6.6.4.3 and 6.10.2: the simulated robot R02 driving its base,
stopping at the decision point, taking updates that extend or replace the horizon, and ignoring
or refusing updates it already has, on a manual clock.

Each test is named after the section it checks and quotes the rule in its docstring.
"""

from __future__ import annotations

from devices.base import RobotActionFinished, RobotOrderFinished
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from tests.unit.vda5050_spec_support import LONG, _drop, _pick, _until, running


async def test_6_6_2_vehicle_stops_at_the_decision_point_until_the_base_is_extended(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.2: "The AGV shall stop at the decision point if no further nodes and edges are added
    to the base." 6.10.2: traversal removes the node from nodeStates and sets lastNodeId."""
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"], horizon=1))
        await manual_clock.advance(LONG)
        state = link.state()
        assert (state["lastNodeId"], state["lastNodeSequenceId"], state["driving"]) == (
            "G10",
            2,
            False,
        )
        assert link.nodes() == [("G11", 4, False)]
        assert [(e["edgeId"], e["released"]) for e in state["edgeStates"]] == [("G10-G11-3", False)]
        assert link.robot.executing()
        link.robot.handle_order(link.update("o1", ["G11"]))
        assert link.nodes() == [("G11", 4, True)]
        await manual_clock.advance(LONG)
        state = link.state()
        assert (state["lastNodeId"], state["lastNodeSequenceId"], state["orderUpdateId"]) == (
            "G11",
            4,
            1,
        )
        assert state["nodeStates"] == [] and state["edgeStates"] == []


async def test_6_6_2_horizon_is_replaced_by_update(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.2: "Master control has the option to make changes to the horizon by sending entirely
    different nodes as the new base." """
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11", "G12"], horizon=2))
        await manual_clock.advance(LONG)
        link.robot.handle_order(link.update("o1", ["G20"]))
        assert link.nodes() == [("G20", 4, True)]
        await manual_clock.advance(LONG)
        assert (link.robot.last_node_id, link.robot.last_node_seq) == ("G20", 4)
        assert "node G11" not in link.visited and link.visited[-1] == "node G20"
        assert not link.robot.executing()


async def test_6_6_2_replaced_horizon_leaves_no_waiting_actions(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.2, figure 8 step 3: "Nodes and edges and the corresponding action states of the order
    horizon are also included inside the state"; once the horizon is replaced and the new base
    done, the vehicle is no longer executing and takes a new order."""
    async with running(reference_line, manual_clock) as link:
        planned = {"G11": [_pick("o1-pick")]}
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"], planned, horizon=1))
        await manual_clock.advance(LONG)
        link.robot.handle_order(link.update("o1", ["G20"]))
        await manual_clock.advance(LONG)
        assert link.robot.last_node_id == "G20"
        statuses = [a["actionStatus"] for a in link.state()["actionStates"]]
        assert all(s in ("FINISHED", "FAILED") for s in statuses), statuses
        link.robot.handle_order(link.order("o2", ["G20", "G10"]))
        assert link.robot.order_id == "o2" and link.errors() == []


async def test_6_6_2_stitching_node_keeps_the_content_of_the_first_order(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.2: "It is important, that the contents of the stitching node ... are not changed.
    For actions, deviation range, etc., the AGV shall use the instructions provided in the first
    order." """
    async with running(reference_line, manual_clock) as link:
        first = link.order("o1", ["P2", "G10", "G11"], {"G11": [_pick("o1-pick")]})
        link.robot.handle_order(first)
        await _until(manual_clock, lambda: link.robot.driving)
        changed = {
            **first["nodes"][-1],
            "actions": [dict(first["nodes"][-1]["actions"][0], actionId="other")],
        }
        link.robot.handle_order(
            link.update("o1", ["G12"], {"G12": [_drop("o1-drop")]}, stitch=changed, update_id=1)
        )
        assert link.robot.order_update_id == 1 and link.errors() == []
        await manual_clock.advance(LONG)
        assert {a: s.status for a, s in link.robot.actions.items()} == {
            "o1-pick": "FINISHED",
            "o1-drop": "FINISHED",
        }
        assert link.robot.last_node_id == "G12"


async def test_6_6_4_3_vehicle_keeps_and_continues_the_previous_order(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.4.3: "Vehicle keeps the previous order in its buffer ... The vehicle continues with
    executing the previous order." """
    async with running(reference_line, manual_clock) as link:
        first = link.order("o1", ["P2", "G10", "G11"])
        link.robot.handle_order(first)
        link.robot.handle_order(link.update("o1", ["G12"]))
        link.robot.handle_order(link.update("o1", ["G11"], stitch=first["nodes"][1], update_id=0))
        assert link.errors() == [
            ("orderUpdateError", "WARNING", [("orderId", "o1"), ("orderUpdateId", "0")])
        ]
        assert (link.robot.order_id, link.robot.order_update_id) == ("o1", 1)
        await manual_clock.advance(LONG)
        assert (link.robot.last_node_id, link.robot.last_node_seq) == ("G12", 6)


async def test_6_6_4_3_resent_update_changes_nothing(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.4.3: "If the AGV receives an order with the same orderId and orderUpdateId twice, the
    second order will be ignored." (Master control resends when the state came too late.)"""
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10"]))
        update = link.update("o1", ["G11"], {"G11": [_pick("o1-pick")]})
        link.robot.handle_order(update)
        await manual_clock.advance(LONG)
        assert link.status("o1-pick") == "FINISHED" and not link.robot.executing()
        link.robot.handle_order(update)  # arrives again after the work is done
        assert link.status("o1-pick") == "FINISHED" and not link.robot.executing()
        assert link.nodes() == [] and link.errors() == []


async def test_6_6_2_update_after_the_order_finished_drives_on(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.2, figure 8 step 8: "The order update is now accepted if it continues from the last
    traversed node" - the same orderId with a higher orderUpdateId after the order finished."""
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10"]))
        await manual_clock.advance(LONG)
        events = link.report()
        assert [type(e) for e in events] == [RobotOrderFinished]
        link.robot.handle_order(link.update("o1", ["G11"], {"G11": [_pick("o1-pick")]}))
        assert link.nodes() == [("G11", 4, True)]
        assert not link.tracker.confirmed("o1")
        link.report()
        assert link.tracker.confirmed("o1")
        await manual_clock.advance(LONG)
        events = link.report()
        assert [(type(e), getattr(e, "action_id", None)) for e in events] == [
            (RobotActionFinished, "o1-pick"),
            (RobotOrderFinished, None),
        ]
