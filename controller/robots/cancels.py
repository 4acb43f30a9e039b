"""Cancelling a robot's order until the robot has really stopped it.

``cancelOrder`` is an instant action, and a robot may refuse it (a validation error, an action
it cannot execute now) or never answer (a message lost on the way). Master control reports
either as a failed ``cancelOrder`` (see :mod:`devices.vda5050.instant`). :class:`RobotCancels`
sends every cancel the controller makes, follows it to its outcome, and sends it again after a
failure, ``2, 4, 8, ...`` line seconds later, up to ``robots.cancel_attempts`` attempts in all.
Then it gives up: the robot counts as needing an operator (master control sets that flag on
the same count) and the controller's ``on_gave_up`` ends what waited for the cancel. A cancel
is no longer followed once the robot's order has ended (finished, or cancelled after all).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from devices import base as dev
from devices.errors import DeviceError
from kernel.clock import Clock

log = logging.getLogger("controller.service.orchestrator")  # the orchestrator logs under one name

FIRST_RETRY = 2.0  # line seconds before the first retry; doubled for each further one


@dataclass
class _Cancel:
    action_id: str
    attempts: int  # cancelOrder actions sent for this cancel so far
    retry_at: float | None = None  # the last attempt failed: when to send the next one
    last_error: str = ""


class RobotCancels:
    """The robots' cancels still waiting for the robot to confirm them."""

    def __init__(
        self,
        fleet: dev.RobotFleet,
        clock: Clock,
        attempts: int,
        on_gave_up: Callable[[str, str], Awaitable[None]],
    ) -> None:
        self._fleet = fleet
        self._clock = clock
        self._attempts = attempts
        self._on_gave_up = on_gave_up  # (serial, why)
        self._open: dict[str, _Cancel] = {}

    def waiting(self, serial: str) -> bool:
        return serial in self._open

    async def send(self, serial: str) -> str:
        """Send ``cancelOrder`` to ``serial`` and follow it; DeviceError if it cannot be sent.

        While a cancel sent to the robot awaits its answer, asking again sends nothing and
        returns that cancel's action id: the robot is not flooded with cancels."""
        open_cancel = self._open.get(serial)
        if open_cancel is not None and open_cancel.retry_at is None:
            return open_cancel.action_id
        return await self._send(serial)

    async def _send(self, serial: str) -> str:
        action_id = await self._fleet.cancel_order(serial)
        before = self._open.get(serial)
        attempts = 1 if before is None else before.attempts + 1
        self._open[serial] = _Cancel(action_id, attempts)
        return action_id

    def finished(self, event: dev.RobotActionFinished) -> bool:
        """True if ``event`` is the outcome of a cancel followed here (it is done)."""
        cancel = self._open.get(event.serial)
        if cancel is None or cancel.action_id != event.action_id:
            return False
        del self._open[event.serial]
        if cancel.attempts > 1:
            log.info(
                "robot confirmed the cancel",
                extra={"robot": event.serial, "attempts": cancel.attempts},
            )
        return True

    async def failed(self, event: dev.RobotActionFailed) -> bool:
        """True if ``event`` is a cancel followed here; it is retried or given up."""
        cancel = self._open.get(event.serial)
        if cancel is None or cancel.action_id != event.action_id:
            return False
        cancel.last_error = event.reason
        if cancel.attempts >= self._attempts:
            del self._open[event.serial]
            why = f"cancelOrder failed {cancel.attempts} times (last: {event.reason})"
            log.error("robot could not be stopped", extra={"robot": event.serial, "why": why})
            await self._on_gave_up(event.serial, why)
            return True
        delay = FIRST_RETRY * 2 ** (cancel.attempts - 1)
        cancel.retry_at = self._clock.now() + delay
        log.warning(
            "robot did not take the cancel; sending it again",
            extra={
                "robot": event.serial,
                "attempt": cancel.attempts,
                "error": event.reason,
                "retry_in": delay,
            },
        )
        return True

    def order_ended(self, serial: str) -> None:
        """The robot's order ended: there is nothing left to cancel."""
        self._open.pop(serial, None)

    async def retry_due(self) -> None:
        """Send again the cancels whose retry time has come."""
        now = self._clock.now()
        for serial, cancel in list(self._open.items()):
            if cancel.retry_at is None or now < cancel.retry_at:
                continue
            try:
                await self._send(serial)
            except DeviceError as exc:
                # not reachable now (offline, broker down): tried again later, not counted
                cancel.retry_at = now + FIRST_RETRY * 2 ** (cancel.attempts - 1)
                log.debug("cancel not sent", extra={"robot": serial, "error": str(exc)})
