"""What the order history keeps of a robot trip, so that a restarted controller rebuilds it exactly.

Every job sent to a robot for a trip is recorded in the trip's order history: ``robot_assigned``
for the first job, ``robot_continued`` for a job a restarted controller sends to finish the same
trip. Both carry the robot, the job (the VDA 5050 ``orderId``), the trip, its tote, its picks
(line, sku, location, node, units and the action id of the pick in that job; a pick done
before that job has none) and its drop (the induction and the drop's action id). Each booked pick
is recorded as ``picked`` with the trip and the pick's index, and the drop as ``dropped``. A
robot stopped to give way in a traffic jam keeps its trips: ``robot_giving_way`` names the job
it stopped, and the trip goes on in a ``robot_continued`` job.

:func:`stored_trips` reads those events back into :class:`StoredTrip` values: the trip as the
last job sent left it, with the picks already booked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.line.trips import ActionRef, Trip
from controller.orders.model import HistoryEvent
from routing.dispatch import Pick

JOB_EVENTS = ("robot_assigned", "robot_continued")
GIVING_WAY = "robot_giving_way"  # the trip's robot is stopped to give way; the trip goes on
# events after which the order's trip no longer serves it on that robot
TRIP_ENDS = frozenset(
    {
        "dropped",
        "requeued",
        "robot_action_failed",
        "robot_lost",
        "robot_trip_ended_without_drop",
        "robot_cancelled_by_operator",
        "robot_gave_way",
        "short_pick",
    }
)


@dataclass(frozen=True)
class StoredTrip:
    """A trip as the order history knows it: the newest job sent for it, and what is booked."""

    trip_id: str
    order_id: str
    robot: str
    job_id: str
    tote: str
    picks: tuple[Pick, ...]
    pick_actions: Mapping[str, int]  # action id in the job -> index into picks
    drop_action: str
    induction: str
    booked: frozenset[int]  # indexes of the picks recorded as picked
    picked: Mapping[str, int]  # line_id -> units recorded as picked
    # its robot was stopped to give way in a traffic jam (``robot_giving_way`` in this job):
    # what that cancel failed is no fault, and the trip continues from where the robot stands
    stopping: bool = False

    def refs(self) -> dict[str, ActionRef]:
        refs = {a: ActionRef(self.trip_id, "pick", i) for a, i in self.pick_actions.items()}
        refs[self.drop_action] = ActionRef(self.trip_id, "drop")
        return refs


def job_data(
    trip: Trip, serial: str, job_id: str, refs: Mapping[str, ActionRef]
) -> dict[str, object]:
    """The data of a ``robot_assigned`` / ``robot_continued`` event for ``trip`` in a job
    whose actions are ``refs``."""
    pick_ids = {
        ref.index: aid
        for aid, ref in refs.items()
        if ref.trip_id == trip.trip_id and ref.kind == "pick"
    }
    drop = next((a for a, r in refs.items() if r.trip_id == trip.trip_id and r.kind == "drop"), "")
    return {
        "robot": serial,
        "job": job_id,
        "trip": trip.trip_id,
        "tote": trip.tote,
        "induction": trip.induction,
        "drop_action": drop,
        "picks": [
            {
                "line_id": pk.line_id,
                "sku": pk.sku,
                "location": pk.location,
                "node": pk.node,
                "quantity": pk.quantity,
                **({"action": pick_ids[k]} if k in pick_ids else {}),
            }
            for k, pk in enumerate(trip.picks)
        ],
    }


def stored_trips(order_id: str, events: Sequence[HistoryEvent]) -> list[StoredTrip]:
    """The order's trip still on a robot per its history (at most one: an order has one live
    trip), or none when the history lacks what a rebuild needs (an older record)."""
    current: dict[str, object] | None = None
    booked: set[int] = set()
    picked: dict[str, int] = {}
    stopping = False
    for e in events:
        if e.type in JOB_EVENTS:
            if e.type == "robot_assigned" or current is None:
                booked, picked = set(), {}
            current = dict(e.data)
            stopping = False
        elif e.type == "picked" and current is not None:
            _book(e, current, booked, picked)
        elif e.type == GIVING_WAY and current is not None:
            stopping = stopping or e.data.get("job") == current.get("job")
        elif e.type in TRIP_ENDS:
            current = None
    if current is None:
        return []
    trip = _trip(order_id, current, booked, picked)
    return [] if trip is None else [dataclasses.replace(trip, stopping=stopping)]


def tote_trip(order_id: str, events: Sequence[HistoryEvent], tote: str) -> StoredTrip | None:
    """The trip that filled ``tote``, with what was booked into it, also after its drop (a
    tote on the conveyor at a restart); None when the history lacks what a rebuild needs."""
    current: dict[str, object] | None = None
    booked: set[int] = set()
    picked: dict[str, int] = {}
    for e in events:
        if e.type in JOB_EVENTS and e.data.get("tote") == tote:
            if current is None or e.data.get("trip") != current.get("trip"):
                booked, picked = set(), {}
            current = dict(e.data)
        elif e.type == "picked" and current is not None:
            _book(e, current, booked, picked)
    return None if current is None else _trip(order_id, current, booked, picked)


def _book(
    e: HistoryEvent, job: Mapping[str, object], booked: set[int], picked: dict[str, int]
) -> None:
    """Count a ``picked`` event into what the trip of ``job`` has booked (if it is its)."""
    if e.data.get("trip") != job["trip"]:
        return
    index = e.data.get("pick")
    if isinstance(index, int):
        booked.add(index)
    line = str(e.data.get("line_id", ""))
    picked[line] = picked.get(line, 0) + _int(e.data.get("quantity"))


def _trip(
    order_id: str, data: Mapping[str, object], booked: set[int], picked: dict[str, int]
) -> StoredTrip | None:
    raw = data.get("picks")
    drop = data.get("drop_action")
    if not isinstance(raw, list) or not isinstance(drop, str) or not drop:
        return None
    picks: list[Pick] = []
    actions: dict[str, int] = {}
    for k, p in enumerate(raw):
        if not isinstance(p, dict) or "sku" not in p or "node" not in p:
            return None
        picks.append(
            Pick(
                str(p["line_id"]),
                str(p["sku"]),
                str(p["location"]),
                str(p["node"]),
                _int(p["quantity"]),
            )
        )
        if isinstance(p.get("action"), str):
            actions[p["action"]] = k
    return StoredTrip(
        trip_id=str(data["trip"]),
        order_id=order_id,
        robot=str(data["robot"]),
        job_id=str(data["job"]),
        tote=str(data["tote"]),
        picks=tuple(picks),
        pick_actions=actions,
        drop_action=drop,
        induction=str(data.get("induction", "")),
        booked=frozenset(booked),
        picked=dict(picked),
    )


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
