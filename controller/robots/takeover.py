"""Taking over the robots at start: what they did while no controller listened, and their totes.

A start (after a crash, a kill or a deploy) finds the trips of the last run in the order store
(:mod:`controller.robots.trip_records`). :meth:`RobotTakeover.restore` puts them back on their
robots as they were (same trip, tote, picks and action ids, the stock of the picks left reserved
again) before any device is heard from. Master control asks every robot for its state
(``stateRequest``); each robot's first report is taken over (:meth:`RobotTakeover.reported`),
decided by :mod:`controller.robots.takeover_plan`:

1. what its current job did meanwhile is booked (picks finished, drops done, actions failed),
   exactly once: the pick's action id is the ledger's idempotency key;
2. a robot still executing an order is stopped (``cancelOrder``) and settled once it stands;
3. each trip left on it continues as a new job from where it stands (its picks left into the
   same tote, then its drop), goes back to the queue (neither its job nor its tote is on the
   robot), or, void, has its tote brought back; a load no trip accounts for is dropped at an
   induction and sorted to the reject chute (``robots.stray_totes: induction``), or the robot
   is held out of work until it is unloaded by hand (``hold``).

Each decision is written into the order's history (``robot_taken_over``). No robot gets work
before it is taken over, and nothing is dispatched until every reachable robot is, or until
``robots.takeover_wait`` line seconds passed: a robot not heard from by then is unavailable and
its trips are given away after ``robots.failure_grace`` as for any lost robot.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Sequence

from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.trips import InFlight, Leg, Serving, Trip
from controller.orders.model import HistoryEvent, OrderRecord, OrderType
from controller.robots.picking import Picking
from controller.robots.takeover_plan import Fate, TripFacts, must_stop, outcomes, settle
from controller.robots.trip_records import StoredTrip, stored_trips
from controller.store.inventory import InsufficientStock
from devices import base as dev
from devices.errors import DeviceError
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics

log = logging.getLogger(__name__)

# ... and never less than this many wall seconds: a process start (store, links, subscriptions)
# takes wall time, which a fast simulated clock would count as many line seconds
TAKEOVER_WAIT_WALL = 5.0

Requeue = Callable[[Trip, str], Awaitable[None]]
Cancelled = Callable[[Trip], Awaitable[None]]
Handle = Callable[[dev.DeviceEvent], Awaitable[None]]


class Phase(enum.Enum):
    WAITING = "waiting"  # not heard from since the start
    STOPPING = "stopping"  # cancelOrder sent: settled once it stands
    DONE = "done"


class RobotTakeover:
    """The take-over of every robot of the fleet (see the module docstring)."""

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        history: History,
        flight: InFlight,
        inventory: Inventory,
        fleet: dev.RobotFleet,
        picking: Picking,
        metrics: Metrics,
    ) -> None:
        self.clock = clock
        self.history = history
        self.flight = flight
        self.inventory = inventory
        self.fleet = fleet
        self.picking = picking
        self.metrics = metrics
        self.phase = {r.serial: Phase.WAITING for r in config.robots.fleet}
        self.stray_policy = config.robots.stray_totes
        self._held: dict[str, set[str]] = {}  # serial -> stray totes it must be unloaded of
        self.wait = max(config.robots.takeover_wait, TAKEOVER_WAIT_WALL * clock.time_scale)
        self.handle: Handle | None = None  # the orchestrator's, for what the robot reported
        self.requeue: Requeue | None = None  # an order goes back to the queue
        self.cancelled: Cancelled | None = None  # a cancelled order's trip ended on the robot
        # robots with trips not heard from when dispatching starts: lost from then on
        self.unheard: Callable[[list[str]], None] = lambda serials: None
        self._stops: dict[str, str] = {}  # serial -> action id of the cancelOrder sent
        # robots being settled: the dispatch round's poll and a robot's report may both find
        # a robot standing; it is settled once
        self._settling: set[str] = set()
        self._stored: dict[str, StoredTrip] = {}  # trip id -> as restored
        self._started = clock.now()
        self._open = False

    # --- before any device is heard from ------------------------------------------------------

    async def restore(self, orders: Sequence[tuple[OrderRecord, list[HistoryEvent]]]) -> set[str]:
        """Put the trips of the last run back on their robots; returns the ids of the orders
        whose trip was restored (the others are queued again as before)."""
        self._started = self.clock.now()
        jobs: dict[tuple[str, str], list[tuple[Trip, StoredTrip]]] = {}
        for rec, events in orders:
            for st in stored_trips(rec.id, events):
                if st.robot not in self.phase:
                    continue
                trip = Trip(
                    st.trip_id,
                    rec.id,
                    st.robot,
                    st.tote,
                    st.picks,
                    st.induction,
                    rec.updated_at,
                    rec.body.destination,
                    rec.type is OrderType.B2B,
                    picked=dict(st.picked),
                    picks_done=set(st.booked),
                    leg=Leg.STOPPING if st.stopping else Leg.ON_ROBOT,
                )
                jobs.setdefault((st.robot, st.job_id), []).append((trip, st))
        restored: set[str] = set()
        for (serial, job_id), members in jobs.items():
            refs = {a: r for _, st in members for a, r in st.refs().items()}
            self.flight.start(job_id, [t for t, _ in members], refs)
            for trip, st in members:
                self._stored[trip.trip_id] = st
                restored.add(trip.order_id)
                try:
                    await self.inventory.reserve(trip.order_id, trip.unpicked(), trip.trip_id)
                except InsufficientStock as exc:
                    log.warning(
                        "stock of a restored trip not reserved again",
                        extra={"order": trip.order_id, "trip": trip.trip_id, "error": str(exc)},
                    )
            log.info(
                "trips of the last run restored",
                extra={"robot": serial, "job": job_id, "orders": [t.order_id for t, _ in members]},
            )
        return restored

    # --- the gate ------------------------------------------------------------------------------

    def done(self, serial: str) -> bool:
        """The robot is taken over: it may get work (a robot held for stray totes once they
        are off it)."""
        held = self._held.get(serial)
        if held is not None:
            snap = self.fleet.snapshot().get(serial)
            if snap is None or held & {ld.load_id for ld in snap.loads if ld.load_id}:
                return False
            del self._held[serial]
            log.info("stray totes unloaded; robot back to work", extra={"robot": serial})
        return self.phase.get(serial) is Phase.DONE

    def ready(self) -> bool:
        """Dispatching may start: every reachable robot is taken over (or stopping), or the
        bounded wait is over."""
        if self._open:
            return True
        snaps = self.fleet.snapshot()
        waiting = sorted(
            s for s, ph in self.phase.items() if ph is Phase.WAITING and _reachable(snaps.get(s))
        )
        expired = self.clock.now() - self._started >= self.wait
        if waiting and not expired:
            return False
        self._open = True
        unheard = sorted(s for s, ph in self.phase.items() if ph is Phase.WAITING)
        self.unheard(unheard)
        if unheard:
            log.warning(
                "robots not taken over before dispatching started; they get work once they report",
                extra={"robots": unheard, "waited": round(self.clock.now() - self._started, 1)},
            )
        else:
            log.info("every robot taken over", extra={"robots": len(self.phase)})
        return True

    # --- what the robots report ------------------------------------------------------------------

    async def reported(self, serial: str) -> None:
        """The robot reported (available): take it over if not done yet."""
        phase = self.phase.get(serial)
        snap = self.fleet.snapshot().get(serial)
        if phase is None or phase is Phase.DONE or snap is None or not snap.reported:
            return
        if phase is Phase.STOPPING:
            if not must_stop(snap):
                await self._settle(serial, snap)
            return
        await self._book(serial, snap, failures=True)
        if not must_stop(snap):
            await self._settle(serial, snap)
            return
        try:
            action_id = await self.fleet.cancel_order(serial)
        except DeviceError as exc:
            log.warning(
                "robot could not be stopped for its take-over; tried again when it reports",
                extra={"robot": serial, "error": str(exc)},
            )
            return
        self._stops[serial] = action_id
        self.phase[serial] = Phase.STOPPING
        log.info(
            "robot stopped for its take-over",
            extra={"robot": serial, "order_id": snap.order_id, "action": action_id},
        )

    async def action_ended(self, ev: dev.RobotActionFinished | dev.RobotActionFailed) -> bool:
        """The outcome of a take-over's ``cancelOrder``: the robot stands (or had no order
        left); settle it. False for any other action."""
        if self._stops.get(ev.serial) != ev.action_id:
            return False
        del self._stops[ev.serial]
        snap = self.fleet.snapshot().get(ev.serial)
        if (
            snap is not None
            and self.phase.get(ev.serial) is Phase.STOPPING
            and not must_stop(snap)  # else settled by poll() once it stands
        ):
            await self._settle(ev.serial, snap)
        return True

    async def poll(self) -> None:
        """Settle every stopping robot that stands still by now (its cancel's outcome is the
        quick way there; this one does not depend on it arriving, or on its cancel being the
        one that stopped the robot)."""
        stopping = [s for s, ph in self.phase.items() if ph is Phase.STOPPING]
        snaps = self.fleet.snapshot() if stopping else {}
        for serial in stopping:
            snap = snaps.get(serial)
            if (
                self.phase.get(serial) is Phase.STOPPING
                and snap is not None
                and not must_stop(snap)
            ):
                self._stops.pop(serial, None)
                await self._settle(serial, snap)

    # --- booking and settling ------------------------------------------------------------------

    def _facts(self, serial: str) -> list[tuple[Trip, TripFacts]]:
        facts = []
        for trip in self.flight.trips.values():
            if trip.serial != serial or trip.case_tote:
                continue
            st = self._stored.get(trip.trip_id)
            facts.append(
                (
                    trip,
                    TripFacts(
                        trip.trip_id,
                        trip.tote,
                        trip.job_id,
                        trip.live,
                        {} if st is None else st.pick_actions,
                        "" if st is None else st.drop_action,
                        frozenset(trip.picks_done),
                        trip.dropped,
                    ),
                )
            )
        return facts

    async def _book(self, serial: str, snap: dev.RobotSnapshot, *, failures: bool) -> None:
        """Book what the robot's current job did while no controller listened."""
        assert self.handle is not None
        found = outcomes(snap, [f for _, f in self._facts(serial)], failures=failures)
        types = {a.action_id: a.action_type for a in snap.actions}
        now = self.clock.utcnow()
        order_id = snap.order_id or ""
        for action_id in found.finished:
            self.metrics.robot_takeovers.labels("booked").inc()
            await self.handle(
                dev.RobotActionFinished(serial, order_id, action_id, types[action_id], "", now)
            )
        for action_id, reason in found.failed:
            await self.handle(
                dev.RobotActionFailed(
                    serial, order_id, action_id, types[action_id], "", reason, now
                )
            )

    async def _settle(self, serial: str, snap: dev.RobotSnapshot) -> None:
        """The robot stands: book what its stop finished, then decide each trip's fate."""
        if serial in self._settling:
            return
        self._settling.add(serial)
        try:
            await self._settle_once(serial, snap)
        finally:
            self._settling.discard(serial)

    async def _settle_once(self, serial: str, snap: dev.RobotSnapshot) -> None:
        await self._book(serial, snap, failures=False)
        facts = self._facts(serial)
        settlement = settle(snap, [f for _, f in facts])
        for job_id in {t.job_id for t, _ in facts}:
            self.flight.job_done(serial, job_id)
        for trip, _ in facts:
            fate = settlement.fates.get(trip.trip_id)
            if fate is not None:
                await self._apply(serial, snap, trip, fate)
        if settlement.unknown_loads and self.stray_policy == "hold":
            self._held[serial] = set(settlement.unknown_loads)
            self.metrics.robot_takeovers.labels("stray_load").inc(len(settlement.unknown_loads))
            log.warning(
                "robot carries totes no trip accounts for; it gets no work until they are "
                "unloaded by hand",
                extra={"robot": serial, "totes": list(settlement.unknown_loads)},
            )
        else:
            for tote in settlement.unknown_loads:
                self._stray(serial, tote)
        if settlement.unnamed_loads:
            log.warning(
                "robot carries loads without a load id; unload it by hand",
                extra={"robot": serial, "loads": settlement.unnamed_loads},
            )
        self.phase[serial] = Phase.DONE
        log.info(
            "robot taken over",
            extra={
                "robot": serial,
                "trips": {t: f.value for t, f in settlement.fates.items()},
                "stray_totes": list(settlement.unknown_loads),
            },
        )

    async def _apply(self, serial: str, snap: dev.RobotSnapshot, trip: Trip, fate: Fate) -> None:
        self.metrics.robot_takeovers.labels(fate.value).inc()
        if trip.stopping:  # stopped to give way before the restart: it stands now
            trip.stood()
        carried = any(ld.load_id == trip.tote for ld in snap.loads)
        await self._record(trip, serial, fate, carried)
        if fate is Fate.CONTINUE:
            trip.continue_later()
        elif fate is Fate.REQUEUE:
            await self.inventory.release(
                trip.order_id, trip.unpicked(), trip.trip_id, "robot no longer has the trip"
            )
            trip.requeue()
            self.flight.forget(trip)
            assert self.requeue is not None
            await self.requeue(trip, f"robot {serial} no longer has the trip nor its tote")
        else:
            await self._void(trip, carried=fate is Fate.RETURN)
            if not trip.requeued and self.cancelled is not None:
                await self.cancelled(trip)  # a cancel asked for meanwhile ends here

    async def give_up(self, trip: Trip) -> None:
        """A taken-over trip not yet sent again no longer serves its order (cancelled, given
        to another robot): its stock is freed and its tote, if the robot carries it, comes
        back."""
        trip.stop_continuing()
        snap = self.fleet.snapshot().get(trip.serial)
        carried = snap is not None and any(ld.load_id == trip.tote for ld in snap.loads)
        await self._void(trip, carried=carried)

    async def _void(self, trip: Trip, *, carried: bool) -> None:
        await self.picking.settle_void(trip)
        if carried:  # the tote is on the robot, whatever the store says was picked into it
            if not trip.returning:
                trip.bring_back()
            self.flight.trips[trip.trip_id] = trip
            self.flight.by_tote[trip.tote] = trip
        else:
            self.flight.forget(trip)

    async def _record(self, trip: Trip, serial: str, fate: Fate, carried: bool) -> None:
        rec = await self.history.get(trip.order_id)
        if rec is None:
            return
        await self.history.record(
            rec,
            "robot_taken_over",
            data={
                "robot": serial,
                "trip": trip.trip_id,
                "job": trip.job_id,
                "decision": fate.value,
                "tote": trip.tote,
                "tote_on_robot": carried,
                "picks_done": sorted(trip.picks_done),
            },
        )

    def _stray(self, serial: str, tote: str) -> None:
        """A load no trip accounts for: dropped at an induction, sorted to the reject chute."""
        self.metrics.robot_takeovers.labels("stray_load").inc()
        trip = Trip(
            f"stray-{tote}",
            "",
            serial,
            tote,
            (),
            "",
            self.clock.utcnow(),
            "",
            False,
            serving=Serving.REQUEUED,
            leg=Leg.RETURNING,
        )
        self.flight.trips[trip.trip_id] = trip
        self.flight.by_tote[tote] = trip
        log.warning(
            "robot carries a tote no trip accounts for; it is dropped at an induction for the "
            "reject chute",
            extra={"robot": serial, "tote": tote},
        )


def _reachable(snap: dev.RobotSnapshot | None) -> bool:
    """Worth waiting for: not known to be offline, and not ONLINE and reporting while unable
    to work (manual mode, a fatal error)."""
    if snap is None or snap.connection in ("OFFLINE", "CONNECTIONBROKEN"):
        return False
    return not (snap.connection == "ONLINE" and snap.reported and not snap.available)
