"""The conveyor loop and sorter of the line's configuration: zones, the scanner, diverts,
chutes, the sort plan with B2B chute allocation, and the PLC watchdog.

Part of the line's model; everything is importable from :mod:`kernel.config.model`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from kernel.config.base import Id, NonNegFloat, PositiveFloat, Strict
from kernel.config.service import OpcUaEndpoint


class Zone(Strict):
    id: Id
    length: PositiveFloat = 1.0


class Scanner(Strict):
    id: Id
    zone: Id  # the read happens as an item leaves this zone
    no_read_rate: Annotated[float, Field(ge=0, le=1)] = 0.0


class ChuteKind(StrEnum):
    CARRIER = "carrier"
    B2B = "b2b"
    REJECT = "reject"
    REPLENISHMENT = "replenishment"  # AS/RS totes for robot pick locations are decanted here


class Chute(Strict):
    id: Id
    kind: ChuteKind
    capacity: Annotated[int, Field(ge=1)] = 50
    drain_seconds: NonNegFloat = 20.0  # time an operator needs to clear one tote


class Divert(Strict):
    id: Id
    zone: Id  # the divert fires as an item leaves this zone
    chute: Id


def _chute_list(value: Any) -> Any:
    """A sort plan entry names one chute (``CH-DHL``) or several (``[CH-DHL, CH-DHL-2]``)."""
    return (value,) if isinstance(value, str) else value


ChuteIds = Annotated[tuple[Id, ...], BeforeValidator(_chute_list)]


class B2bAllocation(Strict):
    """How B2B orders get the chute (value-added station) their totes are sorted to.

    ``static`` (the default): by the sort plan like any order, else ``b2b_chute``; orders share
    a chute. ``dynamic``: every open B2B order holds one chute of ``chutes`` (the pool, chutes of
    kind b2b) of its own from its first divert until it completes, is cancelled or goes to
    exception; then the chute is free for the next order. Precedence in dynamic mode:

    1. an order that holds a chute goes there;
    2. a destination whose sort plan entry names chutes outside the pool keeps them (a customer
       with a dedicated station; a plan entry names either pool chutes or others, never both);
    3. else a free pool chute (not held, not full, not disabled) is allocated: one the
       destination's plan entry names if one is free, else any; the emptiest first;
    4. no pool chute free: ``overflow: recirculate`` (the default) sends the tote round again
       and, after ``max_passes``, to the reject chute (the order goes to exception);
       ``overflow: static`` sends it where static mode would (the plan entry, else
       ``b2b_chute``), sharing that station with the order holding it.
    """

    mode: Literal["static", "dynamic"] = "static"
    chutes: tuple[Id, ...] = ()  # the pool; dynamic mode only
    overflow: Literal["recirculate", "static"] = "recirculate"


class Sorter(Strict):
    """The sorter: its diverts and chutes, and where orders go.

    ``sort_plan`` maps a destination key (carrier, route, customer) to one chute id or a list
    of them; with several, each tote goes to the available one (not full, not disabled) holding
    the fewest totes, ties to the first listed. ``b2b_chute`` takes B2B orders whose destination
    has no plan entry; ``b2b_allocation`` can give each B2B order a chute of its own.
    """

    id: Id
    diverts: list[Divert]
    chutes: list[Chute]
    reject_chute: Id
    sort_plan: dict[str, ChuteIds]  # destination key -> chute ids (one or more)
    b2b_chute: Id | None = None  # where B2B orders without a plan entry go
    b2b_allocation: B2bAllocation = B2bAllocation()
    max_passes: Annotated[int, Field(ge=1, le=20)] = 3


class ConveyorWatchdog(Strict):
    """The controller's life sign to the conveyor PLC (docs/opcua-model.md, Watchdog). Both in
    wall seconds, whatever the time scale: a stalled controller is a real-time event."""

    period: PositiveFloat = 0.5  # between the controller's counter writes
    # without a new counter value before the PLC (the simulator) holds the belts
    timeout: PositiveFloat = 3.0


class Conveyor(Strict):
    id: Id = "C1"
    opcua: OpcUaEndpoint = OpcUaEndpoint()
    belt_speed: PositiveFloat = 2.0  # m/s
    min_gap: PositiveFloat = 0.8  # m between item fronts on the belt
    watchdog: ConveyorWatchdog = ConveyorWatchdog()
    # after the PLC held the belts because the controller went silent (communication lost,
    # controller stalled), resume them once connected again and the state has been read
    resume_after_comms_loss: bool = True
    # line seconds a tote the controller sent onto the conveyor may stay out of sight after the
    # conveyor came back (not in its tracking table, not scanned) before its order goes to
    # exception as lost on the conveyor
    lost_item_grace: PositiveFloat = 60.0
    zones: list[Zone]  # in loop order; after the last zone items return to the first
    scanner: Scanner
    sorter: Sorter
    # a jam on zone J stops J and this many zones before it (zero-pressure accumulation);
    # the other zones run on
    jam_hold_zones: Annotated[int, Field(ge=0)] = 2

    @model_validator(mode="after")
    def _jam_hold_fits(self) -> Conveyor:
        if self.jam_hold_zones >= len(self.zones):
            raise ValueError(
                f"jam_hold_zones ({self.jam_hold_zones}) must be less than the number of "
                f"zones ({len(self.zones)})"
            )
        return self
