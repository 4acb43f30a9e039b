"""Fault scripts: a YAML list of timed faults for the robot fleet simulator.

```yaml
- {at: 30, robot: R02, fault: drop_connection, for: 20}
- {at: 45, robot: R01, fault: freeze_state, for: 60}
- {at: 60, robot: R03, fault: fatal_error, error_type: laserScannerFault}
- {at: 90, robot: R03, fault: clear_error}
```

``at`` is in line seconds after the simulator started. The file is validated as a whole before
anything runs; every problem is reported on its own line as ``file:line: [index].field: what``.
The format is documented in ``docs/simulators.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from kernel.clock import Clock
from kernel.config import safe_yaml
from kernel.config.safe_yaml import YamlRefused
from simulators.robots.state import INJECTED

log = logging.getLogger(__name__)


class FaultTarget(Protocol):
    """What a fault script acts on: the fault injection of the robot fleet simulator."""

    def drop_connection(self, serial: str, for_seconds: float) -> None: ...

    def freeze_state(self, serial: str, for_seconds: float) -> None: ...

    def fatal_error(self, serial: str, error_type: str, description: str) -> None: ...

    def clear_error(self, serial: str, error_type: str | None = None) -> None: ...

    def fail_next_action(self, serial: str) -> None: ...

    def fail_action(self, serial: str, action_type: str, result: str = INJECTED) -> None: ...

    def set_battery(self, serial: str, percent: float) -> None: ...

    def set_operating_mode(self, serial: str, mode: str) -> None: ...


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    at: Annotated[float, Field(ge=0, description="line seconds after the simulator started")]
    robot: Annotated[str, Field(min_length=1, description="serial number of the robot")]


class DropConnection(_Fault):
    fault: Literal["drop_connection"]
    duration: Annotated[float, Field(gt=0, alias="for")]


class FreezeState(_Fault):
    fault: Literal["freeze_state"]
    duration: Annotated[float, Field(gt=0, alias="for")]


class FatalError(_Fault):
    fault: Literal["fatal_error"]
    error_type: Annotated[str, Field(min_length=1)] = "vehicleFault"
    description: str = "injected fatal error"


class ClearError(_Fault):
    fault: Literal["clear_error"]
    error_type: str | None = None


class FailNextAction(_Fault):
    fault: Literal["fail_next_action"]


class FailAction(_Fault):
    fault: Literal["fail_action"]
    action_type: Annotated[str, Field(min_length=1)]
    # the resultDescription the robot reports: a robot model's shortage code makes a failed
    # pick a stock shortage, anything else a fault of the robot
    result: Annotated[str, Field(min_length=1, max_length=200)] = INJECTED


class SetBattery(_Fault):
    fault: Literal["set_battery"]
    percent: Annotated[float, Field(ge=0, le=100)]


class SetOperatingMode(_Fault):
    fault: Literal["set_operating_mode"]
    mode: Literal["AUTOMATIC", "SEMIAUTOMATIC", "MANUAL", "SERVICE", "TEACHIN"]


ScriptedFault = Annotated[
    DropConnection
    | FreezeState
    | FatalError
    | ClearError
    | FailNextAction
    | FailAction
    | SetBattery
    | SetOperatingMode,
    Field(discriminator="fault"),
]
_SCRIPT: TypeAdapter[list[ScriptedFault]] = TypeAdapter(list[ScriptedFault])


class FaultScriptError(Exception):
    """A fault script that cannot be used, with one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


FAULTS = (
    "drop_connection",
    "freeze_state",
    "fatal_error",
    "clear_error",
    "fail_next_action",
    "fail_action",
    "set_battery",
    "set_operating_mode",
)


def _message(kind: str, msg: str, value: object) -> str:
    if kind == "extra_forbidden":
        return "unknown field (check the spelling)"
    if kind == "missing":
        return "required field is missing"
    if kind == "union_tag_not_found":
        return f"required field is missing; one of {', '.join(FAULTS)}"
    if kind == "union_tag_invalid":
        return f"unknown fault {value!r}; one of {', '.join(FAULTS)}"
    shown = repr(value)
    return f"{msg} (got {shown})" if len(shown) <= 60 else msg


def parse_script(text: str, source: str, serials: Sequence[str]) -> list[ScriptedFault]:
    """Validate a fault script against the fleet's serial numbers."""
    try:
        doc = safe_yaml.load(text)
    except YamlRefused as exc:
        raise _refused(source, exc) from None
    data = doc.data
    if data is None:
        return []
    if not isinstance(data, list):
        raise FaultScriptError([f"{source}:1: the document must be a list of faults"])

    def at(index: object) -> str:
        line = doc.lines.get((index,)) if isinstance(index, int) else None
        return f"{source}:{line}" if line is not None else source

    problems: list[tuple[int, str]] = []
    known = set(serials)
    for i, item in enumerate(data):
        robot = item.get("robot") if isinstance(item, dict) else None
        if isinstance(robot, str) and robot and robot not in known:
            problems.append(
                (i, f"{at(i)}: [{i}].robot: no robot {robot!r} in the fleet ({', '.join(serials)})")
            )
    try:
        faults = _SCRIPT.validate_python(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = list(err["loc"])
            index = loc[0] if loc and isinstance(loc[0], int) else -1
            # the discriminator's value appears in the location; it only repeats the fault name
            fields = [str(p) for p in loc[1:] if not (len(loc) > 2 and p == loc[1])]
            value = (err.get("ctx") or {}).get("tag", err.get("input"))
            msg = _message(err["type"], err["msg"], value)
            if err["type"].startswith("union_tag"):
                fields = ["fault"]
            path = f"[{index}]" + "".join(f".{f}" for f in fields)
            problems.append((index, f"{at(index)}: {path}: {msg}"))
        faults = []
    if problems:
        raise FaultScriptError([text for _, text in sorted(problems, key=lambda p: p[0])])
    return faults


def _refused(source: str, exc: YamlRefused) -> FaultScriptError:
    problems = []
    for p in exc.problems:
        where = f"{source}:{p.line}" if p.line is not None else source
        path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in p.path)
        problems.append(f"{where}: {path.lstrip('.') + ': ' if path else ''}{p.message}")
    return FaultScriptError(problems)


def load_script(path: str | Path, serials: Sequence[str]) -> list[ScriptedFault]:
    p = Path(path)
    try:
        text = safe_yaml.read_text(p)
    except YamlRefused as exc:
        raise _refused(str(p), exc) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FaultScriptError([f"{p}: cannot read the fault script: {exc}"]) from None
    return parse_script(text, str(p), serials)


def apply(fleet: FaultTarget, fault: ScriptedFault) -> None:
    """Inject one scripted fault."""
    match fault:
        case DropConnection():
            fleet.drop_connection(fault.robot, fault.duration)
        case FreezeState():
            fleet.freeze_state(fault.robot, fault.duration)
        case FatalError():
            fleet.fatal_error(fault.robot, fault.error_type, fault.description)
        case ClearError():
            fleet.clear_error(fault.robot, fault.error_type)
        case FailNextAction():
            fleet.fail_next_action(fault.robot)
        case FailAction():
            fleet.fail_action(fault.robot, fault.action_type, fault.result)
        case SetBattery():
            fleet.set_battery(fault.robot, fault.percent)
        case SetOperatingMode():
            fleet.set_operating_mode(fault.robot, fault.mode)


async def play(fleet: FaultTarget, script: Sequence[ScriptedFault], clock: Clock) -> None:
    """Inject each fault at its time (line seconds from now), in time order."""
    start = clock.now()
    for fault in sorted(script, key=lambda f: f.at):
        await clock.sleep(start + fault.at - clock.now())
        log.info(
            "scripted fault",
            extra={"robot": fault.robot, "fault": fault.fault, "at": fault.at},
        )
        apply(fleet, fault)
