"""Checking a robot's factsheet (spec 6.15) against what master control will ask of it.

Picking sends the predefined ``pick`` and ``drop`` actions on nodes, with the parameters of the
robot model's templates in the line file. A factsheet that does not list one of these actions,
or does not allow it on nodes, means the robot cannot do the job: it is not used. A template
parameter the factsheet does not declare is reported, since vendors differ in what they accept,
but does not stop the robot from being used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernel.config.model import ActionTemplate, RobotModel

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class FactsheetCheck:
    problems: tuple[str, ...] = ()
    usable: bool = True  # False when an action picking needs is missing or not allowed on nodes


def _check_action(
    action_type: str, template: ActionTemplate, declared: dict[str, JsonDict]
) -> tuple[list[str], bool]:
    entry = declared.get(action_type)
    if entry is None:
        return [f"factsheet lists no {action_type!r} action"], False
    scopes = entry.get("actionScopes", [])
    if "NODE" not in scopes:
        return [f"{action_type!r} is not allowed on nodes (scopes {', '.join(scopes)})"], False
    params = {p["key"] for p in entry.get("actionParameters", [])}
    missing = [k for k in template.parameters if k not in params]
    if missing:
        return [f"{action_type!r} does not declare parameter(s) {', '.join(missing)}"], True
    return [], True


def check_factsheet(factsheet: JsonDict, model: RobotModel) -> FactsheetCheck:
    """Compare a schema-valid factsheet with the model's ``pick``/``drop`` templates."""
    declared: dict[str, JsonDict] = {
        a["actionType"]: a for a in factsheet["protocolFeatures"]["agvActions"]
    }
    problems: list[str] = []
    usable = True
    for action_type, template in (("pick", model.pick), ("drop", model.drop)):
        found, ok = _check_action(action_type, template, declared)
        problems += found
        usable = usable and ok
    return FactsheetCheck(tuple(problems), usable)
