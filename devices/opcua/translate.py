"""The OPC UA boundary: asyncua events and exceptions in, linectl values and errors out.

Event fields are checked here, once; a malformed event raises
:class:`devices.errors.InvalidMessage` and changes nothing else. asyncua exceptions are mapped to
the device error tree in :func:`translate_error` (the only place that knows them).
"""

from __future__ import annotations

import asyncio
import errno
from datetime import datetime
from typing import Any

from asyncua import ua

from devices.base import BeltItem, DivertRecord, ItemDiverted, ItemScanned
from devices.errors import CommandRejected, DeviceError, DeviceUnavailable, InvalidMessage
from devices.opcua.fields import (
    event_field,
    event_text,
    event_time,
    method_outputs,
    output_flags,
    output_strings,
)

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

# Socket errors of a link that went away (the rest of OSError may be a local fault).
_LINK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ENETDOWN,
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ETIMEDOUT,
    }
)

# What the adapter may catch from asyncua and the network.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    ua.UaError,
    OSError,
    asyncio.TimeoutError,
)


def link_lost(exc: BaseException) -> bool:
    """True for an exception that only says the connection to the server broke (closed, reset,
    refused, timed out, or a status code of the conversation), not that the server said no."""
    if isinstance(exc, ua.UaStatusCodeError):
        return exc.code in _COMMUNICATION_CODES
    return isinstance(exc, ConnectionError | TimeoutError | asyncio.IncompleteReadError) or (
        isinstance(exc, OSError) and exc.errno is not None and exc.errno in _LINK_ERRNOS
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


def scan_from_event(event: Any, fallback_scanner: str, now: datetime) -> ItemScanned:
    """An ``ItemScanned`` from a ScanEventType event (asyncua ``Event``)."""
    codes = event_field(event, "Codes")
    if codes is None:
        codes = []
    if not isinstance(codes, list | tuple) or not all(isinstance(c, str) and c for c in codes):
        raise InvalidMessage(f"field Codes must be a list of strings, got {codes!r}")
    source = event_field(event, "SourceName")
    return ItemScanned(
        scanner_id=source if isinstance(source, str) and source else fallback_scanner,
        item_id=event_text(event, "ItemId"),
        codes=tuple(codes),
        at=event_time(event, now),
    )


def divert_from_event(event: Any, now: datetime) -> ItemDiverted:
    """An ``ItemDiverted`` from a DivertCompletedEventType event."""
    success = event_field(event, "Success")
    if not isinstance(success, bool):
        raise InvalidMessage(f"field Success must be a Boolean, got {success!r}")
    sequence = event_field(event, "Sequence")  # absent on a server without the divert journal
    if sequence is not None and (not isinstance(sequence, int) or sequence < 1):
        raise InvalidMessage(f"field Sequence must be a positive integer, got {sequence!r}")
    return ItemDiverted(
        divert_id=event_text(event, "DivertId"),
        item_id=event_text(event, "ItemId"),
        chute_id=event_text(event, "ChuteId"),
        ok=success,
        at=event_time(event, now),
        sequence=sequence,
    )


def tracking_from_outputs(result: Any) -> tuple[BeltItem, ...]:
    """The items of a ``Tracking()`` call: ItemIds, ToteIds, Zones, OnBelt, Requested."""
    item_ids, tote_ids, zones, on_belt, requested = method_outputs(result, 5, "Tracking")
    ids = output_strings(item_ids, "ItemIds", None)
    n = len(ids)
    totes = output_strings(tote_ids, "ToteIds", n)
    where = output_strings(zones, "Zones", n)
    belt = output_flags(on_belt, "OnBelt", n)
    chutes = output_strings(requested, "Requested", n)
    return tuple(
        BeltItem(i, t, z, b, c or None)
        for i, t, z, b, c in zip(ids, totes, where, belt, chutes, strict=True)
    )


def journal_from_outputs(result: Any) -> tuple[int, list[DivertRecord]]:
    """``Journal(Since)``: the highest sequence so far and the entries after ``Since``."""
    last, sequences, item_ids, tote_ids, chute_ids, ok = method_outputs(result, 6, "Journal")
    if not isinstance(last, int) or last < 0:
        raise InvalidMessage(f"output Last must be a non-negative integer, got {last!r}")
    seqs = [] if sequences is None else sequences
    if not isinstance(seqs, list | tuple) or not all(isinstance(v, int) for v in seqs):
        raise InvalidMessage(f"output Sequences must be a list of integers, got {seqs!r}")
    n = len(seqs)
    items = output_strings(item_ids, "ItemIds", n)
    totes = output_strings(tote_ids, "ToteIds", n)
    chutes = output_strings(chute_ids, "ChuteIds", n)
    flags = output_flags(ok, "Ok", n)
    entries = [
        DivertRecord(s, i, t, c, f)
        for s, i, t, c, f in zip(seqs, items, totes, chutes, flags, strict=True)
    ]
    return last, sorted(entries, key=lambda e: e.sequence)
