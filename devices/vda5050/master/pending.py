"""The newest order or order update of each robot, resent until the robot's state shows it.

Orders go out with QoS 0 (spec 6.2), so one may be lost on the way: it is sent again every
:data:`RESEND_INTERVAL` line seconds until a state message shows it. A resend is a new message:
the next ``headerId`` and a new timestamp, the same ``orderId`` and ``orderUpdateId``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiomqtt

from devices.vda5050.link import keep_cancellation
from devices.vda5050.master.output import QOS, encode
from devices.vda5050.master.state import WATCH_INTERVAL, MasterState
from devices.vda5050.topics import topic
from devices.vda5050.tracker import RobotTracker

log = logging.getLogger("devices.vda5050.master")  # master control logs under one name

RESEND_INTERVAL = 3.0  # line seconds between resends of an unconfirmed order ...
# ... and never less than this many wall seconds: on a fast simulated clock (x30: 3 line s is
# 0.1 s) resends would flood the broker and the robot while the state is merely on its way
RESEND_WALL = 0.5


@dataclass
class PendingOrder:
    """The newest order or order update of a robot, until its state shows it."""

    order_id: str
    message: dict[str, Any]  # as last sent; a resend gets a new header
    sent_at: float


class PendingOrders:
    """Which robot still has to show which order, and resending it meanwhile."""

    def __init__(self, state: MasterState) -> None:
        self._state = state
        self._pending: dict[str, PendingOrder] = {}

    def follow(self, serial: str, order_id: str, message: dict[str, Any]) -> None:
        """Resend ``message`` until the state shows it; it replaces any earlier message."""
        self._pending[serial] = PendingOrder(order_id, message, self._state.clock.now())

    def forget(self, serial: str) -> None:
        """Stop resending to ``serial`` (its order was cancelled)."""
        self._pending.pop(serial, None)

    def settle(self, tracker: RobotTracker) -> None:
        """After a state message: done with the robot's order once its state shows it."""
        pending = self._pending.get(tracker.serial)
        if pending is not None and tracker.confirmed(pending.order_id):
            del self._pending[tracker.serial]

    async def resend(self, client: aiomqtt.Client) -> None:
        """Resend through ``client`` what is still unconfirmed, until cancelled; a broker error
        ends it (the connection is made again)."""
        state = self._state
        while True:
            await state.clock.sleep(WATCH_INTERVAL)
            now = state.clock.now()
            interval = max(RESEND_INTERVAL, RESEND_WALL * state.clock.time_scale)
            for serial, pending in list(self._pending.items()):
                tracker = state.trackers[serial]
                if tracker.confirmed(pending.order_id):
                    self._pending.pop(serial, None)
                elif now - pending.sent_at >= interval:
                    # a new message: the next headerId and the time now, the same order
                    pending.message = state.builders[serial].restamp(pending.message, "order")
                    pending.sent_at = now
                    tracker.resent(pending.order_id, pending.message["headerId"])
                    full_topic = topic(state.interface_name, tracker.manufacturer, serial, "order")
                    payload = encode(pending.message)
                    await keep_cancellation(client.publish(full_topic, payload, qos=QOS["order"]))
                    state.metrics.mqtt_messages.labels("out", "order", "resent").inc()
                    log.debug(
                        "order resent", extra={"serial": serial, "order_id": pending.order_id}
                    )
