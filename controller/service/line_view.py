"""The operator's picture of the line, as plain data: the plan (what the line file lays out) and
what the line view adds to the devices' snapshots (the conveyor's zones with their totes, the
orders by status with the oldest waiting ones).

The plan never changes while the controller runs; ``GET /v1/line/plan`` serves it and the live
page draws it once. The live parts are cheap to build: nothing here reads the store (order counts
come from the gauge refresh) and the oldest waiting orders are the few first of the release
queue's, taken without sorting it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from controller.line.trips import InFlight
from controller.orders.model import OrderStatus
from controller.robots.queue import Pending
from devices import base as dev
from kernel.config.model import LineConfig

OLDEST_WAITING = 10  # queued orders listed in the line view, oldest first


def plan(config: LineConfig) -> dict[str, Any]:
    """The line's layout from its line file: the robots' map with its chargers, inductions
    and pick locations, the conveyor loop with scanner, diverts and chutes, the AS/RS aisles."""
    robots = config.robots
    per_node: dict[str, int] = {}
    for loc in robots.storage_locations:
        per_node[loc.node] = per_node.get(loc.node, 0) + 1
    conveyor = config.conveyor
    return {
        "line_id": config.line.id,
        "name": config.line.name,
        "robots": {
            "map_id": robots.map_id,
            "nodes": [
                {"id": n.id, "x": n.x, "y": n.y, "locations": per_node.get(n.id, 0)}
                for n in robots.nodes
            ],
            "edges": [
                {"start": e.start, "end": e.end, "bidirectional": e.bidirectional}
                for e in robots.edges
            ],
            "chargers": [{"id": c.id, "node": c.node} for c in robots.chargers],
            "inductions": [{"id": i.id, "node": i.node, "zone": i.zone} for i in robots.inductions],
            "parking": list(robots.traffic.parking),
            "fleet": [
                {"serial": r.serial, "model": r.model, "version": r.version, "home": r.home}
                for r in robots.fleet
            ],
        },
        "conveyor": {
            "id": conveyor.id,
            "belt_speed": conveyor.belt_speed,
            "zones": [{"id": z.id, "length": z.length} for z in conveyor.zones],
            "scanner": {"id": conveyor.scanner.id, "zone": conveyor.scanner.zone},
            "sorter": conveyor.sorter.id,
            "diverts": [
                {"id": d.id, "zone": d.zone, "chute": d.chute} for d in conveyor.sorter.diverts
            ],
            "chutes": [
                {"id": c.id, "kind": c.kind.value, "capacity": c.capacity}
                for c in conveyor.sorter.chutes
            ],
        },
        "asrs": {
            "aisles": [
                {
                    "id": a.id,
                    "bays": a.bays,
                    "levels": a.levels,
                    "sides": a.sides,
                    "bay_width": a.bay_width,
                    "level_height": a.level_height,
                    "pd_zone": a.pd_zone,
                    "crane": a.crane.id,
                }
                for a in config.asrs.aisles
            ]
        },
    }


def conveyor(
    snapshot: dev.ConveyorSnapshot, config: LineConfig, flight: InFlight
) -> dict[str, Any]:
    """The conveyor's snapshot with a view of each zone: its belt and photo-eye as the PLC
    reports them, its jam, whether a jam holds it, and the tote and order of its leading item
    as the controller tracks them."""
    connected = snapshot.connected
    running = connected and snapshot.state == "Execute"
    reported = {z.zone_id: z for z in snapshot.zones}
    jammed = set(snapshot.jammed_zones)
    held = held_zones(config, jammed)
    zones = []
    for zone in config.conveyor.zones:
        seen = reported.get(zone.id, dev.ZoneSnapshot(zone.id))
        item = seen.item_id if connected else None
        tracked = flight.items.get(item) if item else None
        trip = flight.by_tote.get(tracked.tote) if tracked and tracked.tote else None
        zones.append(
            {
                "zone_id": zone.id,
                "running": seen.running if connected else None,
                "occupied": seen.occupied if connected else None,
                "item_id": item,
                "tote": tracked.tote if tracked else None,
                "order_id": trip.order_id if trip else None,
                "chute": tracked.chute if tracked else None,
                "jammed": zone.id in jammed,
                "held": running and zone.id in held,
            }
        )
    return {
        "conveyor_id": snapshot.conveyor_id,
        "connected": connected,
        "state": snapshot.state,
        "available": running,
        "chutes": [
            {"chute_id": c.chute_id, "full": c.full, "enabled": c.enabled, "count": c.count}
            for c in snapshot.chutes
        ],
        "jammed_zones": list(snapshot.jammed_zones),
        "zones": zones,
    }


def held_zones(config: LineConfig, jammed: Iterable[str]) -> set[str]:
    """The zones a jam holds: each jammed zone and the ``conveyor.jam_hold_zones`` zones before
    it in loop order (what the PLC does; docs/opcua-model.md)."""
    order = [z.id for z in config.conveyor.zones]
    index = {zone_id: i for i, zone_id in enumerate(order)}
    held: set[str] = set()
    for zone_id in jammed:
        i = index.get(zone_id)
        if i is None:
            continue
        for back in range(config.conveyor.jam_hold_zones + 1):
            held.add(order[(i - back) % len(order)])
    return held


def carried(flight: InFlight) -> dict[str, list[dict[str, str]]]:
    """By robot: the orders whose totes it carries or is to pick for (one pass over the
    trips, whatever the number of robots)."""
    by_robot: dict[str, list[dict[str, str]]] = {}
    for trip in flight.trips.values():
        if not trip.dropped:  # as InFlight.on_robot
            by_robot.setdefault(trip.serial, []).append(
                {"order_id": trip.order_id, "tote": trip.tote}
            )
    return by_robot


def orders(
    counts: Mapping[OrderStatus, int],
    counted_at: datetime | None,
    queue: Iterable[Pending],
    queued: int,
    limit: int = OLDEST_WAITING,
) -> dict[str, Any]:
    """Orders by status (as last counted in the store) and the oldest orders still queued,
    each with why it waits."""
    oldest = heapq.nsmallest(limit, queue, key=lambda p: (p.record.created_at, p.seq))
    return {
        "by_status": {status.value: counts.get(status, 0) for status in OrderStatus},
        "counted_at": counted_at,
        "queued": queued,
        "oldest_waiting": [
            {
                "order_id": p.record.id,
                "type": p.record.type.value,
                "priority": p.record.priority,
                "due_at": p.record.due_at,
                "created_at": p.record.created_at,
                "destination": p.record.destination,
                "waiting_reason": p.waiting.render() if p.waiting is not None else None,
            }
            for p in oldest
        ],
    }
