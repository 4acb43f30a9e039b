"""A robot's state message that repeats its last valid one but for its header, pose, velocity and
battery is validated by those fields alone (schema.Repeats), with exactly the outcome of the full
validation: any message that differs elsewhere, or whose changing fields are not valid, is fully
validated and refused with the full validator's errors."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devices.vda5050 import schema
from devices.vda5050.messages import ActionState, MessageBuilder, Pose, StateBody
from kernel.clock import ManualClock

Doc = dict[str, Any]


def _states(version: str) -> list[Doc]:
    builder = MessageBuilder(version, "acme", "R01", ManualClock())
    return [
        builder.state(
            StateBody(
                last_node_id="N1",
                pose=Pose(1.0 + i * 0.05, 2.0, 0.5, "floor-1"),
                velocity=(0.5, 0.0, 0.1),
                battery_charge=80.0 - i * 0.25,
                driving=True,
                action_states=(ActionState("a1", "pick", "RUNNING"),),
            )
        )
        for i in range(3)
    ]


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        *parents, key = path.split(".")
        holder = doc
        for name in parents:
            holder = holder[name]
        holder[key] = value

    return change


def _drop(path: str) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        *parents, key = path.split(".")
        holder = doc
        for name in parents:
            holder = holder[name]
        del holder[key]

    return change


# changes to the third message of a robot, after two valid ones
CHANGES: dict[str, Callable[[Doc], None]] = {
    "none": lambda doc: None,
    # the fields checked on their own: valid and invalid values
    "headerId string": _set("headerId", "7"),
    "headerId float": _set("headerId", 7.5),
    "headerId bool": _set("headerId", True),
    "timestamp not date-time": _set("timestamp", "yesterday"),
    "timestamp number": _set("timestamp", 5),
    "x string": _set("agvPosition.x", "1.0"),
    "x bool": _set("agvPosition.x", False),
    "x null": _set("agvPosition.x", None),
    "x integer": _set("agvPosition.x", 3),
    "x large": _set("agvPosition.x", 1e300),
    "battery above 100": _set("batteryState.batteryCharge", 100.5),
    "battery below 0": _set("batteryState.batteryCharge", -0.1),
    "battery 100": _set("batteryState.batteryCharge", 100),
    "battery object": _set("batteryState.batteryCharge", {"value": 5}),
    "reach negative": _set("batteryState.reach", -1),
    "reach added": _set("batteryState.reach", 12),
    "velocity vx string": _set("velocity.vx", "fast"),
    "velocity dropped": _drop("velocity"),
    "x dropped": _drop("agvPosition.x"),
    "headerId dropped": _drop("headerId"),
    "distance added": _set("distanceSinceLastNode", 1.5),
    "distance string": _set("distanceSinceLastNode", "far"),
    # anything else: fully validated
    "driving string": _set("driving", "yes"),
    "driving as 1": _set("driving", 1),
    "sequence id as 0.0": _set("lastNodeSequenceId", 0.0),
    "sequence id as false": _set("lastNodeSequenceId", False),
    "operating mode unknown": _set("operatingMode", "TURBO"),
    "action status unknown": _set("actionStates", [{"actionId": "a1", "actionStatus": "X"}]),
    "action finished": _set(
        "actionStates", [{"actionId": "a1", "actionType": "pick", "actionStatus": "FINISHED"}]
    ),
    "theta as string": _set("agvPosition.theta", "0.5"),
    "map id as number": _set("agvPosition.mapId", 5),
    "not localised": _set("agvPosition.positionInitialized", False),
    "localisation score above 1": _set("agvPosition.localizationScore", 1.5),
    "pose not an object": _set("agvPosition", 5),
    "battery not an object": _set("batteryState", [80.0]),
    "charging dropped": _drop("batteryState.charging"),
    "serial changed": _set("serialNumber", "R02"),
    "order id": _set("orderId", "o-7"),
    "unknown field": _set("vendorField", {"a": 1}),
    "errors": _set(
        "errors",
        [{"errorType": "e", "errorLevel": "FATAL", "errorReferences": []}],
    ),
    "error level unknown": _set("errors", [{"errorType": "e", "errorLevel": "BAD"}]),
}


def _full(version: str, raw: bytes) -> schema.Parsed:
    return schema.parse(version, "state", raw)


def _same(got: schema.Parsed, expected: schema.Parsed) -> None:
    assert got.errors == expected.errors
    assert repr(got.payload) == repr(expected.payload)  # the same values and types


@pytest.mark.parametrize("version", schema.VERSIONS)
@pytest.mark.parametrize("change", list(CHANGES))
def test_a_state_after_valid_ones_has_the_full_validations_outcome(
    version: str, change: str
) -> None:
    first, second, third = _states(version)
    CHANGES[change](third)
    repeats = schema.Repeats(version, "state")
    for doc in (first, second, third):
        raw = json.dumps(doc).encode()
        _same(repeats.parse(raw), _full(version, raw))


@pytest.mark.parametrize("version", schema.VERSIONS)
def test_the_changing_fields_of_a_repeat_are_checked_and_returned(version: str) -> None:
    first, second, _ = _states(version)
    repeats = schema.Repeats(version, "state")
    assert repeats.parse(json.dumps(first).encode()).ok
    repeat = json.dumps(second).encode()
    assert repeats._repeat(repeat) == second  # taken by the changing fields alone
    bad = copy.deepcopy(second)
    bad["batteryState"]["batteryCharge"] = "full"
    assert repeats._repeat(json.dumps(bad).encode()) is None  # fully validated
    other = copy.deepcopy(second)
    other["driving"] = False
    assert repeats._repeat(json.dumps(other).encode()) is None


@pytest.mark.parametrize("version", schema.VERSIONS)
def test_an_invalid_or_other_message_is_never_the_pattern(version: str) -> None:
    first, second, third = _states(version)
    repeats = schema.Repeats(version, "state")
    assert repeats.parse(json.dumps(first).encode()).ok
    invalid = copy.deepcopy(second)
    invalid["driving"] = "yes"
    assert not repeats.parse(json.dumps(invalid).encode()).ok
    # no pattern after an invalid message: the next one is fully validated
    assert repeats._repeat(json.dumps(third).encode()) is None
    _same(repeats.parse(json.dumps(third).encode()), _full(version, json.dumps(third).encode()))
    # a message only the standard library decodes (NaN) is not the pattern either
    nan = json.dumps(first).replace('"orderUpdateId": 0', '"orderUpdateId": NaN').encode()
    _same(repeats.parse(nan), _full(version, nan))
    assert repeats._repeat(json.dumps(third).encode()) is None
    null = json.dumps(first).replace('"orderUpdateId": 0', '"orderUpdateId": null').encode()
    _same(repeats.parse(null), _full(version, null))
    assert not repeats.parse(null).ok


def test_only_plain_fields_are_checked_on_their_own() -> None:
    for version in schema.VERSIONS:
        leaves = {(*parents, key) for parents, key, _ in schema.variable_leaves(version, "state")}
        assert ("headerId",) in leaves and ("agvPosition", "x") in leaves
        assert leaves <= set(schema.VARIABLE)
    # a field whose subschema is more than a plain value is never checked on its own
    assert schema._leaf_check({"type": "string", "enum": ["A"]}) is None
    assert schema._leaf_check({"type": "object", "properties": {}}) is None
    assert schema._leaf_check({"type": ["number", "string"]}) is None
    check = schema._leaf_check({"type": "integer", "minimum": 0})
    assert check is not None
    assert check(0) and not check(-1) and not check(True) and not check(1.0)


def _raw(doc: Doc) -> bytes:
    return json.dumps(doc).encode()


# changes to the bytes of a robot's third message that keep them the same but for digits: the
# message must still be refused when they make it invalid, or fully validated when it may be
RAW_CHANGES: dict[str, Callable[[bytes], bytes]] = {
    "a number in an empty list": lambda raw: raw.replace(b'"nodeStates": []', b'"nodeStates": [5]'),
    "a digit in a key": lambda raw: raw.replace(b'"driving":', b'"driving2":'),
    "a digit in a key of a changing field": lambda raw: raw.replace(b'"x":', b'"x1":'),
    "month 13 in the timestamp": lambda raw: raw.replace(
        b'"timestamp": "2026-01', b'"timestamp": "2026-13'
    ),
    "a digit in the serial": lambda raw: raw.replace(b'"R01"', b'"R011"'),
    "a digit in the operating mode": lambda raw: raw.replace(b'"AUTOMATIC"', b'"AUTOMATIC1"'),
    "a digit in the action status": lambda raw: raw.replace(b'"RUNNING"', b'"RUNNING0"'),
    "a longer number": lambda raw: raw.replace(
        b'"lastNodeSequenceId": 0', b'"lastNodeSequenceId": 10'
    ),
    "a long integer": lambda raw: raw.replace(
        b'"headerId": 2', b'"headerId": 20000000000000000000'
    ),
    "a leading zero": lambda raw: raw.replace(b'"headerId": 2', b'"headerId": 02'),
}


@pytest.mark.parametrize("version", schema.VERSIONS)
@pytest.mark.parametrize("change", list(RAW_CHANGES))
def test_a_state_differing_from_the_last_in_digits_only_has_the_full_validations_outcome(
    version: str, change: str
) -> None:
    first, second, third = (_raw(doc) for doc in _states(version))
    changed = RAW_CHANGES[change](third)
    assert changed != third and changed.translate(None, b"0123456789") == third.translate(
        None, b"0123456789"
    )
    repeats = schema.Repeats(version, "state")
    for raw in (first, second, changed):
        _same(repeats.parse(raw), _full(version, raw))
    if not _full(version, changed).ok:
        assert not repeats.parse(changed).ok


@pytest.mark.parametrize("version", schema.VERSIONS)
def test_a_repeat_whose_numbers_have_other_lengths_is_taken_by_its_changing_fields(
    version: str,
) -> None:
    first, second, third = _states(version)
    repeats = schema.Repeats(version, "state")
    assert repeats.parse(_raw(first)).ok
    second["agvPosition"]["x"] = 0.15000000000000002
    second["headerId"] = 12345
    assert repeats._repeat(_raw(second)) == second
    third["agvPosition"]["x"] = True  # the kind of a changing field differs: not a repeat
    assert repeats._repeat(_raw(third)) is None
    assert not repeats.parse(_raw(third)).ok


@pytest.mark.parametrize("version", schema.VERSIONS)
def test_keys_swapped_where_only_their_digits_differ_are_not_a_repeat(version: str) -> None:
    """With digits in its keys, a message is not the pattern: {"a1": true, "a2": 1} and
    {"a2": true, "a1": 1} differ in digits only and Python takes them as equal."""
    first, second, _ = _states(version)
    first["vendor"] = {"a1": True, "a2": 1}
    second["vendor"] = {"a2": True, "a1": 1}
    repeats = schema.Repeats(version, "state")
    assert repeats.parse(_raw(first)).ok
    assert repeats._repeat(_raw(second)) is None


@pytest.mark.parametrize("version", schema.VERSIONS)
def test_a_value_whose_escape_differs_in_its_digits_is_refused(version: str) -> None:
    """The hex digits of an escape are digits: "\\u0041UTOMATIC" (AUTOMATIC) and
    "\\u0031UTOMATIC" differ in digits only."""
    first, second, _ = _states(version)
    escaped = _raw(first).replace(b'"AUTOMATIC"', b'"\\u0041UTOMATIC"')
    repeats = schema.Repeats(version, "state")
    assert repeats.parse(escaped).ok
    wrong = _raw(second).replace(b'"AUTOMATIC"', b'"\\u0031UTOMATIC"')
    assert repeats._repeat(wrong) is None
    _same(repeats.parse(wrong), _full(version, wrong))
    assert not repeats.parse(wrong).ok


@pytest.mark.parametrize("version", schema.VERSIONS)
def test_keys_swapped_where_only_their_escapes_differ_are_not_a_repeat(version: str) -> None:
    """{"\\u0061": true, "\\u0062": 1} ({"a": true, "b": 1}) and {"\\u0062": true,
    "\\u0061": 1} differ in digits only: a message with an escape is not the pattern."""
    first, second, _ = _states(version)
    first["vendor"] = second["vendor"] = {"KEYS": True}
    keys = b'{"\\u0061": true, "\\u0062": 1}', b'{"\\u0062": true, "\\u0061": 1}'
    repeats = schema.Repeats(version, "state")
    assert repeats.parse(_raw(first).replace(b'{"KEYS": true}', keys[0])).ok
    swapped = _raw(second).replace(b'{"KEYS": true}', keys[1])
    assert repeats._repeat(swapped) is None
    assert repeats.parse(swapped).payload == {**second, "vendor": {"b": True, "a": 1}}


@pytest.fixture
def default_recursion_limit() -> Iterator[None]:
    """Python's default recursion limit for the test (other tests' libraries may raise it)."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


@pytest.mark.parametrize("version", schema.VERSIONS)
def test_a_valid_message_nested_deeper_than_python_recurses_is_taken_in(
    version: str, default_recursion_limit: None
) -> None:
    first, _, _ = _states(version)
    first["vendor"] = "NESTED"
    raw = _raw(first).replace(b'"NESTED"', b'{"a": ' * 1000 + b"1" + b"}" * 1000)
    repeats = schema.Repeats(version, "state")
    assert repeats.parse(raw).ok and _full(version, raw).ok
    assert repeats._repeat(raw) is None  # not a pattern: fully validated each time
