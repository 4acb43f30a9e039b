"""Prometheus metrics of one controller instance (one registry per instance, no globals).

Besides the ``linectl_`` metrics, the registry carries the standard collectors of a Python
process (``process_*``, ``python_info``, ``python_gc_*``) and ``linectl_build_info``. No
``_created`` series are exported: nothing reads them, and they double the series of every
counter and histogram.
"""

from __future__ import annotations

import platform
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

if TYPE_CHECKING:
    from kernel.config.model import LineConfig

CYCLE_BUCKETS = (5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 3600)
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)

# The label values each series is created with from the start at 0. An alert on
# ``increase(...)`` needs a sample before the first event (a series that appears at 1 has not
# increased), and a share on a dashboard reads 0 rather than no data. The values of the domain's
# enums (routing.sortation.Outcome, controller.orders.model.OrderType and OrderStatus,
# controller.orders.waiting.Stage, devices.errors.Refusal), which the kernel does not import:
# a unit test holds them equal.
ORDER_TYPES = ("b2c", "b2b")
# how an order ended: its terminal statuses, and exception
ORDER_OUTCOMES = ("completed", "cancelled", "failed", "exception")
# sort decision outcomes: routing's, then the Divert call failed, or the PLC refused it
SORT_OUTCOMES = (
    "diverted",
    "no_read",
    "multi_read",
    "chute_full",
    "rejected",
    "divert_failed",
    "divert_refused",
)
DEADLINE_STAGES = ("scan", "sort", "robot_step", "crane_command", "station")
# why master control did not send a robot a new order
ROBOT_ORDER_REFUSALS = ("rate_limited", "backing_off", "needs_operator", "not_at_start")


class SafeStateReason(StrEnum):
    """Why a conveyor went to its safe state (label ``reason`` of
    ``linectl_conveyor_safe_state_total``); the adapters count with these values."""

    COMMS_LOST = "comms_lost"  # the controller lost the OPC UA session to running belts
    CONTROLLER_SILENT = "controller_silent"  # the PLC's watchdog missed the heartbeat
    JAM = "jam"  # a zone jammed


class WebhookOutcome(StrEnum):
    """How a webhook delivery attempt ended (label ``outcome`` of
    ``linectl_webhook_deliveries_total``)."""

    DELIVERED = "delivered"
    RETRY = "retry"  # failed, tried again later
    DEAD = "dead"  # failed for the last time, given up


def package_version() -> str:
    """linectl's installed version (``0+unknown`` when run from a tree that is not installed)."""
    try:
        return version("linectl")
    except PackageNotFoundError:
        return "0+unknown"


class Metrics:
    """Every metric linectl exports, registered on its own registry."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, line: LineConfig | None = None
    ) -> None:
        # prometheus_client's switch is process-wide and read at every scrape: set here, it
        # holds for every registry built, in the service as in tests and benches
        disable_created_metrics()  # type: ignore[no-untyped-call]
        r = self.registry = registry or CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.build_info = Gauge(
            "linectl_build_info",
            "Always 1; the labels say which linectl runs: its version, and the Python version, "
            "operating system and machine architecture it runs on.",
            ["version", "python_version", "os", "arch"],
            registry=r,
        )
        self.build_info.labels(
            package_version(),
            platform.python_version(),
            platform.system().lower(),
            platform.machine(),
        ).set(1)
        self.orders_received = Counter(
            "linectl_orders_received", "Orders accepted from the WMS.", ["type"], registry=r
        )
        for kind in ORDER_TYPES:
            self.orders_received.labels(kind)
        self.orders_finished = Counter(
            "linectl_orders_finished",
            "Orders that ended, by type and outcome (completed, cancelled, failed, exception).",
            ["type", "outcome"],
            registry=r,
        )
        for kind in ORDER_TYPES:
            for outcome in ORDER_OUTCOMES:
                self.orders_finished.labels(kind, outcome)
        self.orders_by_status = Gauge(
            "linectl_orders", "Orders in the queue by status.", ["status"], registry=r
        )
        self.order_cycle_seconds = Histogram(
            "linectl_order_cycle_seconds",
            "Line time from acceptance to completion.",
            ["type"],
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        for kind in ORDER_TYPES:
            self.order_cycle_seconds.labels(kind)
        self.orders_on_time = Counter(
            "linectl_orders_on_time",
            "Completed orders by type and whether they completed by their due time in line "
            "time (B2C: the carrier cut-off due_at; B2B: deliver_until, else due_at).",
            ["type", "on_time"],
            registry=r,
        )
        for kind in ORDER_TYPES:
            for on_time in ("true", "false"):
                self.orders_on_time.labels(kind, on_time)
        self.sort_decisions = Counter(
            "linectl_sort_decisions", "Sort decisions by outcome.", ["outcome"], registry=r
        )
        for outcome in SORT_OUTCOMES:
            self.sort_decisions.labels(outcome)
        self.b2b_chute_allocations = Counter(
            "linectl_b2b_chute_allocations",
            "Chutes given to a B2B order of its own (dynamic allocation).",
            registry=r,
        )
        self.b2b_chute_releases = Counter(
            "linectl_b2b_chute_releases",
            "Chutes freed by their B2B order ending, by the status it ended in.",
            ["status"],
            registry=r,
        )
        self.b2b_chutes_allocated = Gauge(
            "linectl_b2b_chutes_allocated",
            "Chutes currently held by an open B2B order.",
            registry=r,
        )
        self.scan_to_divert_seconds = Histogram(
            "linectl_scan_to_divert_seconds",
            "Wall time from receiving a scan event to the Divert method returning.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.robots = Gauge(
            "linectl_robots", "Robots by availability.", ["availability"], registry=r
        )
        self.robot_state = Gauge(
            "linectl_robot_state",
            "1 for what each robot is doing: offline, fault, paused, charging, driving, "
            "working (on a trip, standing), idle.",
            ["robot", "state"],
            registry=r,
        )
        self.robot_battery = Gauge(
            "linectl_robot_battery_ratio",
            "Battery charge of each robot, 0 to 1 (absent until its first state message).",
            ["robot"],
            registry=r,
        )
        self.mqtt_connected = Gauge(
            "linectl_mqtt_connected", "1 while the MQTT broker connection is up.", registry=r
        )
        self.robots_needing_operator = Gauge(
            "linectl_robots_needing_operator",
            "Robots that get no work until an operator sees to them (off their node, not "
            "localised, orders or cancels rejected again and again).",
            registry=r,
        )
        self.robot_orders_refused = Counter(
            "linectl_robot_orders_refused",
            "New robot orders master control did not send, by reason (rate_limited, "
            "backing_off, needs_operator, not_at_start).",
            ["reason"],
            registry=r,
        )
        for reason in ROBOT_ORDER_REFUSALS:
            self.robot_orders_refused.labels(reason)
        self.robot_orders_rejected = Counter(
            "linectl_robot_orders_rejected",
            "Robot orders and order updates the robot rejected, by kind (order, update).",
            ["kind"],
            registry=r,
        )
        self.robot_instant_actions_failed = Counter(
            "linectl_robot_instant_actions_failed",
            "Instant actions that failed, by action type and how (failed: the robot said so; "
            "unanswered: no action state within robots.action_deadline).",
            ["action", "how"],
            registry=r,
        )
        self.mqtt_messages = Counter(
            "linectl_mqtt_messages",
            "VDA 5050 messages by direction, topic and result.",
            ["direction", "topic", "result"],
            registry=r,
        )
        self.opcua_connected = Gauge(
            "linectl_opcua_connected",
            "1 while the OPC UA session to a conveyor is up.",
            ["conveyor"],
            registry=r,
        )
        self.conveyor_state = Gauge(
            "linectl_conveyor_state",
            "1 for the PackML state each conveyor unit is in (Unknown while not connected).",
            ["conveyor", "state"],
            registry=r,
        )
        self.conveyor_safe_state = Counter(
            "linectl_conveyor_safe_state",
            "Times a conveyor went to its safe state (belts held), by reason (comms_lost, "
            "controller_silent, jam).",
            ["conveyor", "reason"],
            registry=r,
        )
        self.conveyor_jammed = Gauge(
            "linectl_conveyor_zone_jammed",
            "1 while a conveyor zone reports a jam (the zones upstream of it are held).",
            ["conveyor", "zone"],
            registry=r,
        )
        self.conveyor_reconciled = Counter(
            "linectl_conveyor_reconciled",
            "Tracked items put right after the conveyor came back, by what was done: "
            "diverts read back from the journal, divert requests sent again, totes given up "
            "as lost.",
            ["conveyor", "action"],
            registry=r,
        )
        self.asrs_opcua_connected = Gauge(
            "linectl_asrs_opcua_connected",
            "1 while the OPC UA session to the AS/RS cranes is up.",
            registry=r,
        )
        self.asrs_crane_state = Gauge(
            "linectl_asrs_crane_state",
            "1 for the state each aisle's crane is in (Unknown while not connected).",
            ["aisle", "state"],
            registry=r,
        )
        self.asrs_cycles = Counter(
            "linectl_asrs_cycles",
            "Crane cycles carried out, by aisle and kind (single_store, single_retrieve, dual).",
            ["aisle", "kind"],
            registry=r,
        )
        self.asrs_cycle_seconds = Histogram(
            "linectl_asrs_cycle_seconds",
            "Line seconds of a crane cycle, from its start to the crane back at the P&D point.",
            ["aisle", "kind"],
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.asrs_open = Gauge(
            "linectl_asrs_open",
            "AS/RS transports not finished, by aisle and state: waiting (not in a command yet), "
            "pending (command written, not yet accepted by the crane), sent (accepted), "
            "check (lost to a power loss, waiting for the racks' contents).",
            ["aisle", "state"],
            registry=r,
        )
        self.asrs_commands = Counter(
            "linectl_asrs_commands",
            "AS/RS crane commands by kind (store, retrieve, dual) and outcome (sent, done, "
            "failed, rejected, redone).",
            ["kind", "outcome"],
            registry=r,
        )
        self.case_totes = Counter(
            "linectl_case_totes",
            "AS/RS totes of B2B case picks by stage: requested, retrieved (at the P&D output), "
            "at_station.",
            ["stage"],
            registry=r,
        )
        self.tote_returns = Counter(
            "linectl_tote_returns",
            "AS/RS totes sent back to the rack from a station or chute (case picks, "
            "replenishments, the reject chute).",
            registry=r,
        )
        self.replenishments = Counter(
            "linectl_replenishments",
            "Replenishments of robot pick locations from the AS/RS by stage: requested, "
            "at_station (the tote reached its chute), put (confirmed), failed.",
            ["stage"],
            registry=r,
        )
        self.opcua_events = Counter(
            "linectl_opcua_events", "OPC UA events received by kind.", ["kind"], registry=r
        )
        self.robot_trips = Counter(
            "linectl_robot_trips", "Robot trips sent by outcome.", ["outcome"], registry=r
        )
        self.robot_takeovers = Counter(
            "linectl_robot_takeovers",
            "Decisions taken over from the last run at start: trips continued, requeued, "
            "returned or released, picks booked from the robots' reports, stray loads.",
            ["decision"],
            registry=r,
        )
        self.stockouts = Counter(
            "linectl_stockouts", "Order lines that could not be allocated from stock.", registry=r
        )
        self.low_stock_skus = Gauge(
            "linectl_low_stock_skus",
            "SKUs whose units on hand (all locations and totes) are below their low-stock level.",
            registry=r,
        )
        self.stock_units = Gauge(
            "linectl_stock_units",
            "Units in the inventory by state (on_hand, reserved, available).",
            ["state"],
            registry=r,
        )
        self.stock_movements = Counter(
            "linectl_stock_movements",
            "Ledger rows written by the kind of confirmed event behind them.",
            ["kind"],
            registry=r,
        )
        self.reject_totes = Gauge(
            "linectl_reject_totes",
            "Totes in or on their way to the reject chute whose picked units are off the books "
            "until restocked or written off (GET /v1/inventory/reject-totes).",
            registry=r,
        )
        self.reject_tote_units = Gauge(
            "linectl_reject_tote_units",
            "Units in those totes: picked off their locations, in no shipped order.",
            registry=r,
        )
        self.reject_totes_resolved = Counter(
            "linectl_reject_totes_resolved",
            "Reject-chute totes closed by an operator, by resolution (restocked, written_off).",
            ["resolution"],
            registry=r,
        )
        for resolution in ("restocked", "written_off"):
            self.reject_totes_resolved.labels(resolution)
        self.short_picks = Counter(
            "linectl_short_picks",
            "Picks (by a robot, or out of an AS/RS tote) that took fewer units than reserved.",
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "linectl_webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, retry, dead).",
            ["outcome"],
            registry=r,
        )
        for delivery in WebhookOutcome:
            self.webhook_deliveries.labels(delivery)
        self.traffic_released_nodes = Counter(
            "linectl_traffic_released_nodes",
            "Roadmap nodes released to robots by traffic control.",
            registry=r,
        )
        self.traffic_reroutes = Counter(
            "linectl_traffic_reroutes",
            "Robot routes re-planned by traffic control, by reason.",
            ["reason"],
            registry=r,
        )
        self.traffic_evacuations = Counter(
            "linectl_traffic_evacuations",
            "Idle robots sent out of another robot's way.",
            registry=r,
        )
        self.traffic_deadlocks = Counter(
            "linectl_traffic_deadlocks",
            "Wait cycles ended by cancelling one robot's trip.",
            registry=r,
        )
        self.traffic_waiting = Gauge(
            "linectl_traffic_waiting_robots",
            "Robots standing at their decision point, waiting for a node held by another robot.",
            registry=r,
        )
        self.webhook_outbox_pending = Gauge(
            "linectl_webhook_outbox_pending",
            "Webhook deliveries waiting in the outbox (not yet delivered or dead).",
            registry=r,
        )
        self.audit_entries = Counter(
            "linectl_audit_entries",
            "Operator calls written to the audit log, by action and result (ok, refused, failed).",
            ["action", "result"],
            registry=r,
        )
        self.audit_write_failures = Counter(
            "linectl_audit_write_failures",
            "Operator calls whose audit entry could not be stored.",
            registry=r,
        )
        self.robot_faults = Counter(
            "linectl_robot_faults",
            "Failed robot actions counted against the robot (not a stock shortage), by robot "
            "and kind (the action type).",
            ["robot", "kind"],
            registry=r,
        )
        self.robots_fault_held = Gauge(
            "linectl_robots_fault_held",
            "Robots given no new trip for a while after repeated faults (robots.fault_limit).",
            registry=r,
        )
        self.deadline_exceeded = Counter(
            "linectl_deadline_exceeded",
            "Order stages and device commands that ran past their deadline (the deadlines "
            "section of the line file), by stage.",
            ["stage"],
            registry=r,
        )
        for stage in DEADLINE_STAGES:
            self.deadline_exceeded.labels(stage)
        self.store_write_failures = Counter(
            "linectl_store_write_failures",
            "Order store calls that failed because the store could not write or read (full "
            "disk, I/O error, locked or damaged file), by store operation; each retry counts.",
            ["operation"],
            registry=r,
        )
        self.store_available = Gauge(
            "linectl_store_available",
            "1 while the order store takes writes, 0 from a failed write until one succeeds.",
            registry=r,
        )
        self.store_available.set(1)
        self.store_backlog = Gauge(
            "linectl_store_backlog",
            "Order events kept in memory because the store could not write them yet.",
            registry=r,
        )
        self.controller_active = Gauge(
            "linectl_controller_active",
            "1 while this controller commands the line (a line without a standby: always), 0 "
            "while it waits as the standby.",
            registry=r,
        )
        self.controller_active.set(1)
        self.controller_term = Gauge(
            "linectl_controller_term",
            "The term of the line's controller lease this controller last saw (0: the line has "
            "no standby); it grows by one with every change of the active controller.",
            registry=r,
        )
        self.controller_takeovers = Counter(
            "linectl_controller_takeovers",
            "Times this controller took the line over from another controller whose lease "
            "expired (a failover).",
            registry=r,
        )
        self.line_held = Gauge(
            "linectl_line_held",
            "1 while an operator holds the whole line (POST /v1/line/hold, linectl line hold) "
            "until it is resumed; 0 otherwise, also while only a jam or the PLC holds belts.",
            registry=r,
        )
        self._line: str | None = None
        if line is not None:
            self.know_line(line)

    def know_line(self, config: LineConfig) -> None:
        """Create the series of the line's own devices at 0 (its conveyor's safe-state entries
        by every reason), and drop what the line does not have (the AS/RS link of a line
        without cranes, which would otherwise read as a link down). Called once the line file
        is known, before the first scrape; calling it again for the same line changes nothing.
        """
        if self._line is not None:
            if self._line != config.line.id:
                raise ValueError(
                    f"these metrics are line {self._line!r}'s, not {config.line.id!r}'s"
                )
            return
        self._line = config.line.id
        for reason in SafeStateReason:
            self.conveyor_safe_state.labels(config.conveyor.id, reason)
        if not config.asrs.aisles:
            self.registry.unregister(self.asrs_opcua_connected)
