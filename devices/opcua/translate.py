"""The OPC UA boundary: asyncua events and exceptions in, linectl values and errors out.

Event fields are checked here, once; a malformed event raises
:class:`devices.errors.InvalidMessage` and changes nothing else. asyncua exceptions are mapped to
the device error tree in :func:`translate_error` (the only place that knows them).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from asyncua import ua

from devices.base import ItemDiverted, ItemScanned
from devices.errors import CommandRejected, DeviceError, DeviceUnavailable, InvalidMessage

# Status codes that say "the conversation broke", not "the device said no".
_COMMUNICATION_CODES = frozenset(
    {
        ua.StatusCodes.BadCommunicationError,
        ua.StatusCodes.BadConnectionClosed,
        ua.StatusCodes.BadDisconnect,
        ua.StatusCodes.BadNotConnected,
        ua.StatusCodes.BadSecureChannelClosed,
        ua.StatusCodes.BadSecureChannelIdInvalid,
        ua.StatusCodes.BadServerHalted,
        ua.StatusCodes.BadServerNotConnected,
        ua.StatusCodes.BadSessionClosed,
        ua.StatusCodes.BadSessionIdInvalid,
        ua.StatusCodes.BadSessionNotActivated,
        ua.StatusCodes.BadShutdown,
        ua.StatusCodes.BadTimeout,
        ua.StatusCodes.BadTooManySessions,
        ua.StatusCodes.BadRequestTimeout,
    }
)

# What the adapter may catch from asyncua and the network.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    ua.UaError,
    OSError,
    asyncio.TimeoutError,
)


def translate_error(exc: BaseException, action: str) -> DeviceError:
    """The device error for an asyncua or network exception raised during ``action``."""
    if isinstance(exc, ua.UaStatusCodeError):
        label = ua.StatusCode(exc.code).name
        if exc.code in _COMMUNICATION_CODES:
            return DeviceUnavailable(f"{action}: {label}")
        return CommandRejected(f"{action}: {label}")
    if isinstance(exc, asyncio.TimeoutError):
        return DeviceUnavailable(f"{action}: timed out")
    if isinstance(exc, OSError):
        return DeviceUnavailable(f"{action}: {exc.strerror or exc}")
    return DeviceUnavailable(f"{action}: {type(exc).__name__}: {exc}")


def _field(event: Any, name: str) -> Any:
    return getattr(event, name, None)


def _text(event: Any, name: str, required: bool = True) -> str:
    value = _field(event, name)
    if not isinstance(value, str) or (required and not value):
        raise InvalidMessage(f"field {name} must be a non-empty string, got {value!r}")
    return value


def _time(event: Any, fallback: datetime) -> datetime:
    value = _field(event, "Time")
    if not isinstance(value, datetime):
        return fallback
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def scan_from_event(event: Any, fallback_scanner: str, now: datetime) -> ItemScanned:
    """An ``ItemScanned`` from a ScanEventType event (asyncua ``Event``)."""
    codes = _field(event, "Codes")
    if codes is None:
        codes = []
    if not isinstance(codes, list | tuple) or not all(isinstance(c, str) and c for c in codes):
        raise InvalidMessage(f"field Codes must be a list of strings, got {codes!r}")
    source = _field(event, "SourceName")
    return ItemScanned(
        scanner_id=source if isinstance(source, str) and source else fallback_scanner,
        item_id=_text(event, "ItemId"),
        codes=tuple(codes),
        at=_time(event, now),
    )


def divert_from_event(event: Any, now: datetime) -> ItemDiverted:
    """An ``ItemDiverted`` from a DivertCompletedEventType event."""
    success = _field(event, "Success")
    if not isinstance(success, bool):
        raise InvalidMessage(f"field Success must be a Boolean, got {success!r}")
    return ItemDiverted(
        divert_id=_text(event, "DivertId"),
        item_id=_text(event, "ItemId"),
        chute_id=_text(event, "ChuteId"),
        ok=success,
        at=_time(event, now),
    )
