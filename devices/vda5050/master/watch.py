"""VDA 5050 master control's periodic look at its fleet, every :data:`WATCH_INTERVAL` line
seconds: availability (a state gone stale), instant actions past their deadline, and asking a
robot for what it has not sent.

A robot ONLINE without a state since it came online (at start: every robot) is sent
``stateRequest`` once; a 2.1 robot ONLINE for :data:`FACTSHEET_WAIT` line seconds without a
factsheet is sent ``factsheetRequest``.
"""

from __future__ import annotations

import logging
import uuid

from devices.base import RobotAction
from devices.errors import DeviceError
from devices.vda5050.master.output import MasterOutput
from devices.vda5050.master.state import WATCH_INTERVAL, MasterState
from devices.vda5050.tracker import RobotTracker

log = logging.getLogger("devices.vda5050.master")  # master control logs under one name

FACTSHEET_WAIT = 5.0  # line seconds ONLINE without a factsheet before asking for one (2.1)


class FleetWatch:
    """Looks at every robot at a fixed interval and asks for a missing state or factsheet."""

    def __init__(self, state: MasterState, output: MasterOutput) -> None:
        self._state = state
        self._output = output

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            await self._state.clock.sleep(WATCH_INTERVAL)
            await self._output.refresh()
            for tracker in self._state.trackers.values():
                if tracker.wants_state():
                    await self.request_state(tracker)
                await self._output.emit(tracker.overdue())
                if tracker.wants_factsheet(FACTSHEET_WAIT):
                    await self.request_factsheet(tracker)

    async def request_state(self, tracker: RobotTracker) -> None:
        """``stateRequest`` (2.0 and 2.1) to a robot ONLINE without a state since it came
        online: a controller that just started learns its order, actions and loads now. Sent
        once per ONLINE period (the robot's periodic state follows anyway)."""
        action = RobotAction(f"state-{uuid.uuid4().hex[:12]}", "stateRequest", "NONE")
        message = self._state.builders[tracker.serial].instant_actions([action])
        try:
            await self._output.publish(tracker.serial, "instantActions", message)
        except DeviceError as exc:
            log.debug("state request not sent", extra={"serial": tracker.serial, "error": str(exc)})
            return
        tracker.state_requested = True
        log.info("state requested", extra={"serial": tracker.serial})

    async def request_factsheet(self, tracker: RobotTracker) -> None:
        """``factsheetRequest`` (2.1 only); its outcome is not the controller's business, so it
        is not followed as an action."""
        action = RobotAction(f"factsheet-{uuid.uuid4().hex[:12]}", "factsheetRequest", "NONE")
        message = self._state.builders[tracker.serial].instant_actions([action])
        try:
            await self._output.publish(tracker.serial, "instantActions", message)
        except DeviceError as exc:
            log.debug(
                "factsheet request not sent", extra={"serial": tracker.serial, "error": str(exc)}
            )
            return
        tracker.factsheet_requested = True
        log.info("factsheet requested", extra={"serial": tracker.serial})
