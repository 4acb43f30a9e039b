"""The sort decision: which chute a scanned item goes to. Pure; decided on a snapshot.

Inputs are the codes the scanner read, what the controller knows about the item (its order's
destination and type, if the code is known) and how many times it has already passed the scanner.
Expected outcomes (no-read, unknown destination, full chute) are values, not exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    DIVERTED = "diverted"  # sent to the chute of its destination
    NO_READ = "no_read"  # nothing read; recirculate for another scan
    MULTI_READ = "multi_read"  # more than one code; recirculate for another scan
    CHUTE_UNAVAILABLE = "chute_full"  # its chute is full or disabled; recirculate
    REJECTED = "rejected"  # sent to the reject chute


class RejectReason(StrEnum):
    UNKNOWN_DESTINATION = "unknown_destination"
    UNKNOWN_ITEM = "unknown_item"
    TOO_MANY_PASSES = "too_many_passes"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class SortPlan:
    """Destination key -> chute, plus the chutes used when the plan has no answer."""

    chutes: Mapping[str, str]
    reject_chute: str
    b2b_chute: str | None = None
    max_passes: int = 3


@dataclass(frozen=True)
class ItemInfo:
    """What the controller knows about the order a code belongs to."""

    destination: str
    is_b2b: bool = False
    cancelled: bool = False  # the order was cancelled: its tote goes to the reject chute


@dataclass(frozen=True)
class SortDecision:
    outcome: Outcome
    chute: str | None  # None: no divert, the item recirculates
    code: str | None = None
    reason: RejectReason | None = None


def decide(
    plan: SortPlan,
    codes: tuple[str, ...],
    items: Mapping[str, ItemInfo],
    passes: int = 1,
    unavailable_chutes: frozenset[str] = frozenset(),
) -> SortDecision:
    """Decide where the item goes.

    ``passes`` counts scans of this item so far, this one included. An item that cannot be
    sorted on this pass recirculates until it has passed ``plan.max_passes`` times, then it goes
    to the reject chute.
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
    chute = plan.chutes.get(info.destination)
    if chute is None and info.is_b2b:
        chute = plan.b2b_chute
    if chute is None:
        return SortDecision(
            Outcome.REJECTED, plan.reject_chute, code, RejectReason.UNKNOWN_DESTINATION
        )
    if chute in unavailable_chutes:
        if last_pass:
            return SortDecision(
                Outcome.REJECTED, plan.reject_chute, code, RejectReason.TOO_MANY_PASSES
            )
        return SortDecision(Outcome.CHUTE_UNAVAILABLE, None, code)
    return SortDecision(Outcome.DIVERTED, chute, code)
