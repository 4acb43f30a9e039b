"""Collision detection for the simulated fleet.

The simulator knows where every robot is: standing on (or passing) a node, or driving along an
edge. Two robots collide when they are on the same node at the same time, or drive the same edge
in opposite directions at the same time (head-on). Two robots following each other along an edge
do not collide in this model.

An incident starts when a pair of robots first conflicts and ends when they no longer do; it is
logged once when it starts and once when it ends, kept in :attr:`CollisionMonitor.incidents`,
and reported as a ``collision`` WARNING in both robots' ``errors`` while it lasts and for
``linger`` line seconds after (a head-on meeting may last no time at all, and a master control
must still get to see it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from devices.vda5050.messages import ErrorEntry
from kernel.clock import Clock

log = logging.getLogger(__name__)

Kind = Literal["node", "edge"]
Notify = Callable[[str], None]
LINGER = 5.0  # line seconds a collision stays in the robots' errors after it ended


@dataclass(frozen=True)
class Place:
    """Where a robot is: on node ``start`` (``end`` empty) or driving from ``start`` to ``end``."""

    kind: Kind
    start: str
    end: str = ""

    @classmethod
    def node(cls, node_id: str) -> Place:
        return cls("node", node_id)

    @classmethod
    def edge(cls, start: str, end: str) -> Place:
        return cls("edge", start, end)

    def describe(self) -> str:
        return f"node {self.start}" if self.kind == "node" else f"edge {self.start}-{self.end}"


@dataclass(frozen=True)
class Collision:
    """One incident between two robots (``serials`` sorted) at ``place``, from line time
    ``at``."""

    serials: tuple[str, str]
    place: Place
    at: float


def conflict(a: Place, b: Place) -> Place | None:
    """Where two robots at ``a`` and ``b`` collide, or None."""
    if a.kind == "node" and b.kind == "node" and a.start == b.start:
        return a
    if a.kind == "edge" and b.kind == "edge" and (a.start, a.end) == (b.end, b.start):
        return a
    return None


class CollisionMonitor:
    """Follows every robot's place and calls ``notify(serial)`` when a robot's collision
    warnings (:meth:`warnings`) change."""

    def __init__(self, clock: Clock, notify: Notify | None = None, linger: float = LINGER) -> None:
        self._clock = clock
        self._notify = notify
        self._linger = linger
        self._places: dict[str, Place] = {}
        self._active: dict[tuple[str, str], Collision] = {}
        self._ended: list[tuple[Collision, float]] = []
        self.incidents: list[Collision] = []

    def place(self, serial: str) -> Place | None:
        return self._places.get(serial)

    def active(self) -> list[Collision]:
        return list(self._active.values())

    def move(self, serial: str, place: Place) -> None:
        """Robot ``serial`` is now at ``place``."""
        if self._places.get(serial) == place:
            return
        self._places[serial] = place
        touched: set[str] = set()
        for other, other_place in self._places.items():
            if other == serial:
                continue
            pair = (serial, other) if serial < other else (other, serial)
            where = conflict(place, other_place)
            current = self._active.get(pair)
            if current is not None and where == current.place:
                continue
            if current is not None:
                self._end(current)
                touched.update(pair)
            if where is not None:
                self._start(Collision(pair, where, self._clock.now()))
                touched.update(pair)
        for robot in sorted(touched):
            self._report(robot)

    def _start(self, incident: Collision) -> None:
        self._active[incident.serials] = incident
        self.incidents.append(incident)
        log.warning(
            "robot collision",
            extra={
                "serials": list(incident.serials),
                "place": incident.place.describe(),
                "line_time": round(incident.at, 3),
            },
        )

    def _end(self, incident: Collision) -> None:
        del self._active[incident.serials]
        self._ended.append((incident, self._clock.now()))
        log.info(
            "robot collision cleared",
            extra={
                "serials": list(incident.serials),
                "place": incident.place.describe(),
                "lasted_line_seconds": round(self._clock.now() - incident.at, 3),
            },
        )

    def warnings(self, serial: str) -> list[ErrorEntry]:
        """The ``collision`` WARNING entries robot ``serial`` reports now: its incidents that
        last, or ended less than ``linger`` line seconds ago."""
        now = self._clock.now()
        self._ended = [(c, t) for c, t in self._ended if now - t < self._linger]
        out = []
        for incident in [*self._active.values(), *(c for c, _ in self._ended)]:
            if serial not in incident.serials:
                continue
            other = incident.serials[1] if incident.serials[0] == serial else incident.serials[0]
            p = incident.place
            refs = (
                (("nodeId", p.start),)
                if p.kind == "node"
                else (("startNodeId", p.start), ("endNodeId", p.end))
            )
            out.append(
                ErrorEntry(
                    "collision",
                    "WARNING",
                    f"collision with {other} on {p.describe()}",
                    (*refs, ("serialNumber", other)),
                )
            )
        return out

    def _report(self, serial: str) -> None:
        if self._notify is not None:
            self._notify(serial)
