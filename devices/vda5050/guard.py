"""What master control may send one robot now: the order rate cap, the backoff after a rejected
order, and the operator flag after rejections or failed cancels in a row.

Every new order to a robot passes :meth:`OrderGuard.refusal` first (one choke point in
:meth:`devices.vda5050.master.commands.RobotCommands.send_order`). A robot that rejects an order is
given no new one for ``rejection_backoff`` line seconds, doubled with each further rejection in
a row up to ``rejection_backoff_max``; after ``max_rejections`` in a row, or ``cancel_attempts``
``cancelOrder`` actions failed in a row, it needs an operator. It comes back into use when it
reconnects (``connection`` ONLINE after OFFLINE or CONNECTIONBROKEN), when an operator takes it
out of automatic mode and back, or when an operator resumes it (``linectl robot resume``). No
robot gets more than ``max_orders_per_minute`` new orders in any 60 line seconds, whatever asks.
Order updates of the current order are not counted: traffic control sends many.

Pure bookkeeping on line time, no I/O: tested without a broker.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from devices.errors import Refusal

WINDOW = 60.0  # line seconds of the order rate cap


@dataclass(frozen=True)
class GuardSettings:
    max_orders_per_minute: int = 20
    rejection_backoff: float = 5.0
    rejection_backoff_max: float = 120.0
    max_rejections: int = 5
    cancel_attempts: int = 3


class OrderGuard:
    """One robot's order rate, rejections in a row and failed cancels in a row."""

    def __init__(self, settings: GuardSettings | None = None) -> None:
        self.settings = settings or GuardSettings()
        self._sent: deque[float] = deque()
        self.rejections = 0  # rejected orders in a row
        self.failed_cancels = 0  # failed cancelOrder actions in a row
        self.backoff_until = 0.0
        self.operator: str | None = None  # why it needs an operator, None while it does not

    def refusal(self, now: float) -> tuple[Refusal, str] | None:
        """Why a new order may not go out now, or None when it may."""
        if self.operator is not None:
            return Refusal.NEEDS_OPERATOR, self.operator
        if now < self.backoff_until:
            return (
                Refusal.BACKING_OFF,
                f"rejected {self.rejections} order(s) in a row; next order in "
                f"{self.backoff_until - now:.0f} s",
            )
        self._expire(now)
        if len(self._sent) >= self.settings.max_orders_per_minute:
            return (
                Refusal.RATE_LIMITED,
                f"{len(self._sent)} orders in the last minute "
                f"(limit {self.settings.max_orders_per_minute})",
            )
        return None

    def hold(self, now: float) -> str | None:
        """The refusal in words, for the robot's snapshot (None: orders may go out)."""
        refusal = self.refusal(now)
        if refusal is None or refusal[0] is Refusal.NEEDS_OPERATOR:
            return None
        return f"{refusal[0].value}: {refusal[1]}"

    def sent(self, now: float) -> None:
        """A new order went out at ``now``."""
        self._expire(now)
        self._sent.append(now)

    def unsent(self) -> None:
        """The order last counted could not be published after all."""
        if self._sent:
            self._sent.pop()

    def rejected(self, now: float, reason: str) -> bool:
        """The robot rejected a new order; True when it now needs an operator."""
        self.rejections += 1
        s = self.settings
        base = min(s.rejection_backoff, s.rejection_backoff_max)
        delay = min(base * 2 ** (self.rejections - 1), max(s.rejection_backoff_max, base))
        self.backoff_until = now + delay
        if self.rejections >= s.max_rejections and self.operator is None:
            self.operator = f"rejected {self.rejections} orders in a row (last: {reason})"
            return True
        return False

    def accepted(self) -> None:
        """The robot's state shows an order accepted: rejections in a row end."""
        self.rejections = 0
        self.backoff_until = 0.0

    def cancel_failed(self, reason: str) -> bool:
        """A cancelOrder failed or went unanswered; True when the robot now needs an operator."""
        self.failed_cancels += 1
        if self.failed_cancels >= self.settings.cancel_attempts and self.operator is None:
            self.operator = (
                f"could not be stopped: {self.failed_cancels} cancelOrder failed "
                f"in a row (last: {reason})"
            )
            return True
        return False

    def cancel_done(self) -> None:
        self.failed_cancels = 0

    def reset(self) -> str | None:
        """Back into use (reconnected, mode changed, operator); returns the flag it had."""
        flag = self.operator
        self.operator = None
        self.rejections = self.failed_cancels = 0
        self.backoff_until = 0.0
        return flag

    def _expire(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= WINDOW:
            self._sent.popleft()
