"""Many light-weight VDA 5050 vehicles in one process, on one MQTT connection: a fleet of a
thousand robots for scale benches, where :mod:`simulators.robots.fleet` (a client, tasks and a
collision scan over the fleet per robot) would spend more than the controller it feeds.

Each vehicle is a real peer of master control: it says ``ONLINE`` (retained) and publishes its
factsheet, takes orders, order updates and instant actions through the same acceptance rules
as the full simulator (:func:`simulators.robots.acceptance.check_order`,
:func:`simulators.robots.action_rules.check_instant_actions`), drives its released nodes at its
model's speed in line time, runs ``pick`` and ``drop`` for their template's duration (changing
its loads), and reports ``lastNodeId``, ``nodeStates``, ``edgeStates``, ``actionStates`` and
``loads`` in a ``state`` message on every change and at least every ``state_interval`` line
seconds. Every message is built by :class:`devices.vda5050.messages.MessageBuilder`.

What it leaves out, being light: one connection carries every vehicle, so the broker holds one
last will (``CONNECTIONBROKEN`` of the whole swarm is not said per robot; a clean stop says
``OFFLINE`` for each); no ``visualization``; no battery drain (the charge stays where it
started; ``startCharging`` on a charger node is taken); no fault injection; a pause stops a
vehicle at its next node, not on the edge.

Where the vehicles are is kept in one index (:class:`Occupancy`): two vehicles on one node, or
head-on on one edge, is a collision, counted as in :mod:`simulators.robots.collisions` (one
incident per pair and place), and a vehicle with an order that has not reached a node or
finished an action for a while is reported by :meth:`Swarm.stuck`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from devices.vda5050 import schema
from devices.vda5050.messages import (
    ActionState,
    EdgeState,
    ErrorEntry,
    Load,
    MessageBuilder,
    Pose,
    StateBody,
    heading,
)
from devices.vda5050.topics import split, topic
from kernel.clock import Clock
from kernel.config.model import LineConfig, Robot
from simulators.robots.acceptance import RobotView, check_order, message_content
from simulators.robots.action_rules import check_instant_actions
from simulators.robots.capabilities import Capabilities, capabilities
from simulators.robots.collisions import Collision, Place, conflict
from simulators.robots.loads import apply_load_action
from simulators.robots.orders import ORDER_WARNINGS
from simulators.robots.state import TERMINAL, node_state

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
Send = Callable[[str, JsonDict, int, bool], None]  # topic, message, qos, retain
DropHook = Callable[[str, str, str | None], None]  # serial, node id, load id
STATE_INTERVAL = 1.0  # line seconds: state at least this often (as the full simulator)
BATTERY = 80.0  # percent, kept: the light vehicles do not drain


@dataclass
class Leg:
    """The edge a vehicle drives now, in line time."""

    x0: float
    y0: float
    x1: float
    y1: float
    t0: float
    t1: float
    speed: float

    def at(self, now: float) -> tuple[float, float]:
        f = 1.0 if self.t1 <= self.t0 else min(1.0, max(0.0, (now - self.t0) / (self.t1 - self.t0)))
        return self.x0 + (self.x1 - self.x0) * f, self.y0 + (self.y1 - self.y0) * f


@dataclass
class Vehicle:
    """One light vehicle's state."""

    robot: Robot
    builder: MessageBuilder
    capabilities: Capabilities
    map_id: str
    speed: float
    capacity: int
    x: float
    y: float
    theta: float = 0.0
    order_id: str = ""
    order_update_id: int = 0
    order_content: JsonDict | None = None
    last_node_id: str = ""
    last_node_seq: int = 0
    nodes: deque[JsonDict] = field(default_factory=deque)
    edges: deque[JsonDict] = field(default_factory=deque)
    actions: dict[str, ActionState] = field(default_factory=dict)
    loads: dict[str, Load] = field(default_factory=dict)
    errors: list[ErrorEntry] = field(default_factory=list)
    paused: bool = False
    charging: bool = False
    leg: Leg | None = None
    running: tuple[str, JsonDict, str] | None = None  # (action id, action, node id) under way
    todo: deque[tuple[JsonDict, str]] = field(default_factory=deque)  # (action, node id) next
    cancel_id: str | None = None
    epoch: int = 0  # raised on a cancel: events of the order before are void
    progress_at: float = 0.0  # line time of the last node reached or action ended
    state_due: float = 0.0

    @property
    def serial(self) -> str:
        return self.robot.serial

    @property
    def busy(self) -> bool:
        return self.leg is not None or self.running is not None

    def executing(self) -> bool:
        return bool(self.nodes) or any(a.status not in TERMINAL for a in self.actions.values())

    def body(self, now: float) -> StateBody:
        x, y = (self.x, self.y) if self.leg is None else self.leg.at(now)
        velocity = (0.0, 0.0, 0.0)
        if self.leg is not None:
            velocity = (
                round(self.leg.speed * math.cos(self.theta), 4),
                round(self.leg.speed * math.sin(self.theta), 4),
                0.0,
            )
        return StateBody(
            order_id=self.order_id,
            order_update_id=self.order_update_id,
            last_node_id=self.last_node_id,
            last_node_sequence_id=self.last_node_seq,
            node_states=[node_state(n) for n in self.nodes],
            edge_states=[
                EdgeState(e["edgeId"], e["sequenceId"], e["released"]) for e in self.edges
            ],
            action_states=list(self.actions.values()),
            driving=self.leg is not None,
            paused=self.paused,
            pose=Pose(round(x, 3), round(y, 3), round(self.theta, 4), self.map_id),
            velocity=velocity,
            loads=list(self.loads.values()),
            battery_charge=BATTERY,
            charging=self.charging,
            errors=list(self.errors),
            map_ids=(self.map_id,),
        )


class Occupancy:
    """Where every vehicle is, indexed by node and by edge, and the collisions that follows:
    two vehicles on one node, or on one edge in opposite directions (as
    :func:`simulators.robots.collisions.conflict` says). The cost of a move follows the
    vehicles at the places it leaves and enters, not the fleet's size."""

    def __init__(self) -> None:
        self.places: dict[str, Place] = {}
        self._at: dict[tuple[str, str, str], set[str]] = {}
        self.incidents: list[Collision] = []

    @staticmethod
    def _key(place: Place) -> tuple[str, str, str]:
        return place.kind, place.start, place.end

    def move(self, serial: str, place: Place, now: float) -> None:
        old = self.places.get(serial)
        if old == place:
            return
        if old is not None:
            self._at[self._key(old)].discard(serial)
        self.places[serial] = place
        self._at.setdefault(self._key(place), set()).add(serial)
        rival = place if place.kind == "node" else Place.edge(place.end, place.start)
        for other in self._at.get(self._key(rival), ()):
            if other == serial:
                continue
            where = conflict(place, self.places[other])
            if where is None:
                continue
            pair = (serial, other) if serial < other else (other, serial)
            self.incidents.append(Collision(pair, where, now))
            log.warning(
                "robot collision",
                extra={"serials": list(pair), "place": where.describe(), "line_time": now},
            )


class Swarm:
    """The vehicles of ``robots`` (of ``config``'s fleet): what they do with the messages they
    get (:meth:`receive`) and what they send when (:meth:`step`), through ``send``. No MQTT
    here: :func:`simulators.robots.swarm_link.run_swarm` carries the messages."""

    def __init__(
        self,
        config: LineConfig,
        robots: Sequence[Robot],
        clock: Clock,
        interface_name: str,
        send: Send,
        on_drop: DropHook | None = None,
        state_interval: float = STATE_INTERVAL,
    ) -> None:
        self.config = config
        self.clock = clock
        self.interface_name = interface_name
        self.send = send
        self.on_drop = on_drop
        self.state_interval = state_interval
        self.occupancy = Occupancy()
        self.vehicles: dict[str, Vehicle] = {}
        self.published = 0  # state messages
        self._events: list[tuple[float, int, str, int]] = []  # (due, tie, serial, epoch)
        self._periodic: list[tuple[float, str]] = []  # (due, serial), lazily out of date
        self._tie = itertools.count()
        self._dirty: set[str] = set()
        self._positions: dict[str, dict[str, tuple[float, float]]] = {}
        self._nodes = {n.id: n for n in config.robots.nodes}
        caps: dict[str, Capabilities] = {}
        for r in robots:
            model = config.robots.models[r.model]
            home = config.node(r.home)
            map_id = config.node_map_id(home)
            if map_id not in self._positions:
                self._positions[map_id] = {
                    n.id: (n.x, n.y) for n in config.robots.nodes if config.node_map_id(n) == map_id
                }
            v = Vehicle(
                robot=r,
                builder=MessageBuilder(r.version, model.manufacturer, r.serial, clock),
                capabilities=caps.setdefault(r.model, capabilities(model)),
                map_id=map_id,
                speed=model.speed,
                capacity=model.tote_capacity,
                x=home.x,
                y=home.y,
                last_node_id=r.home,
            )
            self.vehicles[r.serial] = v
            self.occupancy.move(r.serial, Place.node(r.home), clock.now())

    # --- the link -----------------------------------------------------------------------------

    def topic(self, v: Vehicle, subtopic: str) -> str:
        return topic(self.interface_name, v.builder.manufacturer, v.serial, subtopic)

    def hello(self) -> None:
        """Every vehicle says ONLINE (retained) and publishes its factsheet (retained)."""
        now = self.clock.now()
        for i, v in enumerate(self.vehicles.values()):
            self.send(self.topic(v, "connection"), v.builder.connection("ONLINE"), 1, True)
            self._factsheet(v)
            # periodic states spread over the interval
            v.state_due = now + self.state_interval * i / max(1, len(self.vehicles))
            heapq.heappush(self._periodic, (v.state_due, v.serial))
            self._dirty.add(v.serial)

    def goodbye(self) -> None:
        """Every vehicle says OFFLINE (retained): a clean stop (spec 6.14)."""
        for v in self.vehicles.values():
            self.send(self.topic(v, "connection"), v.builder.connection("OFFLINE"), 1, True)

    def _factsheet(self, v: Vehicle) -> None:
        model = self.config.robots.models[v.robot.model]
        sheet = v.builder.factsheet(model, v.robot.model)
        sheet["protocolFeatures"]["agvActions"] = v.capabilities.factsheet_actions()
        self.send(self.topic(v, "factsheet"), sheet, 0, True)

    def receive(self, full_topic: str, payload: bytes) -> None:
        """A message from master control: validated against the vehicle's version, then
        taken (an invalid one is refused with a ``validationError``, spec 6.6.4.1)."""
        parts = split(full_topic)
        v = None if parts is None else self.vehicles.get(parts.serial)
        if parts is None or v is None or parts.subtopic not in ("order", "instantActions"):
            return
        parsed = schema.parse(v.builder.version, parts.subtopic, payload)
        if parsed.payload is None:
            self._reject(
                v,
                ErrorEntry(
                    "validationError",
                    "WARNING",
                    f"invalid {parts.subtopic}: {parsed.errors[0]}"[:500],
                    (("topic", parts.subtopic),),
                ),
            )
            return
        if parts.subtopic == "order":
            self.take_order(v, parsed.payload)
        else:
            self.take_instant_actions(v, parsed.payload)

    # --- orders and instant actions -----------------------------------------------------------

    def _view(self, v: Vehicle) -> RobotView:
        released = [n for n in v.nodes if n["released"]]
        decision = (released[-1]["nodeId"], released[-1]["sequenceId"]) if released else None
        horizon = frozenset(
            a["actionId"] for n in v.nodes if not n["released"] for a in n["actions"]
        )
        x, y = (v.x, v.y) if v.leg is None else v.leg.at(self.clock.now())
        return RobotView(
            serial=v.serial,
            manufacturer=v.builder.manufacturer,
            map_id=v.map_id,
            capabilities=v.capabilities,
            order_id=v.order_id,
            order_update_id=v.order_update_id,
            executing=v.executing(),
            last_node_id=v.last_node_id,
            last_node_sequence_id=v.last_node_seq,
            decision_point=decision,
            x=x,
            y=y,
            theta=v.theta,
            charging=v.charging,
            known_action_ids=frozenset(v.actions),
            horizon_action_ids=horizon,
            order_content=v.order_content,
            node_positions=self._positions[v.map_id],
        )

    def _reject(self, v: Vehicle, error: ErrorEntry) -> None:
        v.errors = [e for e in v.errors if e.error_type != error.error_type] + [error]
        log.info(
            "order rejected",
            extra={"serial": v.serial, "error_type": error.error_type, "why": error.description},
        )
        self._dirty.add(v.serial)

    def take_order(self, v: Vehicle, order: JsonDict) -> None:
        """A schema-valid order or order update (spec 6.6.2)."""
        verdict = check_order(order, self._view(v))
        if verdict.kind == "reject":
            assert verdict.error is not None
            self._reject(v, verdict.error)
            return
        if verdict.kind == "duplicate":
            return
        v.errors = [e for e in v.errors if e.error_type not in ORDER_WARNINGS]
        nodes: list[JsonDict] = order["nodes"]
        if verdict.kind == "new":
            v.order_id = order["orderId"]
            v.actions = {}
            v.nodes.clear()
            v.edges.clear()
            v.cancel_id = None
            new_nodes = nodes
            v.progress_at = self.clock.now()
        else:
            # the horizon is replaced; the stitching node keeps the first order's content
            while v.nodes and not v.nodes[-1]["released"]:
                for a in v.nodes.pop()["actions"]:
                    v.actions.pop(a["actionId"], None)
            while v.edges and not v.edges[-1]["released"]:
                v.edges.pop()
            new_nodes = nodes[1:]
        v.order_update_id = order["orderUpdateId"]
        v.order_content = message_content(order)
        v.nodes.extend(new_nodes)
        v.edges.extend(order["edges"])
        for node in new_nodes:
            for a in node["actions"]:
                v.actions[a["actionId"]] = ActionState(a["actionId"], a["actionType"], "WAITING")
        self._dirty.add(v.serial)
        self._advance(v, self.clock.now())

    def take_instant_actions(self, v: Vehicle, message: JsonDict) -> None:
        """A schema-valid instantActions message (spec 6.9), as the strict profile takes it."""
        check = check_instant_actions(message, v.capabilities, v.actions.keys())
        for error in check.rejected:
            self._reject(v, error)
        for action in check.accepted:
            action_id, kind = action["actionId"], action["actionType"]
            status, result = "FINISHED", None
            if kind == "cancelOrder":
                if not v.executing() or v.cancel_id is not None:
                    status, result = "FAILED", "no order to cancel"
                else:
                    status, v.cancel_id = "RUNNING", action_id
            elif kind == "factsheetRequest":
                self._factsheet(v)
            elif kind in ("startPause", "stopPause"):
                v.paused = kind == "startPause"
            elif kind == "startCharging":
                if v.last_node_id not in {c.node for c in self.config.robots.chargers} or v.busy:
                    status, result = "FAILED", f"not on a charger (at {v.last_node_id})"
                else:
                    v.charging = True
            elif kind == "stopCharging":
                v.charging = False
            elif kind != "stateRequest":
                status, result = "FAILED", f"instant action {kind!r} is not supported"
            v.actions[action_id] = ActionState(action_id, kind, status, result)  # type: ignore[arg-type]
        self._dirty.add(v.serial)
        self._advance(v, self.clock.now())

    def _finish_cancel(self, v: Vehicle) -> None:
        """Complete a cancelOrder at the node the vehicle stands on."""
        cancel_id = v.cancel_id
        assert cancel_id is not None
        v.nodes.clear()
        v.edges.clear()
        v.todo.clear()
        v.epoch += 1
        for action_id, a in list(v.actions.items()):
            if a.status not in TERMINAL and action_id != cancel_id:
                v.actions[action_id] = ActionState(
                    action_id, a.action_type, "FAILED", "order cancelled"
                )
        v.actions[cancel_id] = ActionState(cancel_id, "cancelOrder", "FINISHED")
        v.cancel_id = None
        self._dirty.add(v.serial)

    # --- driving ------------------------------------------------------------------------------

    def _at(self, due: float, v: Vehicle) -> None:
        heapq.heappush(self._events, (due, next(self._tie), v.serial, v.epoch))

    def _advance(self, v: Vehicle, now: float) -> None:
        """Start what comes next, if the vehicle is free to: the next action at the node it
        stands on, else the edge to its next released node."""
        while not v.busy:
            if v.cancel_id is not None:
                self._finish_cancel(v)
                return
            if v.todo:
                action, node_id = v.todo.popleft()
                self._start_action(v, action, node_id, now)
                continue
            if v.paused or not v.nodes or not v.nodes[0]["released"]:
                return
            node = v.nodes[0]
            edge = v.edges[0] if v.edges else None
            if edge is None or edge["sequenceId"] != node["sequenceId"] - 1:
                self._arrive(v, node, now)  # the first node of an order: nothing to drive
                continue
            x1, y1 = self._target(node)
            length = float(edge.get("length") or math.hypot(x1 - v.x, y1 - v.y))
            speed = min(v.speed, float(edge.get("maxSpeed") or v.speed))
            v.theta = heading(v.x, v.y, x1, y1, v.theta)
            v.leg = Leg(v.x, v.y, x1, y1, now, now + length / speed, speed)
            self.occupancy.move(v.serial, Place.edge(edge["startNodeId"], edge["endNodeId"]), now)
            self._at(v.leg.t1, v)
            self._dirty.add(v.serial)

    def _target(self, node: JsonDict) -> tuple[float, float]:
        pos = node.get("nodePosition")
        if pos is not None:
            return float(pos["x"]), float(pos["y"])
        n = self._nodes[node["nodeId"]]
        return n.x, n.y

    def _arrive(self, v: Vehicle, node: JsonDict, now: float) -> None:
        """Traversal of ``node`` (spec 6.10.2): its state and the edge to it go."""
        v.nodes.popleft()
        while v.edges and v.edges[0]["sequenceId"] < node["sequenceId"]:
            v.edges.popleft()
        v.last_node_id, v.last_node_seq = node["nodeId"], node["sequenceId"]
        v.x, v.y = self._target(node)
        v.leg = None
        v.progress_at = now
        self.occupancy.move(v.serial, Place.node(node["nodeId"]), now)
        v.todo.extend((a, node["nodeId"]) for a in node["actions"])
        self._dirty.add(v.serial)

    def _start_action(self, v: Vehicle, action: JsonDict, node_id: str, now: float) -> None:
        action_id, kind = action["actionId"], action["actionType"]
        model = self.config.robots.models[v.robot.model]
        if kind not in ("pick", "drop"):
            v.actions[action_id] = ActionState(action_id, kind, "FAILED", "not supported")
            return
        v.actions[action_id] = ActionState(action_id, kind, "RUNNING")
        v.running = (action_id, action, node_id)
        template = model.pick if kind == "pick" else model.drop
        self._at(now + template.duration, v)
        self._dirty.add(v.serial)

    def _end_action(self, v: Vehicle, now: float) -> None:
        assert v.running is not None
        action_id, action, node_id = v.running
        v.running = None
        kind = action["actionType"]
        params = {p["key"]: p["value"] for p in action.get("actionParameters", [])}
        failure = apply_load_action(v.loads, kind, params, v.capacity)
        if failure is not None:
            v.actions[action_id] = ActionState(action_id, kind, "FAILED", failure)
            v.errors.append(
                ErrorEntry(f"{kind}Failed", "WARNING", failure, (("actionId", action_id),))
            )
        else:
            v.actions[action_id] = ActionState(action_id, kind, "FINISHED")
            if kind == "drop" and self.on_drop is not None:
                load_id = params.get("loadId")
                self.on_drop(v.serial, node_id, None if load_id is None else str(load_id))
        v.progress_at = now
        self._dirty.add(v.serial)

    # --- time ---------------------------------------------------------------------------------

    def step(self) -> float:
        """Do what is due by now: edges driven to their end, actions ended, then a state
        message for every vehicle that changed or whose interval is up. Returns the line time
        the next thing is due."""
        now = self.clock.now()
        while self._events and self._events[0][0] <= now:
            _, _, serial, epoch = heapq.heappop(self._events)
            v = self.vehicles[serial]
            if epoch != v.epoch:
                continue
            if v.leg is not None:
                self._arrive(v, v.nodes[0], now)
            elif v.running is not None:
                self._end_action(v, now)
            self._advance(v, now)
        while self._periodic and self._periodic[0][0] <= now:
            due, serial = heapq.heappop(self._periodic)
            if due == self.vehicles[serial].state_due:
                self._dirty.add(serial)
        for serial in self._dirty:
            self.publish_state(self.vehicles[serial], now)
        self._dirty.clear()
        nxt = self._periodic[0][0] if self._periodic else now + self.state_interval
        if self._events:
            nxt = min(nxt, self._events[0][0])
        return nxt

    def publish_state(self, v: Vehicle, now: float) -> None:
        self.send(self.topic(v, "state"), v.builder.state(v.body(now)), 0, False)
        self.published += 1
        v.state_due = now + self.state_interval
        heapq.heappush(self._periodic, (v.state_due, v.serial))

    # --- what the peers saw -------------------------------------------------------------------

    @property
    def collisions(self) -> list[Collision]:
        return list(self.occupancy.incidents)

    def stuck(self, after: float) -> list[str]:
        """Vehicles with an order left that have not reached a node nor ended an action for
        ``after`` line seconds."""
        now = self.clock.now()
        return sorted(
            v.serial
            for v in self.vehicles.values()
            if v.executing() and now - v.progress_at >= after
        )

    def longest_standstill(self) -> float:
        """The longest a vehicle with an order left has gone without progress, up to now."""
        now = self.clock.now()
        waits = [now - v.progress_at for v in self.vehicles.values() if v.executing()]
        return max(waits, default=0.0)


def robots_of(config: LineConfig, serials: Iterable[str] | None = None) -> list[Robot]:
    """The fleet's robots (those of ``serials``, if given)."""
    if serials is None:
        return list(config.robots.fleet)
    wanted = set(serials)
    return [r for r in config.robots.fleet if r.serial in wanted]
