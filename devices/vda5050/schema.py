"""The official VDA 5050 JSON schemas, compiled once, and validation at the protocol boundary.

Every message linectl publishes is checked against the schema of the robot's protocol version,
and every message it receives is parsed and checked here before anything else looks at it.
Errors come back as short readable strings (``"$.nodes[0].sequenceId: 'x' is not of type
'integer'"``), never as validator exceptions.

Two validators are built from the same vendored schema files, unchanged:

- the *fast* one, generated Python code from ``fastjsonschema``, decides whether a message is
  valid. The schemas declare draft 2020-12 but use only keywords whose meaning is the same in
  the drafts fastjsonschema implements (``type``, ``properties``, ``required``, ``items`` with
  one schema, ``enum``, ``minimum``, ``maximum``, ``format`` and ``$ref`` into ``definitions``
  with no sibling keywords); :func:`check_keywords` asserts this when a schema is loaded.
- the *reference* one, ``jsonschema``'s Draft 2020-12 validator, describes what is wrong with a
  message the fast one refused (all errors with their paths, not only the first).

Both assert ``format: date-time`` with the same RFC 3339 check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final, Literal

import fastjsonschema
import orjson
from jsonschema import Draft202012Validator, FormatChecker
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
# the keywords the fast validator may meet: their meaning is the same in every draft since 6
KEYWORDS: Final = frozenset(
    {"type", "properties", "required", "items", "enum", "minimum", "maximum", "format", "$ref"}
)
ANNOTATIONS: Final = frozenset(
    {
        "$schema",
        "$id",
        "title",
        "description",
        "examples",
        "unit",
        "definitions",
        "action",
        "subtopic",
    }
)
# RFC 3339 date-time (the profile of ISO 8601 that JSON Schema's ``date-time`` means)
DATE_TIME: Final = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
_DATE_TIME = re.compile(DATE_TIME)
# a run of 19 digits: a number orjson may not decode as the standard library does (an integer
# beyond 64 bits); found as a run of zeros once every digit is made a zero (a regular
# expression takes ten times as long on a state message's many long decimals)
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19
FORMATS: Final = FormatChecker(formats=())


class UnknownSchema(KeyError):
    """No vendored schema exists for this (version, topic)."""


def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or _DATE_TIME.match(value) is not None


FORMATS.checks("date-time")(_is_date_time)


def check_keywords(node: object, where: str = "$") -> None:
    """Refuse a schema that uses a keyword the fast validator is not known to treat as draft
    2020-12 does (``$ref`` with siblings, ``$defs``, ``prefixItems``, ``unevaluated*``, ...)."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            check_keywords(item, f"{where}[{i}]")
        return
    if not isinstance(node, dict):
        return
    unknown = set(node) - KEYWORDS - ANNOTATIONS
    if unknown:
        raise ValueError(f"{where}: keywords {sorted(unknown)} are not supported")
    if "$ref" in node and set(node) & (KEYWORDS - {"$ref"}):
        raise ValueError(f"{where}: $ref with sibling keywords is not supported")
    if isinstance(node.get("items"), list):
        raise ValueError(f"{where}: items as an array is not supported")
    for key, value in node.items():
        if key == "properties" or key == "definitions":
            for name, sub in value.items():
                check_keywords(sub, f"{where}.{key}.{name}")
        elif key in ("items",):
            check_keywords(value, f"{where}.{key}")


@cache
def _schema(version: str, topic: str) -> dict[str, Any]:
    if version not in VERSIONS or topic not in TOPICS:
        raise UnknownSchema(f"no VDA 5050 schema for version {version!r}, topic {topic!r}")
    files = resources.files("devices.vda5050").joinpath("schemas", version, f"{topic}.schema")
    schema: dict[str, Any] = json.loads(files.read_text(encoding="utf-8"))
    return schema


@cache
def validator(version: str, topic: str) -> Draft202012Validator:
    """The reference Draft 2020-12 validator for ``topic`` in protocol ``version`` (cached)."""
    schema = _schema(version, topic)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FORMATS)


@cache
def fast_validator(version: str, topic: str) -> Callable[[Any], Any]:
    """The generated validator for ``topic`` in protocol ``version`` (cached); raises
    ``fastjsonschema.JsonSchemaValueException`` on the first problem."""
    schema = _schema(version, topic)
    check_keywords(schema)
    return fastjsonschema.compile(
        schema, formats={"date-time": DATE_TIME}, use_default=False, detailed_exceptions=False
    )


def is_valid(version: str, topic: str, payload: Any) -> bool:
    """Whether ``payload`` validates, by the fast validator."""
    try:
        fast_validator(version, topic)(payload)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


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
    try:
        fast_validator(version, topic)(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        refused = f"$: {exc.message}"
    else:
        return []
    v = validator(version, topic)
    errors = sorted(v.iter_errors(payload), key=lambda e: [str(p) for p in e.absolute_path])
    # the two validators are kept in agreement by the tests; should they ever differ, the
    # message is still refused, with the fast validator's reason
    return [_describe(e) for e in errors[:MAX_ERRORS]] or [refused]


@dataclass(frozen=True)
class Parsed:
    """The outcome of :func:`parse`: a valid message, or why it is not one."""

    payload: dict[str, Any] | None
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.payload is not None


def parse(version: str, topic: str, raw: bytes | bytearray | str) -> Parsed:
    """Decode raw MQTT payload bytes and validate them; never raises on bad input.

    orjson decodes; what it refuses is decoded again by the standard library, which says why
    (or takes it: ``NaN``, escaped lone surrogates), so a payload is accepted or refused with
    the same reason and decoded to the same values as by ``json`` alone. A payload with a run
    of 19 digits or more, which may be an integer beyond 64 bits (orjson makes it a float), is
    decoded by the standard library only."""
    if isinstance(raw, bytes | bytearray) and _LONG_RUN not in raw.translate(_DIGITS_TO_ZERO):
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the standard library says why below
        else:
            if isinstance(decoded, dict):
                errors = validate(version, topic, decoded)
                return Parsed(None, tuple(errors)) if errors else Parsed(decoded)
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
