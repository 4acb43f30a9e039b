"""The devices and links dashboard: MQTT and OPC UA links, robots online, OPC UA events,
conveyor reconciliation, webhooks, operator commands, the order store and stock.
"""

from __future__ import annotations

from typing import Any

from dashboards.layout import dashboard
from dashboards.panels import (
    RATE,
    flag_map,
    not_standby,
    series,
    stat,
    targets,
    timeline,
)

# a controller's role: active, standby (a line with a standby), or not scraped
ROLES = [
    {
        "type": "value",
        "options": {
            "1": {"text": "active", "color": "green", "index": 0},
            "0": {"text": "standby", "color": "blue", "index": 1},
            "-1": {"text": "down", "color": "red", "index": 2},
        },
    }
]


def devices() -> dict[str, Any]:
    link = flag_map("up", "down")
    stats = [
        stat(
            "linectl scraped",
            "1 while Prometheus reaches linectl's /metrics.",
            'min(up{job="linectl"})',
            mappings=link,
            no_value="not scraped",
        ),
        stat(
            "Active controller",
            "The controller that commands the line (its scrape target) and the term of the "
            "line's lease it holds. The term grows by one with every change of the active "
            "controller; 0: the line has no standby. None active: no controller commands the "
            "line (alert LinectlNoActiveController). The controllers' own names are in "
            "GET /v1/line (controller).",
            "max by (line, instance) (linectl_controller_term "
            "and on (job, instance) (linectl_controller_active == 1))",
            "none",
            legend="{{instance}}",
            text_mode="value_and_name",
            thresholds=[(None, "blue")],
            no_value="none active",
        ),
        stat(
            "MQTT broker",
            "1 while the active controller's connection to the MQTT broker is up.",
            f"min({not_standby('linectl_mqtt_connected')})",
            mappings=link,
            no_value="unknown",
        ),
        stat(
            "Conveyor OPC UA",
            "1 while the active controller's OPC UA session to every conveyor is up.",
            f"min({not_standby('linectl_opcua_connected')})",
            mappings=link,
            no_value="unknown",
        ),
        stat(
            "AS/RS OPC UA",
            "1 while the active controller's OPC UA session to the AS/RS cranes is up.",
            f"min({not_standby('linectl_asrs_opcua_connected')})",
            mappings=link,
            no_value="unknown",
        ),
        stat(
            "Robots offline",
            "Robots not ONLINE or without any state message.",
            'sum(linectl_robot_state{state="offline"})',
            thresholds=[(None, "green"), (1, "red")],
            no_value="unknown",
        ),
        stat(
            "Webhook outbox",
            "Webhook deliveries waiting (not delivered, not dead).",
            "max(linectl_webhook_outbox_pending)",
            thresholds=[(None, "green"), (100, "orange")],
            no_value="unknown",
        ),
        stat(
            "Order store",
            "1 while the order store takes writes; 0 while writes fail (full disk, I/O error): "
            "the line is held by the store until they succeed again.",
            "min(linectl_store_available)",
            mappings=flag_map("writes", "failing"),
            no_value="unknown",
        ),
        stat(
            "linectl version",
            "The linectl version each controller of the line runs (linectl_build_info); two "
            "versions: the controllers of a line with a standby differ.",
            "max by (version) (linectl_build_info)",
            legend="{{version}}",
            text_mode="name",
            thresholds=[(None, "blue")],
            no_value="unknown",
        ),
    ]
    rest = [
        timeline(
            "Controller roles",
            "Each controller of the line over time: green active (it commands the line), blue "
            "standby, red down (not scraped). A failover shows as the green passing from one "
            "row to the other (alert LinectlFailover); a line without a standby has one row, "
            "always active.",
            targets(
                (
                    "linectl_controller_active "
                    'or on (job, instance) ((up{job="linectl"} == 0) - 1)',
                    "{{instance}}",
                )
            ),
            ROLES,
        ),
        timeline(
            "Links",
            "Each device link of the active controller over time: green up, red down.",
            targets(
                (f"min({not_standby('linectl_mqtt_connected')})", "MQTT broker"),
                (
                    f"min by (conveyor) ({not_standby('linectl_opcua_connected')})",
                    "conveyor {{conveyor}}",
                ),
                (f"min({not_standby('linectl_asrs_opcua_connected')})", "AS/RS cranes"),
            ),
            link,
        ),
        timeline(
            "Robots online",
            "Each robot's link: offline (not ONLINE or no state) in red.",
            targets(('1 - linectl_robot_state{state="offline"}', "{{robot}}")),
            flag_map("online", "offline"),
        ),
        series(
            "Robots by availability",
            "Robots available and unavailable to the controller.",
            targets(("sum by (availability) (linectl_robots)", "{{availability}}")),
            stack=True,
        ),
        series(
            "OPC UA events",
            "OPC UA events received per second by kind (scans, divert confirmations, crane "
            "events).",
            targets(
                (f"sum by (kind) (rate(linectl_opcua_events_total[{RATE}]))", "{{kind}}"),
            ),
            "ops",
        ),
        series(
            "Conveyor reconciliation",
            "Tracked items put right after the conveyor came back, by action.",
            targets(
                (
                    "sum by (conveyor, action) (increase(linectl_conveyor_reconciled_total"
                    f"[{RATE}]))",
                    "{{conveyor}} {{action}}",
                )
            ),
        ),
        series(
            "Webhook deliveries",
            "Delivery attempts per second by outcome (delivered, retry, dead); dead deliveries "
            "were given up.",
            targets(
                (
                    f"sum by (outcome) (rate(linectl_webhook_deliveries_total[{RATE}]))",
                    "{{outcome}}",
                ),
            ),
            "ops",
        ),
        series(
            "Operator commands",
            "Calls to operator routes per interval (hold, resume, jog, robot and conveyor "
            "commands, counts, verifications), by result: refused calls (no token, wrong "
            "scope, a state that does not allow it) show who tried what in GET /v1/audit.",
            targets(
                (
                    f"sum by (action, result) (increase(linectl_audit_entries_total[{RATE}]))",
                    "{{action}} {{result}}",
                ),
                (f"increase(linectl_audit_write_failures_total[{RATE}])", "not audited"),
            ),
        ),
        series(
            "Order store",
            "Events waiting in memory because the order store cannot write (written when it "
            "can), and failed store calls per interval by operation.",
            targets(
                ("linectl_store_backlog", "events waiting"),
                (
                    f"sum by (operation) (increase(linectl_store_write_failures_total[{RATE}]))",
                    "failed {{operation}}",
                ),
            ),
        ),
        series(
            "Stock",
            "Units in the inventory by state (on_hand, reserved, available).",
            targets(("sum by (state) (linectl_stock_units)", "{{state}}")),
        ),
        series(
            "Stock movements",
            "Ledger rows written per interval by kind of event.",
            targets(
                (f"sum by (kind) (increase(linectl_stock_movements_total[{RATE}]))", "{{kind}}")
            ),
        ),
    ]
    return dashboard(
        "linectl-devices",
        "linectl / Devices and links",
        "Device links (MQTT, OPC UA), robots online, webhooks, stock.",
        stats,
        rest,
    )
