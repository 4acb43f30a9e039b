"""Why an order waits (or why it stopped), as a typed value: a kind and the figures of that kind.

The controller decides on these values (the dispatcher compares them to know whether a reason
changed) and stores them as data next to the text (:func:`to_data`, :func:`from_data`); the
text is made by :meth:`render` only for the order's ``waiting_reason`` in the HTTP API, and is
the same text, byte for byte, as the controller has always written for each situation. Nothing
parses the text back.

Every value is a frozen dataclass with a ``kind`` of its own; :data:`Waiting` is their union.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter


class WaitKind(StrEnum):
    """The kind of a waiting reason: the ``kind`` of its stored data."""

    # the order could go, but nothing takes it now (the text is the kind itself)
    NO_ROBOT_FREE = "no_robot_free"
    CONVEYOR_UNAVAILABLE = "conveyor_unavailable"
    OUTSIDE_DELIVERY_WINDOW = "outside_delivery_window"
    LINE_HELD = "line_held"
    # short of stock: on the robots' shelves, in the AS/RS rack, or refused when reserving
    STOCK_SHORT = "stock_short"
    ASRS_STOCK_SHORT = "asrs_stock_short"
    STOCK_REFUSED = "stock_refused"
    # the AS/RS cannot take the order's case lines now
    ASRS_BUSY = "asrs_busy"
    ASRS_UNAVAILABLE = "asrs_unavailable"
    # the robot job could not be sent
    ROBOT_REFUSED = "robot_refused"
    ROBOT_UNAVAILABLE = "robot_unavailable"
    # a robot trip could not serve the order (its cause is a trip loss, below)
    REASSIGNING = "reassigning"
    GAVE_UP = "gave_up"
    GIVING_WAY = "giving_way"
    # the order stopped in exception
    SHORT_PICK = "short_pick"
    VERIFICATION_MISMATCH = "verification_mismatch"
    CASE_TOTE_FAILED = "case_tote_failed"
    TOTE_NOT_FOUND = "tote_not_found"
    OVERDUE = "overdue"  # a stage's deadline passed (:class:`Overdue`)
    # why a robot trip was lost: only the cause of REASSIGNING and GAVE_UP
    ACTION_FAILED = "action_failed"
    ROBOT_LOST = "robot_lost"
    ROBOT_CANCELLED = "robot_cancelled"
    ENDED_WITHOUT_DROP = "ended_without_drop"
    # a reason known only as text (written before the typed values were stored)
    OTHER = "other"

    @property
    def stock_short(self) -> bool:
        """A shortage of stock (counted once per order by ``linectl_stockouts_total``)."""
        return self in _STOCK_SHORT


_STOCK_SHORT = frozenset({WaitKind.STOCK_SHORT, WaitKind.ASRS_STOCK_SHORT, WaitKind.STOCK_REFUSED})


def _kind(kind: WaitKind) -> Any:
    """The ``kind`` field of a value: fixed, not an argument, but stored with the value."""
    return field(default=kind, init=False, repr=False)


# --- nothing takes the order now -------------------------------------------------------------


@dataclass(frozen=True)
class NoRobotFree:
    kind: Literal[WaitKind.NO_ROBOT_FREE] = _kind(WaitKind.NO_ROBOT_FREE)

    def render(self) -> str:
        return self.kind.value


@dataclass(frozen=True)
class ConveyorUnavailable:
    kind: Literal[WaitKind.CONVEYOR_UNAVAILABLE] = _kind(WaitKind.CONVEYOR_UNAVAILABLE)

    def render(self) -> str:
        return self.kind.value


@dataclass(frozen=True)
class OutsideDeliveryWindow:
    kind: Literal[WaitKind.OUTSIDE_DELIVERY_WINDOW] = _kind(WaitKind.OUTSIDE_DELIVERY_WINDOW)

    def render(self) -> str:
        return self.kind.value


@dataclass(frozen=True)
class LineHeld:
    kind: Literal[WaitKind.LINE_HELD] = _kind(WaitKind.LINE_HELD)

    def render(self) -> str:
        return self.kind.value


# --- short of stock ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StockShort:
    """The robots' shelves lack ``missing`` units of ``sku``; ``on_hand`` and ``reserved`` are
    the figures when the shortage was first seen."""

    sku: str
    missing: int
    on_hand: int
    reserved: int
    kind: Literal[WaitKind.STOCK_SHORT] = _kind(WaitKind.STOCK_SHORT)

    def render(self) -> str:
        return (
            f"stock_short: {self.sku} missing {self.missing} "
            f"(on hand {self.on_hand}, reserved {self.reserved})"
        )


@dataclass(frozen=True)
class AsrsStockShort:
    """The AS/RS rack totes lack ``missing`` units of ``sku`` for the order's case lines."""

    sku: str
    missing: int
    rack_free: int  # units of the SKU free in rack totes
    kind: Literal[WaitKind.ASRS_STOCK_SHORT] = _kind(WaitKind.ASRS_STOCK_SHORT)

    def render(self) -> str:
        return (
            f"stock_short: {self.sku} missing {self.missing} in the AS/RS "
            f"({self.rack_free} units free in rack totes)"
        )


@dataclass(frozen=True)
class StockRefused:
    """The inventory refused to reserve the stock (it changed since it was planned)."""

    detail: str  # the inventory's words
    kind: Literal[WaitKind.STOCK_REFUSED] = _kind(WaitKind.STOCK_REFUSED)

    def render(self) -> str:
        return f"stock_short: {self.detail}"


# --- the AS/RS ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AsrsBusy:
    """``out`` orders have their case totes out, ``limit`` (``asrs.max_case_orders``) at most."""

    out: int
    limit: int
    kind: Literal[WaitKind.ASRS_BUSY] = _kind(WaitKind.ASRS_BUSY)

    def render(self) -> str:
        return f"asrs_busy: {self.out} orders' case totes out (at most {self.limit})"


@dataclass(frozen=True)
class AsrsUnavailable:
    """The AS/RS refused to retrieve the order's case totes."""

    detail: str
    kind: Literal[WaitKind.ASRS_UNAVAILABLE] = _kind(WaitKind.ASRS_UNAVAILABLE)

    def render(self) -> str:
        return f"asrs_unavailable: {self.detail}"


# --- sending the robot job ---------------------------------------------------------------------


@dataclass(frozen=True)
class RobotRefused:
    """Master control did not send the job to ``robot``; ``reason`` is its refusal's code."""

    reason: str
    robot: str
    kind: Literal[WaitKind.ROBOT_REFUSED] = _kind(WaitKind.ROBOT_REFUSED)

    def render(self) -> str:
        return f"robot_refused: {self.reason} ({self.robot})"


@dataclass(frozen=True)
class RobotUnavailable:
    """The job could not be sent (the device error's words)."""

    detail: str
    kind: Literal[WaitKind.ROBOT_UNAVAILABLE] = _kind(WaitKind.ROBOT_UNAVAILABLE)

    def render(self) -> str:
        return f"robot_unavailable: {self.detail}"


# --- deadlines ---------------------------------------------------------------------------------


class Stage(StrEnum):
    """The stages and commands that have a deadline (the ``stage`` label of
    ``linectl_deadline_exceeded_total``)."""

    SCAN = "scan"  # a dropped tote on its way to the scanner
    SORT = "sort"  # a scanned tote on its way into a chute
    ROBOT_STEP = "robot_step"  # a robot on its trip, from one pick (or the drop) to the next
    CRANE_COMMAND = "crane_command"  # a crane command accepted, not yet reported finished
    STATION = "station"  # a B2B order waiting at its station for verification


@dataclass(frozen=True)
class Overdue:
    """The stage whose deadline passed, as the deadline watcher
    (:mod:`controller.service.deadlines`) found it. :meth:`data` is the order's history event
    data (figures rounded); the stored waiting reason keeps the figures as they are
    (:func:`to_data`)."""

    stage: Stage
    subject: str  # the tote, robot, crane command or station the stage is about
    waited: float  # line seconds (conveyor stages: running time of the conveyor)
    limit: float  # the deadline, line seconds
    kind: Literal[WaitKind.OVERDUE] = _kind(WaitKind.OVERDUE)

    def render(self) -> str:
        limit = f"{self.limit:.0f} s"
        match self.stage:
            case Stage.SCAN:
                return (
                    f"tote {self.subject} not scanned within {limit} of conveyor running time "
                    "after its drop: lost on the conveyor; check the belt from the induction to "
                    "the scanner and the reject chute"
                )
            case Stage.SORT:
                return (
                    f"tote {self.subject} scanned but not in a chute within {limit} of conveyor "
                    "running time: lost on the conveyor; check the diverts, the chutes and the "
                    "reject chute"
                )
            case Stage.ROBOT_STEP:
                return (
                    f"robot {self.subject} made no progress on its trip for "
                    f"{self.waited:.0f} s (deadline {limit})"
                )
            case Stage.CRANE_COMMAND:
                return (
                    f"crane command {self.subject} not reported finished within {limit}; "
                    "check the crane and its aisle"
                )
            case Stage.STATION:
                return f"waiting for verification at station {self.subject} for over {limit}"

    def data(self) -> dict[str, object]:
        """The history event's data."""
        return {
            "stage": self.stage.value,
            "subject": self.subject,
            "waited_seconds": round(self.waited, 1),
            "deadline_seconds": round(self.limit, 1),
        }


# --- why a robot trip was lost (the cause of Reassigning and GaveUp) --------------------------


@dataclass(frozen=True)
class ActionFailed:
    """The robot reported an ``action`` (pick, drop) failed, in its own words (``reason``)."""

    action: str
    robot: str
    reason: str
    kind: Literal[WaitKind.ACTION_FAILED] = _kind(WaitKind.ACTION_FAILED)

    def render(self) -> str:
        return f"{self.action} failed on robot {self.robot}: {self.reason}"


@dataclass(frozen=True)
class RobotLost:
    """The robot stayed unavailable longer than ``robots.failure_grace``."""

    robot: str
    reason: str
    kind: Literal[WaitKind.ROBOT_LOST] = _kind(WaitKind.ROBOT_LOST)

    def render(self) -> str:
        return f"robot {self.robot} unavailable: {self.reason}"


@dataclass(frozen=True)
class RobotCancelled:
    """An operator cancelled the robot's work."""

    robot: str
    kind: Literal[WaitKind.ROBOT_CANCELLED] = _kind(WaitKind.ROBOT_CANCELLED)

    def render(self) -> str:
        return f"operator cancelled the order of robot {self.robot}"


@dataclass(frozen=True)
class EndedWithoutDrop:
    """The robot's job ended with the trip's tote not dropped."""

    robot: str
    kind: Literal[WaitKind.ENDED_WITHOUT_DROP] = _kind(WaitKind.ENDED_WITHOUT_DROP)

    def render(self) -> str:
        return f"robot {self.robot} ended its trip without the drop"


TripLoss = Annotated[
    ActionFailed | RobotLost | RobotCancelled | EndedWithoutDrop | Overdue,
    Field(discriminator="kind"),
]


@dataclass(frozen=True)
class Reassigning:
    """The order's robot trip was lost; the order waits for another robot."""

    cause: TripLoss
    kind: Literal[WaitKind.REASSIGNING] = _kind(WaitKind.REASSIGNING)

    def render(self) -> str:
        return f"reassigning: {self.cause.render()}"


@dataclass(frozen=True)
class GaveUp:
    """The order's ``attempts``-th robot trip was lost too: it is in exception."""

    cause: TripLoss
    attempts: int
    kind: Literal[WaitKind.GAVE_UP] = _kind(WaitKind.GAVE_UP)

    def render(self) -> str:
        return f"{self.cause.render()}; gave up after {self.attempts} attempts"


@dataclass(frozen=True)
class GivingWay:
    """The robot gives way to end a traffic deadlock (``why``); its trip continues after."""

    robot: str
    why: str
    kind: Literal[WaitKind.GIVING_WAY] = _kind(WaitKind.GIVING_WAY)

    def render(self) -> str:
        return f"robot {self.robot} gives way ({self.why}); its trip continues after"


# --- the order stopped in exception --------------------------------------------------------------


@dataclass(frozen=True)
class ShortPick:
    """Fewer units picked than reserved, at ``location`` (from ``tote`` when they came out of
    a tote)."""

    sku: str
    location: str
    tote: str | None
    picked: int
    reserved: int
    kind: Literal[WaitKind.SHORT_PICK] = _kind(WaitKind.SHORT_PICK)

    def render(self) -> str:
        where = f"at {self.location}"
        if self.tote is not None:
            where = f"in tote {self.tote} {where}"
        return f"short pick: SKU {self.sku} {where}: picked {self.picked} of {self.reserved}"


@dataclass(frozen=True)
class VerificationMismatch:
    """The station's count did not match (each mismatch or problem in words)."""

    mismatches: tuple[str, ...]
    kind: Literal[WaitKind.VERIFICATION_MISMATCH] = _kind(WaitKind.VERIFICATION_MISMATCH)

    def render(self) -> str:
        return "verification mismatch: " + "; ".join(self.mismatches)


@dataclass(frozen=True)
class CaseToteFailed:
    """The AS/RS gave up retrieving one of the order's case totes (``reason``: its words)."""

    tote: str
    reason: str
    kind: Literal[WaitKind.CASE_TOTE_FAILED] = _kind(WaitKind.CASE_TOTE_FAILED)

    def render(self) -> str:
        return f"AS/RS retrieve of tote {self.tote} failed: {self.reason}"


@dataclass(frozen=True)
class ToteNotFound:
    """The order's tote was not found on the conveyor after the conveyor came back."""

    tote: str
    kind: Literal[WaitKind.TOTE_NOT_FOUND] = _kind(WaitKind.TOTE_NOT_FOUND)

    def render(self) -> str:
        return (
            f"tote {self.tote} not found on the conveyor after it came back; "
            "check the line and the reject chute"
        )


# --- known only as text ------------------------------------------------------------------------


@dataclass(frozen=True)
class Other:
    """A reason read from a database written before the typed values were stored."""

    text: str
    kind: Literal[WaitKind.OTHER] = _kind(WaitKind.OTHER)

    def render(self) -> str:
        return self.text


Waiting = Annotated[
    NoRobotFree
    | ConveyorUnavailable
    | OutsideDeliveryWindow
    | LineHeld
    | StockShort
    | AsrsStockShort
    | StockRefused
    | AsrsBusy
    | AsrsUnavailable
    | RobotRefused
    | RobotUnavailable
    | Reassigning
    | GaveUp
    | GivingWay
    | ShortPick
    | VerificationMismatch
    | CaseToteFailed
    | ToteNotFound
    | Overdue
    | Other,
    Field(discriminator="kind"),
]

_ADAPTER: TypeAdapter[Waiting] = TypeAdapter(Waiting)


def to_data(waiting: Waiting) -> dict[str, Any]:
    """The value as JSON-ready data: its ``kind`` and its fields (a cause nested likewise)."""
    data: dict[str, Any] = _ADAPTER.dump_python(waiting, mode="json")
    return data


def from_data(data: object) -> Waiting:
    """The value :func:`to_data` gave. Raises ValueError (pydantic's ValidationError) for data
    that is not such a value (say, of a kind a newer release added)."""
    return _ADAPTER.validate_python(data)


def same_reason(was: Waiting | None, now: Waiting) -> bool:
    """``now`` says what ``was`` says, apart from figures that only describe the moment (the
    stock on hand and reserved, the units free in the rack, the AS/RS's limit): a reason is
    recorded again when it changes, not when only those figures do."""
    if isinstance(was, StockShort) and isinstance(now, StockShort):
        return (was.sku, was.missing) == (now.sku, now.missing)
    if isinstance(was, AsrsStockShort) and isinstance(now, AsrsStockShort):
        return (was.sku, was.missing) == (now.sku, now.missing)
    if isinstance(was, AsrsBusy) and isinstance(now, AsrsBusy):
        return was.out == now.out
    return was == now
