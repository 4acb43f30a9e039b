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
battery. :class:`Repeats` validates such a message without the full schema: when the message
differs from the last fully validated message of the same robot in digits only, and decoded
equals it but for those fields (:data:`VARIABLE`), only the fields that need it are checked,
each against its own subschema, with the full validator's outcome (see :class:`Repeats`). Any
other message is fully validated, and refused with the full validator's errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final, Literal, cast

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


def _passing_kinds(leaf: dict[str, Any]) -> frozenset[type]:
    """The Python types of the values that pass the subschema ``leaf`` of a plain value
    whatever they are: those of its ``type`` when it asks nothing more."""
    if set(leaf) & KEYWORDS != {"type"}:
        return frozenset()
    kinds: dict[Any, frozenset[type]] = {
        "number": frozenset({int, float}),
        "integer": frozenset({int}),
        "string": frozenset({str}),
        "boolean": frozenset({bool}),
    }
    return kinds.get(leaf["type"], frozenset())


@cache
def _leaf_kinds(
    version: str, topic: str
) -> tuple[tuple[tuple[str, ...], str, LeafCheck, frozenset[type]], ...]:
    """:func:`variable_leaves` with, for each, the types of the values its check passes
    whatever they are (see :func:`_passing_kinds`)."""
    root = _schema(version, topic)
    out = []
    for parents, key, check in variable_leaves(version, topic):
        node = root
        for name in (*parents, key):
            node = _resolve(root, node["properties"][name])
        out.append((parents, key, check, _passing_kinds(node)))
    return tuple(out)


class _AnyValue:
    """Equal to every value: stands for a variable field in a pattern (Python's ``==`` asks it
    when the other value does not know how to compare with it)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "<any value>"


_ANY: Final = _AnyValue()
_DIGITS: Final = b"0123456789"
_KEY_DIGITS: Final = str.maketrans("", "", "0123456789")  # deletes the digits of a key


def _digit_free_keys(node: Any) -> bool:
    """Whether no object in ``node`` has a key with a digit in it."""
    if type(node) is dict:
        return all(
            key.translate(_KEY_DIGITS) == key and _digit_free_keys(value)
            for key, value in node.items()
        )
    if type(node) is list:
        return all(_digit_free_keys(item) for item in node)
    return True


@dataclass(frozen=True)
class _Pattern:
    """The last fully validated message of a robot, as a repeat is compared with it."""

    skeleton: bytes  # its bytes without their digits
    doc: dict[str, Any]  # decoded, each variable field there replaced by :data:`_ANY`
    # the variable fields whose check the same kind of value does not already pass: (path to
    # the object holding it, key, check)
    checks: tuple[tuple[tuple[str, ...], str, LeafCheck], ...]


class Repeats:
    """Parses one robot's messages of one topic, validating a message that repeats the last
    valid one but for its :data:`VARIABLE` fields by those fields only.

    A message is such a repeat when (1) its bytes without their digits are the last valid
    message's bytes without their digits, and (2) decoded, it equals the last valid message
    with each variable field there taken as equal to any value. (1) leaves the two messages
    differing only in digits: in the values of numbers and in the digits of strings, each
    token of the one of the same kind (string, integer, number with a fraction or exponent,
    ``true``/``false``/``null``, object, array) as the token at its place in the other, provided
    the last valid message's keys have no digits (and it has no ``\\u`` escape, whose hex
    digits could spell a key or letter) so that the keys stand in the same order in both. (2)
    then makes every key, string and number but the variable fields equal to the last valid
    message's; Python's ``==`` taking ``1`` for ``true`` or ``1.0`` is harmless since (1)
    fixed each value's kind. A variable field of the same kind as in the last valid message
    passes a subschema that asks only for that kind (``number``; ``integer`` when the field
    was an integer token; ``string`` without format; ``boolean``); any other (a
    ``date-time``, a bound) is checked. With the keywords the schemas use, a value's validity
    depends on its own subschema alone, so the outcome is the full validator's. Any other
    message is fully validated, and refused with the full validator's errors."""

    def __init__(self, version: str, topic: str) -> None:
        self.version = version
        self.topic = topic
        self._leaves = variable_leaves(version, topic)
        self._pattern: _Pattern | None = None

    def parse(self, raw: bytes | bytearray | str) -> Parsed:
        """As :func:`parse`, with the same outcome."""
        if self._pattern is not None and isinstance(raw, bytes | bytearray):
            doc = self._repeat(raw)
            if doc is not None:
                return Parsed(doc)
        parsed, by_orjson = _parse(self.version, self.topic, raw)
        # a message only the standard library decodes may hold what orjson decodes otherwise
        # (NaN, a long integer): it is never the pattern
        self._pattern = None
        if parsed.payload is not None and by_orjson and isinstance(raw, bytes | bytearray):
            self._pattern = self._make_pattern(bytes(raw))
        return parsed

    def _repeat(self, raw: bytes | bytearray) -> dict[str, Any] | None:
        """The message decoded, if it repeats the last valid one but for valid variable
        fields; None when it is to be fully validated."""
        pattern = self._pattern
        if pattern is None:
            return None
        masked = raw.translate(_DIGITS_TO_ZERO)
        if _LONG_RUN in masked or masked.replace(b"0", b"") != pattern.skeleton:
            return None
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if doc != pattern.doc:
            return None
        for parents, key, check in pattern.checks:
            holder = doc  # the same objects as the pattern's on the way: no lookup fails
            for name in parents:
                holder = holder[name]
            if not check(holder[key]):
                return None
        return cast(dict[str, Any], doc)

    def _make_pattern(self, data: bytes) -> _Pattern | None:
        """The pattern of a valid message decoded by orjson, or None when it cannot be one."""
        if b"\\u" in data:
            return None
        doc = orjson.loads(data)
        try:
            if not _digit_free_keys(doc):
                return None
        except RecursionError:  # nested deeper than Python recurses
            return None
        checks = []
        for parents, key, check, passing in _leaf_kinds(self.version, self.topic):
            holder: Any = doc
            for name in parents:
                holder = holder.get(name) if type(holder) is dict else None
            if type(holder) is not dict or key not in holder:
                continue
            if type(holder[key]) not in passing:
                checks.append((parents, key, check))
            holder[key] = _ANY
        return _Pattern(data.translate(None, _DIGITS), doc, tuple(checks))
