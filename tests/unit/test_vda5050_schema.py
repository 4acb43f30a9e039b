"""Validation at the boundary turns malformed payloads into readable errors, never exceptions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from controller.linefile.loader import load_reference
from devices.base import RobotAction, RobotOrder, RouteEdge, RouteNode
from devices.vda5050 import schema
from devices.vda5050.messages import (
    ActionState,
    EdgeState,
    ErrorEntry,
    Load,
    MessageBuilder,
    NodeState,
    Pose,
    StateBody,
)
from kernel.clock import ManualClock


def _state(version: str) -> dict[str, object]:
    return MessageBuilder(version, "m", "R01", ManualClock()).state(StateBody())


def test_every_vendored_schema_compiles() -> None:
    for version in schema.VERSIONS:
        for topic in schema.TOPICS:
            assert schema.validator(version, topic) is schema.validator(version, topic)


def test_unknown_version_or_topic_is_refused() -> None:
    with pytest.raises(schema.UnknownSchema):
        schema.validator("1.1.0", "state")
    with pytest.raises(schema.UnknownSchema):
        schema.validator("2.0.0", "telemetry")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "payload is not JSON"),
        (b"\xff\xfe", "payload is not UTF-8"),
        (b"[1, 2]", "payload is a JSON list, expected an object"),
        (b'"state"', "payload is a JSON str, expected an object"),
        (b"", "payload is not JSON"),
    ],
)
def test_undecodable_payloads_are_described(raw: bytes, expected: str) -> None:
    parsed = schema.parse("2.0.0", "state", raw)
    assert not parsed.ok
    assert parsed.errors[0].startswith(expected)


@pytest.mark.parametrize("version", schema.VERSIONS)
def test_schema_errors_name_the_path(version: str) -> None:
    doc = _state(version)
    doc["driving"] = "yes"
    doc["batteryState"] = {"batteryCharge": 50}
    doc.pop("lastNodeId")
    errors = schema.validate(version, "state", doc)
    assert "$: 'lastNodeId' is a required property" in errors
    assert "$.batteryState: 'charging' is a required property" in errors
    assert "$.driving: 'yes' is not of type 'boolean'" in errors


def test_parse_accepts_a_valid_message() -> None:
    import json

    parsed = schema.parse("2.1.0", "state", json.dumps(_state("2.1.0")).encode())
    assert parsed.ok
    assert parsed.payload is not None and parsed.payload["serialNumber"] == "R01"


def test_errors_are_capped() -> None:
    errors = schema.validate("2.0.0", "order", {})
    assert 0 < len(errors) <= schema.MAX_ERRORS


# --- the fast validator agrees with the reference (jsonschema, draft 2020-12) ------------------


def _samples(version: str) -> dict[str, list[dict[str, Any]]]:
    """Valid messages of every topic, built as master control and the simulator build them."""
    clock = ManualClock()
    builder = MessageBuilder(version, "m", "R01", clock)
    line = load_reference(env={})
    model = line.robots.models[line.robots.fleet[0].model]
    pick = RobotAction("a1", "pick", "HARD", (("lhd", "lhd1"), ("loadId", "T1"), ("n", 2)))
    order = RobotOrder(
        "o1",
        (RouteNode("A", 0.0, 0.0, "floor-1"), RouteNode("B", 1.5, 0.0, "floor-1", (pick,))),
        (RouteEdge("A", "B", 1.5, max_speed=1.0),),
    )
    busy = StateBody(
        order_id="o1",
        order_update_id=2,
        last_node_id="A",
        last_node_sequence_id=0,
        node_states=[NodeState("B", 2, True, 1.5, 0.0, "floor-1"), NodeState("C", 4, False)],
        edge_states=[EdgeState("A-B-1", 1)],
        action_states=[ActionState("a1", "pick", "RUNNING"), ActionState("a0", "x", "FAILED", "r")],
        driving=True,
        pose=Pose(0.5, 0.0, 0.1, "floor-1"),
        velocity=(0.5, 0.0, 0.0),
        loads=[Load("T1", "tote", "lhd1")],
        battery_charge=55.5,
        charging=True,
        operating_mode="SEMIAUTOMATIC",
        errors=[ErrorEntry("orderError", "WARNING", "d", (("orderId", "o1"),))],
        map_ids=("floor-1",),
    )
    return {
        "order": [builder.order(order), builder.order(order, order_update_id=3)],
        "instantActions": [builder.instant_actions([pick, RobotAction("c", "cancelOrder")])],
        "state": [builder.state(StateBody()), builder.state(busy)],
        "connection": [builder.connection("ONLINE"), builder.connection("CONNECTIONBROKEN")],
        "visualization": [builder.visualization(Pose(1, 2, 3, "m"), (0.1, 0.2, 0.3))],
        "factsheet": [builder.factsheet(model, "series")],
    }


MUTANTS: tuple[object, ...] = (None, "x", "", -1, -0.5, 1.0, 2, 1e30, True, {}, [], [1])


def _mutations(doc: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every document that differs from ``doc`` in one place: a value replaced or a key gone."""
    if isinstance(doc, dict):
        items: list[tuple[str | int, Any]] = list(doc.items())
    elif isinstance(doc, list):
        items = list(enumerate(doc))
    else:
        return
    for key, value in items:
        where = (*path, key)
        for mutant in MUTANTS:
            if mutant != value or type(mutant) is not type(value):
                yield f"{where} = {mutant!r}", _replaced(doc, key, mutant)
        if isinstance(doc, dict):
            yield f"del {where}", {k: v for k, v in doc.items() if k != key}
        for label, sub in _mutations(value, where):
            yield label, _replaced(doc, key, sub)


def _replaced(doc: Any, key: str | int, value: Any) -> Any:
    if isinstance(doc, dict):
        return {**doc, key: value}
    out = list(doc)
    out[key] = value  # type: ignore[index]
    return out


@pytest.mark.parametrize("version", schema.VERSIONS)
def test_fast_and_reference_validators_agree(version: str) -> None:
    checked = 0
    for topic, docs in _samples(version).items():
        for doc in docs:
            assert schema.is_valid(version, topic, doc), topic
            assert schema.validator(version, topic).is_valid(doc), topic
            for label, mutated in _mutations(doc):
                fast = schema.is_valid(version, topic, mutated)
                reference = schema.validator(version, topic).is_valid(mutated)
                assert fast == reference, (version, topic, label, fast)
                checked += 1
    assert checked > 2000


@pytest.mark.parametrize(
    ("stamp", "ok"),
    [
        ("2024-03-01T12:00:00.000Z", True),
        ("2024-03-01T12:00:00Z", True),
        ("2024-03-01t12:00:00.5+01:00", True),
        ("2024-03-01 12:00:00Z", False),
        ("2024-03-01T12:00:00", False),
        ("2024-13-01T12:00:00Z", False),
        ("yesterday", False),
    ],
)
def test_both_validators_check_the_timestamp_format(stamp: str, ok: bool) -> None:
    doc = MessageBuilder("2.1.0", "m", "R01", ManualClock()).connection("ONLINE")
    doc["timestamp"] = stamp
    assert schema.is_valid("2.1.0", "connection", doc) is ok
    assert schema.validator("2.1.0", "connection").is_valid(doc) is ok


def test_the_fast_validator_is_used_only_on_keywords_it_treats_as_2020_12_does() -> None:
    for version in schema.VERSIONS:
        for topic in schema.TOPICS:
            schema.fast_validator(version, topic)
    with pytest.raises(ValueError, match="prefixItems"):
        schema.check_keywords({"type": "array", "prefixItems": [{"type": "string"}]})
    with pytest.raises(ValueError, match="sibling"):
        schema.check_keywords({"properties": {"a": {"$ref": "#/x", "type": "string"}}})


def _parse_with_json_only(version: str, raw: bytes) -> schema.Parsed:
    """What :func:`schema.parse` gave when the standard library alone decoded."""
    import json

    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return schema.Parsed(None, (f"payload is not UTF-8: {exc.reason} at byte {exc.start}",))
    except json.JSONDecodeError as exc:
        return schema.Parsed(
            None, (f"payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",)
        )
    if not isinstance(doc, dict):
        return schema.Parsed(None, (f"payload is a JSON {type(doc).__name__}, expected an object",))
    errors = schema.validate(version, "state", doc)
    return schema.Parsed(None, tuple(errors)) if errors else schema.Parsed(doc)


def _state_text(**replace: str) -> bytes:
    import json

    text = json.dumps(_state("2.0.0"))
    for key, value in replace.items():
        text = text.replace(f'"{key}": {json.dumps(_state("2.0.0")[key])}', f'"{key}": {value}')
    return text.encode()


@pytest.mark.parametrize(
    "raw",
    [
        _state_text(),
        _state_text(orderUpdateId="NaN"),  # json takes NaN (then the schema decides)
        _state_text(orderUpdateId="Infinity"),
        _state_text(orderUpdateId="123456789012345678901234567890"),  # beyond 64 bits
        _state_text(orderUpdateId="18446744073709551616"),  # 2**64
        _state_text(orderUpdateId="-9223372036854775809"),  # below -2**63
        _state_text(orderId='"12345678901234567890123"'),  # a long run of digits in a string
        _state_text(orderId='"\\ud800"'),  # an escaped lone surrogate
        _state_text(orderUpdateId="1.0"),
        _state_text(driving="1"),
        _state_text(orderId='"a", "orderId": 5'),  # a repeated key: the last one counts
        b'{"headerId": 1,}',
        b"{not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"state"',
        b"",
        b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
def test_parse_decodes_as_the_standard_library_does(raw: bytes) -> None:
    """orjson decodes, and what it refuses is decoded again by json: the same payloads are
    accepted, with the same values, and refused with the same reasons."""
    parsed = schema.parse("2.0.0", "state", raw)
    if len(raw) > 100_000:
        assert parsed.errors == ("payload is not JSON: nested too deeply",)
        return
    expected = _parse_with_json_only("2.0.0", raw)
    assert parsed.errors == expected.errors
    assert repr(parsed.payload) == repr(expected.payload)  # the same values and types
