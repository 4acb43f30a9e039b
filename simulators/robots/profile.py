"""How strict a simulated robot is: the vehicle profile.

A real vehicle rejects what its vendor's software cannot execute, and a simulator kinder than the
vehicles it stands for hides master-control bugs until the line goes live. The **strict** profile
(the default) makes the simulated robot reject what real vehicles reject, each rule a separate
check in :mod:`simulators.robots.acceptance` and :mod:`simulators.robots.action_rules`:

- a new order whose first node is not where the vehicle stands: its position must lie within the
  node's ``allowedDeviationXY`` (and its orientation within ``allowedDeviationTheta`` when the
  node gives ``theta``); a deviation of 0 or none means the vendor's own tolerance, spec 6.6.6
  ("no deviation means within the normal tolerance of the AGV manufacturer") -> ``noRouteError``;
- an action id used twice in an order, or one the vehicle still reports in ``actionStates``, and
  actions whose parameters are not those the factsheet declares -> ``validationError``;
- an ``orderUpdateId`` received again with other content -> ``orderUpdateError``;
- instant actions of an unknown type, with missing, unknown or mistyped parameters, or with an
  action id already in use -> ``validationError`` referencing the action, no action state.

The **lenient** profile keeps the older, kinder behaviour (a first node whose id is the last node
counts as reachable wherever the vehicle is, no parameter checks, an unknown instant action is
reported FAILED) for tools that must talk to a master control known to need it.

``stop_on_cancel`` is what the vehicle does with ``cancelOrder`` (spec 6.8.1: "AGV stops as soon
as possible. This could be immediately or on the next node"): ``next_node`` drives on to the node
it is heading for; ``immediately`` brakes on the edge, so it stands between nodes with
``lastNodeId`` the last node it passed.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass


class ProfileName(enum.StrEnum):
    STRICT = "strict"
    LENIENT = "lenient"


class StopOnCancel(enum.StrEnum):
    NEXT_NODE = "next_node"
    IMMEDIATELY = "immediately"


DEFAULT_TOLERANCE_XY = 0.1  # metres: the vendor's "normal tolerance" on a node
DEFAULT_TOLERANCE_THETA = math.radians(5.0)  # radians, likewise for the orientation


@dataclass(frozen=True)
class VehicleProfile:
    """What a simulated vehicle accepts and how it stops on a cancel."""

    name: ProfileName = ProfileName.STRICT
    stop_on_cancel: StopOnCancel = StopOnCancel.NEXT_NODE
    tolerance_xy: float = DEFAULT_TOLERANCE_XY
    tolerance_theta: float = DEFAULT_TOLERANCE_THETA

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tolerance_xy) and self.tolerance_xy >= 0):
            raise ValueError(f"tolerance_xy must be a distance >= 0 m, not {self.tolerance_xy}")
        if not (0 <= self.tolerance_theta <= math.pi):
            raise ValueError(
                f"tolerance_theta must be between 0 and pi rad, not {self.tolerance_theta}"
            )

    @property
    def strict(self) -> bool:
        return self.name is ProfileName.STRICT

    @classmethod
    def named(
        cls,
        name: str,
        *,
        stop_on_cancel: str = StopOnCancel.NEXT_NODE,
        tolerance_xy: float = DEFAULT_TOLERANCE_XY,
        tolerance_theta: float = DEFAULT_TOLERANCE_THETA,
    ) -> VehicleProfile:
        """A profile from its textual settings (command line, fault scripts); a clear
        ``ValueError`` names what is wrong."""
        try:
            profile_name = ProfileName(name)
        except ValueError:
            raise ValueError(
                f"unknown vehicle profile {name!r}; "
                f"one of {', '.join(p.value for p in ProfileName)}"
            ) from None
        try:
            stop = StopOnCancel(stop_on_cancel)
        except ValueError:
            raise ValueError(
                f"unknown stop_on_cancel {stop_on_cancel!r}; "
                f"one of {', '.join(s.value for s in StopOnCancel)}"
            ) from None
        return cls(profile_name, stop, tolerance_xy, tolerance_theta)


STRICT = VehicleProfile()
LENIENT = VehicleProfile(ProfileName.LENIENT)
