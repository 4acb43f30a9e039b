"""Following the instant actions master control sent one robot until each has an outcome.

An instant action ends FINISHED or FAILED in the robot's ``actionStates``. A robot may also
refuse it without any action state: it reports an error that references the action's
``actionId`` (``noOrderToCancel``, an action it cannot execute) or, for an ``instantActions``
message it could not parse or validate, the message's ``headerId`` with the topic
``instantActions`` (spec 7.1). And a message lost on the way (QoS 0) gets no answer at all.
:class:`InstantActions` turns each of these into one outcome per action: finished, failed with
the robot's errorType and description, or failed because no action state came within the
deadline (line seconds). A ``cancelOrder`` refused with ``noOrderToCancel`` counts as finished:
the robot has no order running, which is what the cancel asked for; so does a ``cancelOrder``
with no answer of its own once the state shows its order no longer running.

Errors are matched by ``headerId`` only when they were not in the state when the message was
sent, so a standing warning about an older message (or a previous controller run's message
with the same ``headerId``) is not taken for an answer. No I/O: tested without a broker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from devices.base import RobotAction
from devices.vda5050.answers import error_key, error_text, references

JsonDict = dict[str, Any]
NOTHING_TO_CANCEL = "noOrderToCancel"
TERMINAL = frozenset({"FINISHED", "FAILED"})


@dataclass(frozen=True)
class Outcome:
    """The end of one instant action: ``failed`` with ``reason``, or finished."""

    order_id: str  # the robot's order when the action was sent ("" if none)
    action_id: str
    action_type: str
    failed: bool
    reason: str = ""
    unanswered: bool = False  # no action state or error came within the deadline


@dataclass
class _Batch:
    order_id: str
    header_id: int
    sent_at: float
    actions: dict[str, str]  # action id -> action type, until each has an outcome
    errors_before: frozenset[str]
    seen: set[str] = field(default_factory=set)  # had an action state


class InstantActions:
    """The instant-action messages of one robot still waiting for an outcome."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self._batches: list[_Batch] = []

    def __len__(self) -> int:
        return sum(len(b.actions) for b in self._batches)

    def track(
        self,
        actions: Iterable[RobotAction],
        header_id: int,
        order_id: str,
        now: float,
        state: JsonDict | None,
    ) -> None:
        before = frozenset(error_key(e) for e in (state or {}).get("errors", []))
        self._batches.append(
            _Batch(order_id, header_id, now, {a.action_id: a.action_type for a in actions}, before)
        )

    def forget(self, header_id: int) -> None:
        """Stop following the message ``header_id`` (it was never sent)."""
        self._batches = [b for b in self._batches if b.header_id != header_id]

    def on_state(self, message: JsonDict) -> list[Outcome]:
        if not self._batches:
            return []
        statuses: dict[str, JsonDict] = {a["actionId"]: a for a in message["actionStates"]}
        errors: list[JsonDict] = message["errors"]
        outcomes: list[Outcome] = []
        for batch in self._batches:
            for action_id, action_type in list(batch.actions.items()):
                outcome = self._outcome(batch, action_id, action_type, statuses, errors)
                if outcome is None and action_type == "cancelOrder":
                    outcome = _order_gone(batch, action_id, message, statuses)
                if outcome is not None:
                    del batch.actions[action_id]
                    outcomes.append(outcome)
        self._batches = [b for b in self._batches if b.actions]
        return outcomes

    def overdue(self, now: float, deadline: float | None = None) -> list[Outcome]:
        """Actions without any action state or error ``deadline`` line seconds (the configured
        one unless given) after sending."""
        deadline = self.deadline if deadline is None else deadline
        outcomes: list[Outcome] = []
        for batch in self._batches:
            if now - batch.sent_at < deadline:
                continue
            for action_id, action_type in list(batch.actions.items()):
                if action_id in batch.seen:
                    continue
                del batch.actions[action_id]
                reason = f"no action state within {deadline:g} s"
                outcomes.append(
                    Outcome(batch.order_id, action_id, action_type, True, reason, unanswered=True)
                )
        self._batches = [b for b in self._batches if b.actions]
        return outcomes

    def _outcome(
        self,
        batch: _Batch,
        action_id: str,
        action_type: str,
        statuses: dict[str, JsonDict],
        errors: list[JsonDict],
    ) -> Outcome | None:
        def end(failed: bool, reason: str = "") -> Outcome:
            return Outcome(batch.order_id, action_id, action_type, failed, reason)

        error = self._error_for(batch, action_id, errors)
        status = statuses.get(action_id)
        if status is not None:
            batch.seen.add(action_id)
            if status["actionStatus"] == "FINISHED":
                return end(False)
            if status["actionStatus"] != "FAILED":
                return None
            if error is not None and error["errorType"] == NOTHING_TO_CANCEL:
                return end(action_type != "cancelOrder", error_text(error))
            described = status.get("resultDescription") or ""
            return end(True, described or (error_text(error) if error else "FAILED"))
        if error is None:
            return None
        if error["errorType"] == NOTHING_TO_CANCEL and action_type == "cancelOrder":
            return end(False, error_text(error))
        return end(True, error_text(error))

    @staticmethod
    def _error_for(batch: _Batch, action_id: str, errors: list[JsonDict]) -> JsonDict | None:
        """The robot's error about this action: one naming its actionId, else a new one naming
        the message's headerId on the instantActions topic."""
        for error in errors:
            if references(error).get("actionId") == action_id:
                return error
        for error in errors:
            refs = references(error)
            if (
                refs.get("headerId") == str(batch.header_id)
                and refs.get("topic", "instantActions") == "instantActions"
                and "actionId" not in refs
                and error_key(error) not in batch.errors_before
            ):
                return error
        return None


def _order_gone(
    batch: _Batch, action_id: str, message: JsonDict, statuses: dict[str, JsonDict]
) -> Outcome | None:
    """A cancelOrder without an answer of its own whose order is no longer running: the robot
    runs another order, or has nothing left to drive or do. The cancel's own state may have
    been in a state message that was lost (QoS 0) or replaced by a new order's; what it asked
    for holds either way."""
    if action_id in statuses:
        return None
    other = message["orderId"] != batch.order_id
    idle = (
        not message["nodeStates"]
        and not message["edgeStates"]
        and all(a["actionStatus"] in TERMINAL for a in statuses.values())
    )
    if not (other or idle):
        return None
    return Outcome(batch.order_id, action_id, "cancelOrder", False, "order no longer running")
