"""Why something is overdue: the stage whose deadline passed, as a typed value.

An :class:`Overdue` is what the deadline watcher (:mod:`controller.service.deadlines`) found; it is
rendered to the order's ``waiting_reason`` text only where it is written, and its :meth:`data`
goes into the order's history event, so nothing ever parses the text back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
    stage: Stage
    subject: str  # the tote, robot, crane command or station the stage is about
    waited: float  # line seconds (conveyor stages: running time of the conveyor)
    limit: float  # the deadline, line seconds

    def render(self) -> str:
        """The order's ``waiting_reason``."""
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
