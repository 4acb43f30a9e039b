"""How long each stage of an order and each device command may take: the ``deadlines`` section.

Every value is in line seconds. Left out (the default), a deadline is derived from the line
itself by :mod:`controller.service.deadline_limits`: belt laps for the conveyor stages, the longest
way across the roadmap for a robot's step, the longest crane cycle for a crane command. Past a
deadline the order gets a precise ``waiting_reason`` or goes to ``exception`` (see
:mod:`controller.service.deadlines`).

Part of the line's model; everything is importable from :mod:`kernel.config.model`.
"""

from __future__ import annotations

from kernel.config.base import PositiveFloat, Strict


class Deadlines(Strict):
    # a tote a robot dropped at an induction must reach the scanner within this much running
    # time of the conveyor (time while it is held, jammed or out of contact does not count);
    # past it the order goes to exception as lost on the conveyor
    scan: PositiveFloat | None = None
    # a scanned tote must be in a chute within this much running time (its divert and every
    # recirculation up to sorter.max_passes); past it the order goes to exception
    sort: PositiveFloat | None = None
    # a robot on a trip must make progress (reach a node, finish a pick) within this time of
    # the last; past it the trip is given to another robot and the fault counts against it
    robot_step: PositiveFloat | None = None
    # a crane command must be reported finished within this time of being accepted; past it
    # the command is reported (never sent again) and the order it serves says why it waits
    crane_command: PositiveFloat | None = None
    # a B2B order may wait this long at its station for verification; past it the order says
    # so in its waiting_reason (people work there: no exception)
    station: PositiveFloat = 1800.0
