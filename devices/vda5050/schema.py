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

A robot's ``state`` messages mostly repeat the last one but for its header, pose, velocity and
battery. :class:`Repeats` validates such a message without the full schema: when the message,
with those fields (:data:`VARIABLE`) left out, is exactly the last fully validated message of
the same robot with them left out (as JSON: the same keys, values and types, compared on
orjson's serialisation), only the fields are checked, each against its own subschema. With
the keywords the schemas use, a value's validity depends on its own subschema alone, so the
outcome is the full validator's. Any other message is fully validated, and refused with the
full validator's errors.
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
    return _parse(version, topic, raw)[0]


def _parse(version: str, topic: str, raw: bytes | bytearray | str) -> tuple[Parsed, bool]:
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
                return (Parsed(None, tuple(errors)) if errors else Parsed(decoded)), True
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
        doc = json.loads(text)
    except UnicodeDecodeError as exc:
        return Parsed(None, (f"payload is not UTF-8: {exc.reason} at byte {exc.start}",)), False
    except json.JSONDecodeError as exc:
        problem = f"payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        return Parsed(None, (problem,)), False
    except RecursionError:
        return Parsed(None, ("payload is not JSON: nested too deeply",)), False
    if not isinstance(doc, dict):
        return Parsed(None, (f"payload is a JSON {type(doc).__name__}, expected an object",)), False
    errors = validate(version, topic, doc)
    if errors:
        return Parsed(None, tuple(errors)), False
    return Parsed(doc), False


# the fields a state message changes from one to the next while nothing else happens; those
# whose subschema is a plain number, integer, string or boolean (see :func:`_leaf_check`) are
# checked on their own when the rest repeats the robot's last valid message
VARIABLE: Final[tuple[tuple[str, ...], ...]] = (
    ("headerId",),
    ("timestamp",),
    ("agvPosition", "x"),
    ("agvPosition", "y"),
    ("agvPosition", "theta"),
    ("velocity", "vx"),
    ("velocity", "vy"),
    ("velocity", "omega"),
    ("batteryState", "batteryCharge"),
    ("batteryState", "batteryVoltage"),
    ("batteryState", "reach"),
    ("distanceSinceLastNode",),
)
_LEAF_KEYWORDS: Final = frozenset({"type", "minimum", "maximum", "format"})
LeafCheck = Callable[[Any], bool]


def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise ValueError(f"$ref {ref!r} is not supported")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def _leaf_check(leaf: dict[str, Any]) -> LeafCheck | None:
    """A check at least as strict as the subschema ``leaf`` of a plain value, or None when
    ``leaf`` is not one (an enum, an object, an array, several types...)."""
    if set(leaf) & KEYWORDS - _LEAF_KEYWORDS or "type" not in leaf:
        return None
    kind = leaf["type"]
    low = leaf.get("minimum")
    high = leaf.get("maximum")
    form = leaf.get("format")
    if form is not None and (form != "date-time" or kind != "string"):
        return None
    if (low is not None or high is not None) and kind not in ("number", "integer"):
        return None
    if kind == "boolean":
        return lambda v: type(v) is bool
    if kind == "string":
        if form is None:
            return lambda v: type(v) is str
        return lambda v: type(v) is str and _DATE_TIME.match(v) is not None
    if kind not in ("number", "integer"):
        return None
    types = (int,) if kind == "integer" else (int, float)

    def check(v: Any) -> bool:
        # type(), not isinstance: a bool is no number here
        return type(v) in types and (low is None or v >= low) and (high is None or v <= high)

    return check


@cache
def variable_leaves(version: str, topic: str) -> tuple[tuple[tuple[str, ...], str, LeafCheck], ...]:
    """The :data:`VARIABLE` fields of ``topic`` checked on their own: (path to the object
    holding it, key, check). A field counts only when each object on its way is a plain
    ``type: object`` (no enum of whole objects) and its own subschema is a plain value."""
    root = _schema(version, topic)
    out = []
    for path in VARIABLE:
        node: dict[str, Any] | None = root
        for key in path:
            assert node is not None
            if node.get("type") != "object" or set(node) & KEYWORDS - {
                "type",
                "properties",
                "required",
            }:
                node = None
                break
            sub = node.get("properties", {}).get(key)
            node = None if sub is None else _resolve(root, sub)
            if node is None:
                break
        check = None if node is None else _leaf_check(node)
        if check is not None:
            out.append((path[:-1], path[-1], check))
    return tuple(out)


_UNSET: Final = object()


class Repeats:
    """Parses one robot's messages of one topic, validating a message that repeats the
    structure of the last valid one by its :data:`VARIABLE` fields only (see the module)."""

    def __init__(self, version: str, topic: str) -> None:
        self.version = version
        self.topic = topic
        # the variable fields grouped by the object holding them (the message itself: ())
        groups: dict[tuple[str, ...], list[tuple[str, LeafCheck]]] = {}
        for parents, key, check in variable_leaves(version, topic):
            groups.setdefault(parents, []).append((key, check))
        self._groups = tuple((parents, tuple(fields)) for parents, fields in groups.items())
        self._shape: bytes | None = None  # the last valid message without its variable fields

    def parse(self, raw: bytes | bytearray | str) -> Parsed:
        """As :func:`parse`, with the same outcome."""
        if self._shape is not None and isinstance(raw, bytes | bytearray):
            doc = self._repeat(raw)
            if doc is not None:
                return Parsed(doc)
        parsed, by_orjson = _parse(self.version, self.topic, raw)
        # a message only the standard library decodes may hold what orjson writes as null
        # (NaN): it is never the pattern
        doc = parsed.payload
        self._shape = None if doc is None or not by_orjson else self._without_leaves(doc)
        return parsed

    def _repeat(self, raw: bytes | bytearray) -> dict[str, Any] | None:
        """The message decoded, if it repeats the last valid one but for valid variable
        fields; None when it is to be fully validated."""
        if _LONG_RUN in raw.translate(_DIGITS_TO_ZERO):
            return None
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(doc, dict):
            return None
        shape = self._without_leaves(doc, check=True)
        return doc if shape is not None and shape == self._shape else None

    def _without_leaves(self, doc: dict[str, Any], *, check: bool = False) -> bytes | None:
        """orjson's serialisation of ``doc`` with each variable field there set to null;
        None if a field fails its check (``check``) or ``doc`` cannot be serialised."""
        saved: list[tuple[dict[str, Any], str, Any]] = []
        try:
            for parents, fields in self._groups:
                holder: Any = doc
                for name in parents:
                    holder = holder.get(name) if type(holder) is dict else None
                if type(holder) is not dict:
                    continue
                for key, valid in fields:
                    value = holder.get(key, _UNSET)
                    if value is _UNSET:
                        continue
                    if check and not valid(value):
                        return None
                    saved.append((holder, key, value))
                    holder[key] = None
            return orjson.dumps(doc)
        except orjson.JSONEncodeError:
            return None
        finally:
            for holder, key, value in saved:
                holder[key] = value
