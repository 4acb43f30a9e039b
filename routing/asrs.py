"""AS/RS decisions: where a tote is stored, which aisle takes a store, which retrieve goes
first, and which store shares a crane cycle with it. Pure: racks, cranes, open locations and
pending requests in, a decision out; the time is an argument.

Storage policies (``asrs.storage_policy``), each choosing among the open locations of the aisles
it was built for:

- ``random``: any open location, uniformly (the caller's seeded ``random.Random``);
- ``closest_open``: the open location with the shortest travel from the aisle's P&D point, ties
  to the smaller location id;
- ``class_based``: each aisle's locations, ranked by travel from its P&D point, are split into
  classes (A, B, C, ...) by ``class_location_shares``; SKUs, ranked by turnover (units picked),
  are split by their cumulative share of the turnover at ``class_turnover_shares``. A SKU's tote
  goes to a random open location of its class; when that class is full, of the next class
  outward, then of the classes inward. A SKU with no recorded turnover is in the last class.

Dual commands: the most urgent ready retrieve goes with the pending store that makes the
shortest dual cycle (ties to the first-come store). Without dual commands, or with only one kind
pending, the crane runs single commands: retrieves first unless the P&D infeed is full.

Retrieve sequencing: ready retrieves before those waiting for their B2B delivery window to open;
then the earliest deadline (the order's due time, or the end of its delivery window when that is
earlier), the higher priority, first come.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from routing.crane import PD_POINT, Kinematics, dual_cycle, single_cycle, travel_time
from routing.rack import Rack

SHARE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class AisleGeometry:
    """One aisle: its rack and the crane that serves it."""

    rack: Rack
    crane: Kinematics

    def travel_from_pd(self, location_id: str) -> float:
        """One-way travel time (s) from the P&D point to a location of this aisle."""
        return travel_time(self.crane, PD_POINT, self.rack.position(self.rack.check(location_id)))


def ranked_locations(aisle: AisleGeometry) -> tuple[str, ...]:
    """The aisle's locations, nearest the P&D point first (by travel time), ties by id."""
    timed = [(aisle.travel_from_pd(loc.id), loc.id) for loc in aisle.rack.locations()]
    return tuple(loc for _, loc in sorted(timed))


# --- storage assignment -----------------------------------------------------------------------


class StoragePolicy(Protocol):
    def choose(
        self,
        open_locations: Set[str],
        sku: str,
        turnover: Mapping[str, float],
        rng: random.Random,
    ) -> str | None:
        """The location for a tote of ``sku``, or None when no location is open."""


@dataclass(frozen=True)
class RandomStorage:
    locations: tuple[str, ...]  # every location of the aisles, in a fixed order

    def choose(
        self, open_locations: Set[str], sku: str, turnover: Mapping[str, float], rng: random.Random
    ) -> str | None:
        candidates = [loc for loc in self.locations if loc in open_locations]
        return rng.choice(candidates) if candidates else None


@dataclass(frozen=True)
class ClosestOpenStorage:
    ranked: tuple[str, ...]  # nearest first over all the aisles, ties by id

    def choose(
        self, open_locations: Set[str], sku: str, turnover: Mapping[str, float], rng: random.Random
    ) -> str | None:
        return next((loc for loc in self.ranked if loc in open_locations), None)


@dataclass(frozen=True)
class ClassBasedStorage:
    classes: tuple[tuple[str, ...], ...]  # class 0 (A) first: its locations over all the aisles
    turnover_shares: tuple[float, ...]

    def choose(
        self, open_locations: Set[str], sku: str, turnover: Mapping[str, float], rng: random.Random
    ) -> str | None:
        home = sku_classes(turnover, self.turnover_shares).get(sku, len(self.classes) - 1)
        for c in fallback_order(home, len(self.classes)):
            candidates = [loc for loc in self.classes[c] if loc in open_locations]
            if candidates:
                return rng.choice(candidates)
        return None


def fallback_order(home: int, classes: int) -> list[int]:
    """The classes to try for a SKU of class ``home``: its own, outward, then inward."""
    return [*range(home, classes), *range(home - 1, -1, -1)]


def _cumulative(shares: Sequence[float]) -> list[float]:
    if not shares or any(s <= 0 for s in shares):
        raise ValueError(f"class shares must be positive, not {list(shares)}")
    total = sum(shares)
    acc, out = 0.0, []
    for s in shares:
        acc += s / total
        out.append(acc)
    out[-1] = 1.0
    return out


def location_classes(
    aisles: Sequence[AisleGeometry], location_shares: Sequence[float]
) -> tuple[tuple[str, ...], ...]:
    """Each aisle's locations ranked by travel from its P&D point and cut into classes at the
    cumulative ``location_shares`` (normalised); class i holds class i of every aisle."""
    bounds = _cumulative(location_shares)
    classes: list[list[str]] = [[] for _ in bounds]
    for aisle in aisles:
        ranked = ranked_locations(aisle)
        start = 0
        for c, bound in enumerate(bounds):
            end = len(ranked) if c == len(bounds) - 1 else round(bound * len(ranked))
            classes[c].extend(ranked[start:end])
            start = max(start, end)
    return tuple(tuple(c) for c in classes)


def sku_classes(turnover: Mapping[str, float], turnover_shares: Sequence[float]) -> dict[str, int]:
    """Class of each SKU with turnover: SKUs ranked by units picked (ties by SKU), each in the
    first class whose cumulative share is not yet used up by the SKUs ahead of it. SKUs with
    no positive turnover are not in the result (the caller puts them in the last class)."""
    bounds = _cumulative(turnover_shares)
    movers = sorted(((-u, s) for s, u in turnover.items() if u > 0))
    total = -sum(u for u, _ in movers)
    out: dict[str, int] = {}
    before = 0.0
    for neg_units, sku in movers:
        share = before / total
        out[sku] = next(
            (c for c, b in enumerate(bounds) if share < b - SHARE_TOLERANCE), len(bounds) - 1
        )
        before -= neg_units
    return out


class PolicyName(StrEnum):
    RANDOM = "random"
    CLOSEST_OPEN = "closest_open"
    CLASS_BASED = "class_based"


def storage_policy(
    name: str,
    aisles: Sequence[AisleGeometry],
    location_shares: Sequence[float] = (0.2, 0.3, 0.5),
    turnover_shares: Sequence[float] = (0.8, 0.15, 0.05),
) -> StoragePolicy:
    """The storage policy a config key names, built for ``aisles``; ValueError on an unknown
    name or class shares that do not fit."""
    if name == PolicyName.RANDOM:
        return RandomStorage(tuple(loc.id for a in aisles for loc in a.rack.locations()))
    if name == PolicyName.CLOSEST_OPEN:
        timed = [(a.travel_from_pd(loc.id), loc.id) for a in aisles for loc in a.rack.locations()]
        return ClosestOpenStorage(tuple(loc for _, loc in sorted(timed)))
    if name == PolicyName.CLASS_BASED:
        if len(location_shares) != len(turnover_shares):
            raise ValueError(
                f"{len(location_shares)} location classes but {len(turnover_shares)} "
                "turnover classes"
            )
        _cumulative(turnover_shares)
        return ClassBasedStorage(location_classes(aisles, location_shares), tuple(turnover_shares))
    raise ValueError(f"unknown storage policy {name!r} (one of {', '.join(PolicyName)})")


# --- which aisle takes a store ----------------------------------------------------------------


@dataclass(frozen=True)
class AisleLoad:
    aisle: str
    queued: int  # commands waiting for or held by its crane
    open_locations: int  # open locations a store could go to
    available: bool = True  # crane connected and not faulted


def aisle_for_store(aisles: Iterable[AisleLoad]) -> str | None:
    """The available aisle with an open location and the fewest queued commands, ties to the
    smaller id; None when no aisle can take a store."""
    candidates = [a for a in aisles if a.available and a.open_locations > 0]
    if not candidates:
        return None
    return min(candidates, key=lambda a: (a.queued, a.aisle)).aisle


# --- retrieve sequencing ----------------------------------------------------------------------


@dataclass(frozen=True)
class RetrieveRequest:
    tote: str
    location: str
    order_id: str
    due: datetime  # the order's due time (carrier cut-off)
    deliver_from: datetime | None = None  # B2B delivery window
    deliver_until: datetime | None = None
    priority: int = 5  # 0..9, higher first
    seq: int = 0  # arrival order

    def ready(self, now: datetime) -> bool:
        return self.deliver_from is None or self.deliver_from <= now

    @property
    def deadline(self) -> datetime:
        if self.deliver_until is not None and self.deliver_until < self.due:
            return self.deliver_until
        return self.due


def _urgency(r: RetrieveRequest, now: datetime) -> tuple[int, datetime, datetime, int, int]:
    if r.ready(now):
        return (0, r.deadline, r.deadline, -r.priority, r.seq)
    assert r.deliver_from is not None
    return (1, r.deliver_from, r.deadline, -r.priority, r.seq)


def sequence_retrieves(
    requests: Iterable[RetrieveRequest], now: datetime, *, hold_waiting: bool = False
) -> list[RetrieveRequest]:
    """Retrieves most urgent first: ready ones by deadline, priority, arrival; then those whose
    delivery window has not opened, by when it opens (left out with ``hold_waiting``)."""
    pending = [r for r in requests if not hold_waiting or r.ready(now)]
    return sorted(pending, key=lambda r: _urgency(r, now))


# --- crane commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreRequest:
    tote: str
    location: str  # where the storage policy put it
    seq: int = 0  # arrival order at the P&D point


class CommandKind(StrEnum):
    STORE = "store"
    RETRIEVE = "retrieve"
    DUAL = "dual"


@dataclass(frozen=True)
class CraneCommand:
    kind: CommandKind
    store: StoreRequest | None
    retrieve: RetrieveRequest | None
    seconds: float  # expected cycle time


def _position(aisle: AisleGeometry, location_id: str) -> tuple[float, float]:
    return aisle.rack.position(aisle.rack.check(location_id))


def next_command(
    aisle: AisleGeometry,
    stores: Sequence[StoreRequest],
    retrieves: Sequence[RetrieveRequest],
    now: datetime,
    *,
    dual_command: bool,
    infeed_full: bool = False,
) -> CraneCommand | None:
    """The next cycle for the aisle's crane, or None when nothing can go now.

    Retrieves waiting for their delivery window wait. With ``dual_command`` and both kinds
    pending: the most urgent retrieve and the store that makes the shortest dual cycle with it.
    Otherwise a single command: the most urgent retrieve, unless ``infeed_full`` (totes back up
    at the P&D point) or none is ready, then the first-come store. Raises BadLocation for a
    location outside the aisle.
    """
    k = aisle.crane
    ready = sequence_retrieves(retrieves, now, hold_waiting=True)
    if dual_command and ready and stores:
        r = ready[0]
        at = _position(aisle, r.location)
        timed = [
            (dual_cycle(k, _position(aisle, s.location), at), s.seq, i)
            for i, s in enumerate(stores)
        ]
        seconds, _, i = min(timed)
        return CraneCommand(CommandKind.DUAL, stores[i], r, seconds)
    if ready and not (stores and infeed_full):
        r = ready[0]
        return CraneCommand(
            CommandKind.RETRIEVE, None, r, single_cycle(k, _position(aisle, r.location))
        )
    if stores:
        s = min(stores, key=lambda s: s.seq)
        return CraneCommand(
            CommandKind.STORE, s, None, single_cycle(k, _position(aisle, s.location))
        )
    return None


def plan_commands(
    aisle: AisleGeometry,
    stores: Sequence[StoreRequest],
    retrieves: Sequence[RetrieveRequest],
    now: datetime,
    *,
    dual_command: bool,
) -> list[CraneCommand]:
    """The cycles that clear what is pending now, one ``next_command`` after another."""
    left_s, left_r = list(stores), list(retrieves)
    plan: list[CraneCommand] = []
    while (cmd := next_command(aisle, left_s, left_r, now, dual_command=dual_command)) is not None:
        plan.append(cmd)
        if cmd.store is not None:
            left_s.remove(cmd.store)
        if cmd.retrieve is not None:
            left_r.remove(cmd.retrieve)
    return plan
