"""The sort decision: which chute a scanned item goes to. Pure; decided on a snapshot.

Inputs are the codes the scanner read, what the controller knows about the item (its order, the
order's destination and type, if the code is known), how many times it has already passed the
scanner, and the sorter as it stands: chutes that are full or disabled, how many totes each chute
holds or has coming, and which B2B order holds which chute. Expected outcomes (no-read, unknown
destination, full chute, no chute free) are values, not exceptions.

A destination maps to one or more chutes; with several, the tote goes to the available one with
the fewest totes (held plus on their way), ties to the one listed first.

B2B orders, when the plan has an allocation pool (``b2b_pool``), each get a chute of their own:
1. an order that already holds a chute goes there (its chute full or disabled: recirculate);
2. a destination whose plan entry names chutes outside the pool keeps those (a dedicated lane);
3. otherwise the order is given a free pool chute (not held, not full, not disabled): one its plan
   entry names if one is free, else any, the fewest totes first; the decision says ``allocated``
   and the caller records that the order now holds it until the order ends;
4. no pool chute free: with ``b2b_overflow`` the tote goes where it would go without a pool (its
   plan entry, else ``b2b_chute``), sharing that chute; without it, it recirculates
   (``NO_FREE_CHUTE``) and after ``max_passes`` it goes to the reject chute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class Outcome(StrEnum):
    DIVERTED = "diverted"  # sent to the chute of its destination
    NO_READ = "no_read"  # nothing read; recirculate for another scan
    MULTI_READ = "multi_read"  # more than one code; recirculate for another scan
    CHUTE_UNAVAILABLE = "chute_full"  # no chute of its own free (see the reason); recirculate
    REJECTED = "rejected"  # sent to the reject chute


class RejectReason(StrEnum):
    UNKNOWN_DESTINATION = "unknown_destination"
    UNKNOWN_ITEM = "unknown_item"
    TOO_MANY_PASSES = "too_many_passes"
    CANCELLED = "cancelled"


class WaitReason(StrEnum):
    """Why a read tote recirculates (``Outcome.CHUTE_UNAVAILABLE``)."""

    CHUTES_UNAVAILABLE = "chutes_unavailable"  # every chute of its destination full or disabled
    NO_FREE_CHUTE = "no_free_chute"  # every B2B pool chute held by another order or unavailable


NO_COUNTS: Mapping[str, int] = MappingProxyType({})
NO_ALLOCATIONS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class SortPlan:
    """Destination key -> chute(s), plus the chutes used when the plan has no answer.

    ``chutes`` values are a chute id or a sequence of them; ``routes`` holds them as tuples.
    ``b2b_pool`` non-empty turns on dynamic allocation of B2B chutes (see the module text).
    """

    chutes: Mapping[str, str | Sequence[str]]
    reject_chute: str
    b2b_chute: str | None = None
    max_passes: int = 3
    b2b_pool: tuple[str, ...] = ()
    b2b_overflow: bool = False  # no pool chute free: share the static chute instead of waiting
    routes: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    pool: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        routes = {
            dest: (chutes,) if isinstance(chutes, str) else tuple(chutes)
            for dest, chutes in self.chutes.items()
        }
        object.__setattr__(self, "routes", MappingProxyType(routes))
        object.__setattr__(self, "pool", frozenset(self.b2b_pool))


@dataclass(frozen=True)
class ItemInfo:
    """What the controller knows about the order a code belongs to."""

    destination: str
    is_b2b: bool = False
    cancelled: bool = False  # the order was cancelled: its tote goes to the reject chute
    order_id: str | None = None  # needed for B2B chute allocation


@dataclass(frozen=True)
class SortDecision:
    outcome: Outcome
    chute: str | None  # None: no divert, the item recirculates
    code: str | None = None
    reason: RejectReason | WaitReason | None = None
    allocated: bool = False  # ``chute`` is newly allocated to the item's B2B order


def decide(
    plan: SortPlan,
    codes: tuple[str, ...],
    items: Mapping[str, ItemInfo],
    passes: int = 1,
    unavailable_chutes: frozenset[str] = frozenset(),
    counts: Mapping[str, int] = NO_COUNTS,
    allocations: Mapping[str, str] = NO_ALLOCATIONS,
) -> SortDecision:
    """Decide where the item goes.

    ``passes`` counts scans of this item so far, this one included. An item that cannot be
    sorted on this pass recirculates until it has passed ``plan.max_passes`` times, then it goes
    to the reject chute. ``counts`` is totes per chute (in it or on their way to it) for
    balancing; ``allocations`` is B2B order id -> the chute it holds.
    """
    last_pass = passes >= plan.max_passes
    if len(codes) != 1:
        outcome = Outcome.NO_READ if not codes else Outcome.MULTI_READ
        if last_pass:
            return SortDecision(
                Outcome.REJECTED, plan.reject_chute, None, RejectReason.TOO_MANY_PASSES
            )
        return SortDecision(outcome, None)
    code = codes[0]
    info = items.get(code)
    if info is None:
        return SortDecision(Outcome.REJECTED, plan.reject_chute, code, RejectReason.UNKNOWN_ITEM)
    if info.cancelled:
        return SortDecision(Outcome.REJECTED, plan.reject_chute, code, RejectReason.CANCELLED)
    route = plan.routes.get(info.destination)
    if info.is_b2b and plan.b2b_pool and info.order_id is not None:
        return _allocate(
            plan, code, info.order_id, route, last_pass, unavailable_chutes, counts, allocations
        )
    return _static(plan, code, info.is_b2b, route, last_pass, unavailable_chutes, counts)


def _static(
    plan: SortPlan,
    code: str,
    is_b2b: bool,
    route: tuple[str, ...] | None,
    last_pass: bool,
    unavailable: frozenset[str],
    counts: Mapping[str, int],
) -> SortDecision:
    if route is None and is_b2b and plan.b2b_chute is not None:
        route = (plan.b2b_chute,)
    if route is None:
        return SortDecision(
            Outcome.REJECTED, plan.reject_chute, code, RejectReason.UNKNOWN_DESTINATION
        )
    return _one_of(plan, code, route, last_pass, unavailable, counts)


def _allocate(
    plan: SortPlan,
    code: str,
    order_id: str,
    route: tuple[str, ...] | None,
    last_pass: bool,
    unavailable: frozenset[str],
    counts: Mapping[str, int],
    allocations: Mapping[str, str],
) -> SortDecision:
    held = allocations.get(order_id)
    if held is not None:
        return _one_of(plan, code, (held,), last_pass, unavailable, counts)
    if route is not None and route[0] not in plan.pool:  # a dedicated lane
        return _one_of(plan, code, route, last_pass, unavailable, counts)
    taken = unavailable.union(allocations.values())
    chute = _least_full(route, taken, counts) if route is not None else None
    if chute is None:
        chute = _least_full(plan.b2b_pool, taken, counts)
    if chute is not None:
        return SortDecision(Outcome.DIVERTED, chute, code, allocated=True)
    if plan.b2b_overflow:
        return _static(plan, code, True, route, last_pass, unavailable, counts)
    return _wait(plan, code, last_pass, WaitReason.NO_FREE_CHUTE)


def _one_of(
    plan: SortPlan,
    code: str,
    chutes: tuple[str, ...],
    last_pass: bool,
    unavailable: frozenset[str],
    counts: Mapping[str, int],
) -> SortDecision:
    chute = _least_full(chutes, unavailable, counts)
    if chute is None:
        return _wait(plan, code, last_pass, WaitReason.CHUTES_UNAVAILABLE)
    return SortDecision(Outcome.DIVERTED, chute, code)


def _wait(plan: SortPlan, code: str, last_pass: bool, why: WaitReason) -> SortDecision:
    if last_pass:
        return SortDecision(Outcome.REJECTED, plan.reject_chute, code, RejectReason.TOO_MANY_PASSES)
    return SortDecision(Outcome.CHUTE_UNAVAILABLE, None, code, why)


def _least_full(
    chutes: tuple[str, ...], skip: frozenset[str], counts: Mapping[str, int]
) -> str | None:
    """The chute not in ``skip`` with the fewest totes; ties go to the one listed first."""
    if len(chutes) == 1:
        return None if chutes[0] in skip else chutes[0]
    best, fewest = None, 0
    for chute in chutes:
        if chute in skip:
            continue
        n = counts.get(chute, 0)
        if best is None or n < fewest:
            best, fewest = chute, n
    return best
