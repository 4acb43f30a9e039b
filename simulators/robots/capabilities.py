"""What a simulated robot can do: the actions it supports, where (instant, on nodes, on edges)
and with which parameters. One description serves both the factsheet the robot publishes
(``protocolFeatures.agvActions``, spec 6.15) and the checks that reject what it cannot do, so the
robot never advertises one thing and accepts another.

``pick`` and ``drop`` (spec 6.8.1) take the parameters the specification defines for them plus
those of the robot model's templates in the line file; the template's parameters are the
vendor's required ones, the others optional. The instant actions carry no parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kernel.config.model import ActionTemplate, RobotModel

JsonDict = dict[str, Any]
Scope = Literal["INSTANT", "NODE", "EDGE"]
ValueType = Literal["BOOL", "NUMBER", "INTEGER", "FLOAT", "STRING", "OBJECT", "ARRAY"]

# spec 6.8.1, parameters of the predefined pick and drop actions and their data types
LOAD_HANDLING_PARAMETERS: Mapping[str, ValueType] = {
    "lhd": "STRING",
    "stationType": "STRING",
    "stationName": "STRING",
    "loadType": "STRING",
    "loadId": "STRING",
    "height": "FLOAT",
    "depth": "FLOAT",
    "side": "STRING",
}
INSTANT_ACTIONS: Mapping[str, str] = {
    "cancelOrder": "stop and delete the current order, cancelling its actions",
    "factsheetRequest": "publish the factsheet again",
    "stateRequest": "publish a state message now",
    "startPause": "stop driving; actions may continue",
    "stopPause": "resume driving",
    "startCharging": "start charging on a charger node",
    "stopCharging": "stop charging so that a new order can be taken",
}


def _type_of(value: object) -> ValueType:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "FLOAT"
    return "STRING"


@dataclass(frozen=True)
class ParameterSpec:
    key: str
    value_type: ValueType
    optional: bool = True

    def accepts(self, value: object) -> bool:
        """Whether ``value`` (decoded JSON) has this parameter's data type."""
        match self.value_type:
            case "BOOL":
                return isinstance(value, bool)
            case "INTEGER":
                return isinstance(value, int) and not isinstance(value, bool)
            case "FLOAT" | "NUMBER":
                return isinstance(value, int | float) and not isinstance(value, bool)
            case "STRING":
                return isinstance(value, str)
            case "OBJECT":
                return isinstance(value, dict)
            case "ARRAY":
                return isinstance(value, list)

    def to_json(self) -> JsonDict:
        return {"key": self.key, "valueDataType": self.value_type, "isOptional": self.optional}


@dataclass(frozen=True)
class ActionSpec:
    action_type: str
    scopes: frozenset[Scope]
    parameters: tuple[ParameterSpec, ...] = ()
    description: str = ""

    def parameter(self, key: str) -> ParameterSpec | None:
        return next((p for p in self.parameters if p.key == key), None)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.parameters if not p.optional)

    def to_json(self) -> JsonDict:
        out: JsonDict = {
            "actionType": self.action_type,
            "actionDescription": self.description,
            "actionScopes": sorted(self.scopes),
        }
        if self.parameters:
            out["actionParameters"] = [p.to_json() for p in self.parameters]
        return out


@dataclass(frozen=True)
class Capabilities:
    """Every action one robot model supports, by action type."""

    actions: Mapping[str, ActionSpec]

    def action(self, action_type: str, scope: Scope) -> ActionSpec | None:
        """The action of ``action_type`` if the robot can do it in ``scope``."""
        spec = self.actions.get(action_type)
        return spec if spec is not None and scope in spec.scopes else None

    def types(self, scope: Scope) -> tuple[str, ...]:
        return tuple(t for t, a in self.actions.items() if scope in a.scopes)

    def factsheet_actions(self) -> list[JsonDict]:
        """``protocolFeatures.agvActions`` of the factsheet (spec 6.15)."""
        return [a.to_json() for a in self.actions.values()]


def _load_handling(action_type: str, template: ActionTemplate, description: str) -> ActionSpec:
    params = [
        ParameterSpec(key, LOAD_HANDLING_PARAMETERS.get(key, _type_of(value)), optional=False)
        for key, value in template.parameters.items()
    ]
    params += [
        ParameterSpec(key, value_type)
        for key, value_type in LOAD_HANDLING_PARAMETERS.items()
        if key not in template.parameters
    ]
    return ActionSpec(action_type, frozenset({"NODE"}), tuple(params), description)


def capabilities(model: RobotModel) -> Capabilities:
    """The actions a robot of ``model`` supports."""
    actions = {
        "pick": _load_handling("pick", model.pick, "pick a load (a tote) onto the vehicle"),
        "drop": _load_handling("drop", model.drop, "drop a load the vehicle carries"),
    }
    for action_type, description in INSTANT_ACTIONS.items():
        actions[action_type] = ActionSpec(action_type, frozenset({"INSTANT"}), (), description)
    return Capabilities(actions)
