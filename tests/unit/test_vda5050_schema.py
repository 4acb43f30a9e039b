"""Validation at the boundary turns malformed payloads into readable errors, never exceptions."""

from __future__ import annotations

import pytest

from controller.clock import ManualClock
from devices.vda5050 import schema
from devices.vda5050.messages import MessageBuilder, StateBody


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
