"""The official VDA 5050 JSON schemas, compiled once, and validation at the protocol boundary.

Every message linectl publishes is checked against the schema of the robot's protocol version,
and every message it receives is parsed and checked here before anything else looks at it.
Errors come back as short readable strings (``"$.nodes[0].sequenceId: 'x' is not of type
'integer'"``), never as jsonschema exceptions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

Version = Literal["2.0.0", "2.1.0"]
VERSIONS: Final[tuple[str, ...]] = ("2.0.0", "2.1.0")
TOPICS: Final[tuple[str, ...]] = (
    "order",
    "instantActions",
    "state",
    "visualization",
    "connection",
    "factsheet",
)
MAX_ERRORS: Final = 10


class UnknownSchema(KeyError):
    """No vendored schema exists for this (version, topic)."""


@cache
def validator(version: str, topic: str) -> Draft202012Validator:
    """The compiled Draft 2020-12 validator for ``topic`` in protocol ``version`` (cached)."""
    if version not in VERSIONS or topic not in TOPICS:
        raise UnknownSchema(f"no VDA 5050 schema for version {version!r}, topic {topic!r}")
    files = resources.files("devices.vda5050").joinpath("schemas", version, f"{topic}.schema")
    schema = json.loads(files.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _path(error: ValidationError) -> str:
    out = "$"
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _describe(error: ValidationError) -> str:
    message = error.message
    if len(message) > 200:
        message = message[:197] + "..."
    return f"{_path(error)}: {message}"


def validate(version: str, topic: str, payload: dict[str, Any]) -> list[str]:
    """Check ``payload`` against the schema; an empty list means valid.

    At most :data:`MAX_ERRORS` errors are reported, ordered by their place in the document.
    """
    v = validator(version, topic)
    if v.is_valid(payload):
        return []
    errors = sorted(v.iter_errors(payload), key=lambda e: [str(p) for p in e.absolute_path])
    return [_describe(e) for e in errors[:MAX_ERRORS]]


@dataclass(frozen=True)
class Parsed:
    """The outcome of :func:`parse`: a valid message, or why it is not one."""

    payload: dict[str, Any] | None
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.payload is not None


def parse(version: str, topic: str, raw: bytes | bytearray | str) -> Parsed:
    """Decode raw MQTT payload bytes and validate them; never raises on bad input."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
        doc = json.loads(text)
    except UnicodeDecodeError as exc:
        return Parsed(None, (f"payload is not UTF-8: {exc.reason} at byte {exc.start}",))
    except json.JSONDecodeError as exc:
        return Parsed(
            None, (f"payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",)
        )
    except RecursionError:
        return Parsed(None, ("payload is not JSON: nested too deeply",))
    if not isinstance(doc, dict):
        return Parsed(None, (f"payload is a JSON {type(doc).__name__}, expected an object",))
    errors = validate(version, topic, doc)
    if errors:
        return Parsed(None, tuple(errors))
    return Parsed(doc)
