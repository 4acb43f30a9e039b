"""Example answers of the main routes, for the OpenAPI document.

They tell one story: order ``SO-2030-000123`` is accepted at 08:15 on the line's clock, due at
16:00 the same day, and its priority raised a minute later. The dates lie in the future so that
an example can be sent as it is (``due_at`` must be in the future); a test of the document
fails once one of them has passed.
"""

from __future__ import annotations

from typing import Any

from api.sse import StreamExample

ORDER_ID = "SO-2030-000123"
CREATED_AT = "2030-06-03T08:15:02.120000Z"
UPDATED_AT = "2030-06-03T08:16:40.504000Z"
DUE_AT = "2030-06-03T16:00:00Z"

_CONTROLLER: dict[str, Any] = {
    "role": "active",
    "failover": False,
    "instance": None,
    "term": None,
    "active": None,
}

_ACCEPTED = {"seq": 41, "at": CREATED_AT, "type": "accepted", "status": "accepted", "data": {}}
_UPDATED = {
    "seq": 42,
    "at": UPDATED_AT,
    "type": "updated",
    "status": "accepted",
    "data": {"priority": {"old": 5, "new": 7}},
}

ORDER_SUMMARY: dict[str, Any] = {
    "id": ORDER_ID,
    "type": "b2c",
    "status": "accepted",
    "step": None,
    "waiting_reason": None,
    "priority": 7,
    "due_at": DUE_AT,
    "deliver_from": None,
    "deliver_until": None,
    "destination": "DHL",
    "handling": None,
    "lines": [{"line_id": "1", "sku": "SKU-0001", "uom": "each", "requested": 2, "picked": 0}],
    "created_at": CREATED_AT,
    "updated_at": UPDATED_AT,
}

ORDER_CREATED: dict[str, Any] = {
    **ORDER_SUMMARY,
    "priority": 5,
    "updated_at": CREATED_AT,
    "history": [_ACCEPTED],
}

ORDER: dict[str, Any] = {**ORDER_SUMMARY, "history": [_ACCEPTED, _UPDATED]}

ORDER_PAGE: dict[str, Any] = {
    "orders": [
        ORDER_SUMMARY,
        {
            **ORDER_SUMMARY,
            "id": "SO-2030-000124",
            "type": "b2b",
            "status": "released",
            "step": "robot_assigned",
            "priority": 3,
            "due_at": "2030-06-04T10:00:00Z",
            "deliver_from": "2030-06-03T06:00:00Z",
            "deliver_until": "2030-06-04T10:00:00Z",
            "destination": "CUST-ACME",
            "handling": {
                "label_template": "acme-pallet-v2",
                "packaging": "carton-40",
                "instructions": None,
            },
            "lines": [
                {"line_id": "10", "sku": "SKU-0003", "uom": "case", "requested": 2, "picked": 0},
                {"line_id": "20", "sku": "SKU-0007", "uom": "each", "requested": 24, "picked": 0},
            ],
            "created_at": "2030-06-03T08:15:09.871000Z",
            "updated_at": "2030-06-03T08:15:12.004000Z",
        },
    ],
    "next_cursor": "bzE6Mg",
}


def _event(history_event: dict[str, Any], at: str) -> dict[str, Any]:
    """``history_event`` as the event stream and webhooks carry it (``at`` as Python writes
    it, with a numeric offset)."""
    e = history_event
    return {
        "seq": e["seq"],
        "order_id": ORDER_ID,
        "type": e["type"],
        "status": e["status"],
        "at": at,
        "data": e["data"],
    }


ORDER_EVENT_EXAMPLES: dict[str, StreamExample] = {
    "accepted": StreamExample(
        event="accepted",
        id="41",
        data=_event(_ACCEPTED, "2030-06-03T08:15:02.120000+00:00"),
        summary="An order was created",
    ),
    "updated": StreamExample(
        event="updated",
        id="42",
        data=_event(_UPDATED, "2030-06-03T08:16:40.504000+00:00"),
        summary="Its priority was raised (`PATCH`)",
    ),
}

LINE: dict[str, Any] = {
    "line_id": "ref-line-1",
    "at": "2030-06-03T08:20:00Z",
    "conveyors": [
        {
            "conveyor_id": "C1",
            "connected": True,
            "state": "Execute",
            "available": True,
            "chutes": [
                {"chute_id": "CH01", "full": False, "enabled": True, "count": 3},
                {"chute_id": "CH02", "full": True, "enabled": True, "count": 12},
            ],
            "jammed_zones": [],
            "zones": [
                {
                    "zone_id": "Z01",
                    "running": True,
                    "occupied": True,
                    "item_id": "C1-000042",
                    "tote": "TOTE-R01-0007",
                    "order_id": ORDER_ID,
                    "chute": None,
                    "jammed": False,
                    "held": False,
                },
                {
                    "zone_id": "Z02",
                    "running": True,
                    "occupied": False,
                    "item_id": None,
                    "tote": None,
                    "order_id": None,
                    "chute": None,
                    "jammed": False,
                    "held": False,
                },
            ],
        }
    ],
    "cranes": [],
    "robots": [
        {
            "serial": "R01",
            "manufacturer": "linectl-sim",
            "version": "2.1.0",
            "connection": "ONLINE",
            "operating_mode": "AUTOMATIC",
            "available": True,
            "busy": True,
            "order_id": "job-7f3a-1",
            "last_node_id": "N12",
            "x": 14.2,
            "y": 3.5,
            "driving": True,
            "battery": 81.5,
            "charging": False,
            "paused": False,
            "errors": [],
            "factsheet_problems": [],
            "traffic": None,
            "fault_hold_seconds": None,
            "attention": None,
            "order_hold": None,
            "carrying": [{"order_id": "SO-2030-000124", "tote": "TOTE-R01-0008"}],
        }
    ],
    "orders_queued": 4,
    "orders": {
        "by_status": {
            "accepted": 4,
            "released": 1,
            "picking": 1,
            "in_transit": 1,
            "sorted": 0,
            "completed": 112,
            "exception": 0,
            "cancelled": 2,
            "failed": 0,
        },
        "counted_at": "2030-06-03T08:19:59Z",
        "queued": 4,
        "oldest_waiting": [
            {
                "order_id": "SO-2030-000125",
                "type": "b2c",
                "priority": 5,
                "due_at": DUE_AT,
                "created_at": CREATED_AT,
                "destination": "DHL",
                "waiting_reason": "no_robot_free",
            }
        ],
    },
    "deadlines": {"scan": 30.0, "sort": 120.0, "robot_step": 300.0},
    "held": None,
    "store_hold": None,
    "controller": _CONTROLLER,
}

READY: dict[str, Any] = {
    "ready": True,
    "checks": {"config": True, "store": True, "intake": True},
    "controller": _CONTROLLER,
}

LIVE: dict[str, Any] = {"status": "ok"}


def json_example(value: Any) -> dict[int | str, dict[str, Any]]:
    """A ``200`` answer's ``application/json`` example, for a route's ``responses``."""
    return {200: {"content": {"application/json": {"example": value}}}}
