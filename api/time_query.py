"""Time bounds in query strings: RFC 3339 date-times with a zone, checked field by field.

``GET /v1/orders`` takes ``created_after``/``created_before`` and ``due_after``/``due_before``.
Each must be a full RFC 3339 date-time (``2030-06-03T16:00:00Z`` or with a numeric offset); a
date alone, a time without a zone or a number is refused with a 422 that names the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from api.problems import FieldError, validation_problem

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")

EXAMPLE = "2030-06-03T16:00:00Z"


def _parse(value: str) -> datetime:
    """``value`` as an aware datetime, or ValueError saying what is wrong."""
    if not _RFC3339.match(value):
        raise ValueError(
            f"{value[:64]!r} is not an RFC 3339 date-time with a time zone (e.g. {EXAMPLE})"
        )
    text = value.upper()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    main, _, rest = text.partition(".")
    if rest:  # Python keeps microseconds: cut longer fractions, keep the offset
        digits = re.match(r"\d+", rest)
        assert digits is not None
        text = f"{main}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end() :]}"
    try:
        parsed = datetime.fromisoformat(text)
        parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{value[:64]!r} is not a valid date and time") from None
    return parsed


def parse_bounds(values: Mapping[str, str | None]) -> dict[str, datetime | None]:
    """Each named query value parsed; one 422 problem naming every parameter at fault."""
    parsed: dict[str, datetime | None] = {}
    errors: list[FieldError] = []
    for name, value in values.items():
        if value is None:
            parsed[name] = None
            continue
        try:
            parsed[name] = _parse(value)
        except ValueError as exc:
            errors.append(FieldError(field=name, message=str(exc)))
    if errors:
        raise validation_problem(errors)
    return parsed
