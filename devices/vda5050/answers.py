"""Reading the robot's ``errors`` as answers to what master control sent (spec 6.6.4, 7.1).

A robot that rejects an order or cannot execute an action says so in an error whose
``errorReferences`` name what it is about: the ``orderId`` (with or without ``orderUpdateId``),
the ``actionId``, or only the ``headerId`` and ``topic`` of a message it could not parse or
validate. These helpers match such errors to what was sent; an error matched by ``headerId``
alone must be new since the message went out (``errors_before``), since a standing warning may
name a message of a previous controller run that had the same ``headerId``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

JsonDict = dict[str, Any]
# the error types a vehicle rejects an order or an order update with (spec 6.6.4)
REJECTIONS = frozenset({"validationError", "orderError", "noRouteError", "orderUpdateError"})


def error_key(error: JsonDict) -> str:
    """The error as a comparable value (to tell new errors from standing ones)."""
    return json.dumps(error, sort_keys=True)


def error_text(error: JsonDict) -> str:
    """``errorType: errorDescription``, as logged and shown."""
    return f"{error['errorType']}: {error.get('errorDescription', '')}".strip().rstrip(":")


def references(error: JsonDict) -> dict[str, str]:
    return {r["referenceKey"]: r["referenceValue"] for r in error.get("errorReferences", [])}


def order_rejection(
    errors: Iterable[JsonDict],
    order_id: str,
    update_id: int,
    header_ids: Iterable[int],
    errors_before: frozenset[str],
) -> str | None:
    """The warning rejecting ``order_id`` at ``update_id``: one naming its orderId (a warning
    that names another orderUpdateId is about an older message of the same order) or, new
    since it was sent, one naming the headerId of one of its messages on the order topic."""
    update = str(update_id)
    headers = {str(h) for h in header_ids}
    for error in errors:
        if error["errorType"] not in REJECTIONS:
            continue
        refs = references(error)
        if "orderId" in refs:
            named = refs["orderId"] == order_id
        else:
            named = (
                refs.get("topic", "order") == "order"
                and refs.get("headerId", "") in headers
                and error_key(error) not in errors_before
            )
        if named and refs.get("orderUpdateId", update) == update:
            return error_text(error)
    return None


def action_error(errors: Iterable[JsonDict], action_id: str) -> str | None:
    """The error naming ``action_id``, as text."""
    for error in errors:
        if references(error).get("actionId") == action_id:
            return error_text(error)
    return None
