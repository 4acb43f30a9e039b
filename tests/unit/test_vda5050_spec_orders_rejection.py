"""VDA 5050 2.1, sections 6.6.4.2 and 6.6.4.3: a rejected order update as master control sees
it through :class:`RobotTracker` - which actions fail, and which rejection warnings must not be
taken as the rejection of an update sent since.

Each test is named after the section it checks and quotes the rule in its docstring.
"""

from __future__ import annotations

from devices.base import RobotAction, RobotActionFailed, RobotActionFinished, RobotOrderFinished
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from tests.unit.vda5050_spec_support import LONG, JsonDict, Link, _drop, _pick, running


async def test_6_6_4_2_update_the_vehicle_cannot_perform_fails_only_its_actions(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.4.2: "Vehicle does NOT take over the new order ... reports the warning 'orderError'
    with the wrong fields as error references"; master control fails the update's actions and
    follows the order as it was, to its end."""
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"], {"G11": [_pick("o1-pick")]}))
        link.report()
        lift = RobotAction("o1-lift", "lift", "HARD")
        link.robot.handle_order(link.update("o1", ["G12"], {"G12": [lift]}))
        assert link.errors() == [
            (
                "orderError",
                "WARNING",
                [("orderId", "o1"), ("actionId", "o1-lift"), ("orderUpdateId", "1")],
            )
        ]
        events = link.report()
        assert [(type(e), getattr(e, "action_id", None)) for e in events] == [
            (RobotActionFailed, "o1-lift")
        ]
        assert link.tracker.confirmed("o1")
        assert link.tracker.base is not None and link.tracker.base.node["nodeId"] == "G11"
        await manual_clock.advance(LONG)
        events = link.report()
        assert [(type(e), getattr(e, "action_id", None)) for e in events] == [
            (RobotActionFinished, "o1-pick"),
            (RobotOrderFinished, None),
        ]


async def test_6_6_4_3_rejection_naming_an_older_update_does_not_reject_the_newest(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.4.3: a late resend with a lower orderUpdateId draws an "orderUpdateError" while the
    vehicle "continues with executing the previous order"; 7.1 names the orderUpdateId it was
    about, so master control does not take it as the rejection of the update it sent since."""
    async with running(reference_line, manual_clock) as link:
        first = link.order("o1", ["P2", "G10", "G11"])
        link.robot.handle_order(first)
        link.report()
        link.robot.handle_order(link.update("o1", ["G12"]))
        link.report()
        assert link.tracker.confirmed("o1")
        link.robot.handle_order(first)  # the first order, resent, arrives late
        assert [e[0] for e in link.errors()] == ["orderUpdateError"]
        second = link.update("o1", ["G13"], {"G13": [_pick("o1-pick")]})  # still on its way
        events = link.report()
        assert not [e for e in events if isinstance(e, RobotActionFailed)]
        assert not link.tracker.confirmed("o1")
        link.robot.handle_order(second)
        link.report()
        assert link.tracker.confirmed("o1") and link.errors() == []
        await manual_clock.advance(LONG)
        assert [(type(e), getattr(e, "action_id", None)) for e in link.report()] == [
            (RobotActionFinished, "o1-pick"),
            (RobotOrderFinished, None),
        ]


def _rejected_update_then_retry(link: Link) -> JsonDict:
    """Order o1 to G11 with a pick; update 1 asks for a lift the robot cannot do and is
    rejected; master control sends update 1 again, now with a drop."""
    link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"], {"G11": [_pick("o1-pick")]}))
    link.report()
    link.robot.handle_order(link.update("o1", ["G12"], {"G12": [RobotAction("o1-lift", "lift")]}))
    link.report()
    base = link.tracker.base
    assert base is not None and base.update_id == 0
    return link.update("o1", ["G12"], {"G12": [_drop("o1-drop")]})


async def test_6_6_4_2_standing_rejection_warning_does_not_reject_the_retried_update(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.4.2: "The warning shall be reported until the vehicle has accepted a new order", so
    states sent before the retried update arrives still carry the old warning; it must not
    fail the retried update's actions."""
    async with running(reference_line, manual_clock) as link:
        retry = _rejected_update_then_retry(link)
        events = link.report()  # the robot has not received the retry yet
        assert not [e for e in events if isinstance(e, RobotActionFailed)]
        link.robot.handle_order(retry)
        link.report()
        assert link.tracker.confirmed("o1")
        await manual_clock.advance(LONG)
        events = link.report()
        assert [(type(e), getattr(e, "action_id", None)) for e in events] == [
            (RobotActionFinished, "o1-pick"),
            (RobotActionFinished, "o1-drop"),
            (RobotOrderFinished, None),
        ]
