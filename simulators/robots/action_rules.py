"""Whether a simulated robot can take the actions it is sent, as pure functions of the actions,
the robot's :class:`~simulators.robots.capabilities.Capabilities` and the action ids it knows.

Spec 6.6.6 makes ``actionId`` the "unique ID to identify the action and map them to the
actionState"; an id used twice, or one the robot still reports in ``actionStates``, makes the
message ambiguous, so it is malformed (``validationError``, 6.6.4.1). So are parameters that are
not those the factsheet declares for the action: unknown keys, a required key missing, a key
twice, a value of another data type (7.1 wants the "list of parameters if error was caused by
erroneous action parameters" as a reference: ``actionParameters``). An action type the robot
cannot perform where it is asked for is an ``orderError`` in an order (6.6.4.2: "actions it cannot
perform"); in ``instantActions`` every such problem is a ``validationError`` referencing the
action, and the action gets no action state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from devices.vda5050.messages import ErrorEntry
from simulators.robots.capabilities import ActionSpec, Capabilities

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class ActionProblem:
    """Why one action is refused."""

    error_type: str  # validationError or orderError
    description: str
    action_id: str
    parameters: tuple[str, ...] = ()  # the parameter keys at fault, if any

    def references(self) -> dict[str, str]:
        refs = {"actionId": self.action_id}
        if self.parameters:
            refs["actionParameters"] = ",".join(self.parameters)
        return refs


def parameter_problem(action: JsonDict, spec: ActionSpec) -> ActionProblem | None:
    """What is wrong with ``action``'s parameters for an action declared as ``spec``."""
    action_id, kind = action["actionId"], action["actionType"]
    params: list[JsonDict] = action.get("actionParameters") or []
    counts = Counter(p["key"] for p in params)
    twice = tuple(sorted(k for k, n in counts.items() if n > 1))
    if twice:
        return ActionProblem(
            "validationError",
            f"{kind} parameter(s) given twice: {', '.join(twice)}",
            action_id,
            twice,
        )
    unknown = tuple(k for k in counts if spec.parameter(k) is None)
    if unknown:
        return ActionProblem(
            "validationError",
            f"{kind} has no parameter(s) {', '.join(unknown)}",
            action_id,
            unknown,
        )
    missing = tuple(k for k in spec.required if k not in counts)
    if missing:
        return ActionProblem(
            "validationError",
            f"{kind} needs parameter(s) {', '.join(missing)}",
            action_id,
            missing,
        )
    mistyped = []
    for p in params:
        declared = spec.parameter(p["key"])
        if declared is not None and not declared.accepts(p["value"]):
            mistyped.append(f"{p['key']} must be {declared.value_type}")
    if mistyped:
        keys = tuple(m.split(" ", 1)[0] for m in mistyped)
        return ActionProblem("validationError", f"{kind}: {'; '.join(mistyped)}", action_id, keys)
    return None


def order_actions(order: JsonDict) -> Iterator[JsonDict]:
    """Every action of an order, node actions then edge actions, in message order."""
    for node in order["nodes"]:
        yield from node["actions"]
    for edge in order["edges"]:
        yield from edge["actions"]


def repeated_action_id(order: JsonDict, known: Collection[str]) -> ActionProblem | None:
    """An action id used twice in ``order`` or already among ``known``."""
    seen: set[str] = set()
    for action in order_actions(order):
        action_id = action["actionId"]
        if action_id in seen:
            return ActionProblem(
                "validationError", f"actionId {action_id!r} is used twice in the order", action_id
            )
        if action_id in known:
            return ActionProblem(
                "validationError",
                f"actionId {action_id!r} is already in use on the vehicle",
                action_id,
            )
        seen.add(action_id)
    return None


def node_action_problem(
    action: JsonDict, capabilities: Capabilities, *, strict: bool
) -> ActionProblem | None:
    """Whether the robot can perform ``action`` on a node."""
    spec = capabilities.action(action["actionType"], "NODE")
    if spec is None:
        return ActionProblem(
            "orderError",
            f"action {action['actionType']!r} is not supported on nodes",
            action["actionId"],
        )
    return parameter_problem(action, spec) if strict else None


@dataclass(frozen=True)
class InstantCheck:
    """The instant actions of one message the robot takes, and the warnings for the others."""

    accepted: tuple[JsonDict, ...]
    rejected: tuple[ErrorEntry, ...] = ()


def check_instant_actions(
    message: JsonDict, capabilities: Capabilities, known: Collection[str]
) -> InstantCheck:
    """Split a schema-valid ``instantActions`` message into what the robot does and what it
    refuses (strict profile); ``known`` are the action ids in the robot's ``actionStates``."""
    actions: list[JsonDict] = message["actions"]
    counts = Counter(a["actionId"] for a in actions)
    accepted: list[JsonDict] = []
    rejected: list[ErrorEntry] = []
    for action in actions:
        problem = _instant_problem(action, capabilities, known, counts)
        if problem is None:
            accepted.append(action)
            continue
        refs = [*problem.references().items(), ("topic", "instantActions")]
        refs.append(("headerId", str(message["headerId"])))
        rejected.append(ErrorEntry(problem.error_type, "WARNING", problem.description, tuple(refs)))
    return InstantCheck(tuple(accepted), tuple(rejected))


def _instant_problem(
    action: JsonDict, capabilities: Capabilities, known: Collection[str], counts: Counter[str]
) -> ActionProblem | None:
    action_id, kind = action["actionId"], action["actionType"]
    if counts[action_id] > 1:
        return ActionProblem(
            "validationError", f"actionId {action_id!r} is used twice in the message", action_id
        )
    if action_id in known:
        return ActionProblem(
            "validationError", f"actionId {action_id!r} is already in use on the vehicle", action_id
        )
    spec = capabilities.action(kind, "INSTANT")
    if spec is None:
        return ActionProblem(
            "validationError", f"{kind!r} is not an instant action of this vehicle", action_id
        )
    return parameter_problem(action, spec)
