"""Reading asyncua event fields and method outputs, checked at the boundary.

Each function returns a plain value or raises :class:`devices.errors.InvalidMessage` naming
the field or output that is malformed; the conveyor's and the cranes' translations build on them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from devices.errors import InvalidMessage


def event_field(event: Any, name: str) -> Any:
    """The event's field ``name``, None when it has none."""
    return getattr(event, name, None)


def event_text(event: Any, name: str, required: bool = True) -> str:
    """A string field; a ``required`` one must not be empty."""
    value = event_field(event, name)
    if not isinstance(value, str) or (required and not value):
        raise InvalidMessage(f"field {name} must be a non-empty string, got {value!r}")
    return value


def event_time(event: Any, fallback: datetime) -> datetime:
    """The event's ``Time`` (UTC when it carries no zone), or ``fallback`` without one."""
    value = event_field(event, "Time")
    if not isinstance(value, datetime):
        return fallback
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def method_outputs(result: Any, count: int, method: str) -> list[Any]:
    """A method call's ``count`` output arguments (asyncua returns a lone one unwrapped)."""
    out = list(result) if isinstance(result, list | tuple) else [result]
    if len(out) != count:
        raise InvalidMessage(f"{method} returned {len(out)} outputs, expected {count}")
    return out


def output_strings(value: Any, name: str, size: int | None) -> list[str]:
    """An output that is a list of strings (None: empty), of ``size`` entries unless None."""
    if value is None:
        value = []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidMessage(f"output {name} must be a list of strings, got {value!r}")
    if size is not None and len(value) != size:
        raise InvalidMessage(f"output {name} has {len(value)} entries, expected {size}")
    return list(value)


def output_flags(value: Any, name: str, size: int) -> list[bool]:
    """An output that is a list of ``size`` Booleans (None: empty)."""
    if value is None:
        value = []
    if not isinstance(value, list | tuple) or not all(isinstance(v, bool) for v in value):
        raise InvalidMessage(f"output {name} must be a list of Booleans, got {value!r}")
    if len(value) != size:
        raise InvalidMessage(f"output {name} has {len(value)} entries, expected {size}")
    return list(value)
