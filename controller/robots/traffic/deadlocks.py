"""Robots stuck in something the traffic planner does not resolve, and the robot that gives way.

Robots waiting on each other in a cycle for ``deadlock_after`` line seconds, or a robot whose way
has not got shorter for ``stall_after`` (it keeps stepping aside and coming back): one trip of
each such group is cancelled (see ``routing.traffic.yielding_robots``); groups that share no
robot give way independently, so that jams in different parts of a large fleet do not queue
behind each other; standing idle, that robot is moved out of the
way like any parked robot, and its trips continue from where it stands. A robot that gave way gets
no new trip for ``deadlock_after``, so that it can be moved aside instead of being sent straight
back into the same jam; if robots are stuck again soon after, another robot of the cycle gives
way before it does (standing still at the end of a dead end, it could not make room).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from controller.robots.traffic.state import TrafficFleetState
from devices.errors import DeviceError
from routing import traffic

log = logging.getLogger("controller.robots.traffic.fleet")  # traffic control logs under one name

# a robot that gave way is passed over, when the same robots are stuck again, for this many
# times ``deadlock_after``: its give-way, its rest and one more wait
GAVE_WAY_REMEMBERED = 4


class Deadlocks:
    """Finds robots stuck on each other or stalled, and has one of them give way."""

    def __init__(
        self, shared: TrafficFleetState, on_deadlock: Callable[[str, str], Awaitable[None]]
    ) -> None:
        self.shared = shared
        self.on_deadlock = on_deadlock  # (serial, why): cancel the robot's trip, requeue

    async def end_deadlock(self) -> None:
        """Have one robot of each group of stuck robots give way; a group whose robots were
        in a give-way within ``deadlock_after`` (or still are) is left to it."""
        shared = self.shared
        deadlock_after = shared.settings.deadlock_after
        now = shared.clock.now()
        for serial, since in list(shared.giving_way.items()):
            if now - since >= 2 * deadlock_after:
                # its order never ended (robot gone?): do not let it block the next one
                del shared.giving_way[serial]
        for serial, at in list(shared.gave_way.items()):
            if now - at >= GAVE_WAY_REMEMBERED * deadlock_after:
                del shared.gave_way[serial]
        busy: set[str] = set()
        for serial, (at, group) in list(shared.give_ways.items()):
            if serial in shared.giving_way or now - at < deadlock_after:
                busy.update(group)
            else:
                del shared.give_ways[serial]
        stuck = [
            s
            for _, s in sorted((w.since, s) for s, w in shared.waits.items())
            if now - shared.waits[s].since >= deadlock_after
        ]
        over = [s for s in self.stalled() if s not in stuck]
        stuck += over
        if all(s in busy for s in stuck):
            return
        waits = {s: traffic.Wait(s, w.node, w.holder) for s, w in shared.waits.items()}
        priority = {r.serial: r.priority for r in shared.planner.robots}
        gave_way = shared.gave_way.keys()
        if not traffic.yielding_robots(waits, stuck, set(shared.jobs), priority, gave_way, busy):
            return  # nothing to do even if every robot could give way: no snapshot needed
        # the robots that may give way or be stalled, taken only when one may give way
        fleet = shared.fleet.snapshot_of(_involved(waits, stuck) & shared.jobs.keys())
        for serial in over:
            snap = fleet.get(serial)
            if snap is not None and snap.paused:  # paused by an operator: not stalled
                shared.best[serial] = (len(shared.planner.robot(serial).route), now)
                stuck.remove(serial)
        available = {s for s, snap in fleet.items() if snap.available}
        choices = traffic.yielding_robots(waits, stuck, available, priority, gave_way, busy)
        for victim, involved in choices:
            await self.give_way(victim, involved)

    def stalled(self) -> list[str]:
        """Robots with a trip whose way left has not got shorter for ``stall_after``. A robot
        at the end of its way (working there) is not stalled; one paused by an operator is
        taken out by :meth:`end_deadlock` when it looks at the robots' snapshots (its time
        then counts again from there)."""
        shared = self.shared
        now = shared.clock.now()
        out = []
        for serial in shared.jobs:
            left = len(shared.planner.robot(serial).route)
            best = shared.best.get(serial)
            if best is None or left < best[0] or left == 1:
                shared.best[serial] = best = (left, now)
            if now - best[1] >= shared.settings.stall_after:
                out.append(serial)
        return out

    async def give_way(self, victim: str, involved: Sequence[str]) -> None:
        """Cancel ``victim``'s trip so that the ``involved`` robots can pass."""
        shared = self.shared
        shared.giving_way[victim] = shared.clock.now()
        shared.gave_way[victim] = shared.clock.now()
        shared.give_ways[victim] = (shared.clock.now(), frozenset(involved))
        shared.metrics.traffic_deadlocks.inc()
        why = f"traffic deadlock between {', '.join(sorted(involved))}"
        log.warning(
            "deadlock: cancelling one robot's trip so the others can pass",
            extra={"robot": victim, "involved": sorted(involved)},
        )
        try:
            await self.on_deadlock(victim, why)
        except DeviceError as exc:
            shared.giving_way.pop(victim, None)
            log.warning(
                "deadlock: the trip could not be cancelled",
                extra={"robot": victim, "error": str(exc)},
            )

    def trip_ended(self, serial: str) -> None:
        """The robot's order ended: a robot that was giving way now rests a while."""
        shared = self.shared
        shared.best.pop(serial, None)
        if shared.giving_way.pop(serial, None) is not None:
            shared.resting[serial] = shared.clock.now() + shared.settings.deadlock_after

    def accepts_trips(self, serial: str) -> bool:
        """Whether the robot may be given a trip now (False for a while after it gave way)."""
        shared = self.shared
        until = shared.resting.get(serial)
        if until is None:
            return True
        if shared.clock.now() >= until:
            del shared.resting[serial]
            return True
        return False


def _involved(waits: Mapping[str, traffic.Wait], stuck: Sequence[str]) -> set[str]:
    """The robots ``stuck`` and every robot they wait on, directly or through others: those
    of which one may give way (see ``routing.traffic.yielding_robots``)."""
    out: set[str] = set()
    for serial in stuck:
        s: str | None = serial
        while s is not None and s not in out:
            out.add(s)
            wait = waits.get(s)
            s = None if wait is None else wait.holder
    return out
