"""The line overview dashboard: conveyor PackML state and link, throughput, the order queue,
safe-state entries and jams.
"""

from __future__ import annotations

from typing import Any

from controller.service.service import PACKML_STATES
from dashboards.layout import dashboard
from dashboards.panels import (
    HELD,
    RANGE_MINUTES,
    RATE,
    encode,
    flag_map,
    series,
    stat,
    target,
    targets,
    timeline,
    value_map,
)


def line() -> dict[str, Any]:
    completed = f'linectl_orders_finished_total{{outcome="completed"}}[{RATE}]'
    stats = [
        stat(
            "Conveyor state",
            "The PackML state the conveyor reports now (Unknown while the OPC UA session is "
            "down). Execute is running; Held means the belts are held (jam, lost link, operator).",
            "max by (state) (linectl_conveyor_state) == 1",
            legend="{{state}}",
            text_mode="name",
            thresholds=[(None, "blue")],
            no_value="unknown",
        ),
        stat(
            "Conveyor link",
            "1 while the controller's OPC UA session to the conveyor PLC is up.",
            "min(linectl_opcua_connected)",
            mappings=flag_map("up", "down"),
            no_value="unknown",
        ),
        stat(
            "Orders in queue",
            "Orders not yet finished, all statuses (accepted to at the station).",
            "sum(linectl_orders)",
            thresholds=[(None, "green")],
            no_value="unknown",
        ),
        stat(
            "Completed per minute",
            "Orders completed per minute over the selected range (all types).",
            f'sum(increase(linectl_orders_finished_total{{outcome="completed"}}[$__range])) '
            f"/ ({RANGE_MINUTES})",
            "opm",
            decimals=1,
            zero=True,
        ),
        stat(
            "Robots available",
            "Robots the controller can give work to (online, automatic, no fatal error).",
            'sum(linectl_robots{availability="available"})',
            thresholds=[(None, "red"), (1, "orange"), (4, "green")],
            no_value="unknown",
        ),
        stat(
            "Low-stock SKUs",
            "SKUs whose units on hand are below their low-stock level.",
            "max(linectl_low_stock_skus)",
            thresholds=[(None, "green"), (1, "orange")],
            no_value="unknown",
        ),
        stat(
            "Operator hold",
            "Held while an operator holds the whole line (linectl line hold): conveyor held, "
            "robots paused, no order released; resume with linectl line resume. A jam or the "
            "PLC holding the belts is not an operator's hold (see PackML state, Jammed zones).",
            "max(linectl_line_held)",
            mappings=HELD,
            no_value="unknown",
        ),
    ]
    rest = [
        timeline(
            "PackML state",
            "The conveyor's PackML state over time. Red (Held) or dark red (Aborted, Unknown) "
            "stretches are when the line stood; hover for the state.",
            [target(encode("linectl_conveyor_state", "conveyor", PACKML_STATES), "{{conveyor}}")],
            value_map(PACKML_STATES),
        ),
        series(
            "Throughput",
            "Orders completed and received per minute, by type. Received above completed for "
            "long means the queue grows.",
            targets(
                (f"sum by (type) (rate({completed})) * 60", "completed {{type}}"),
                (
                    f"sum by (type) (rate(linectl_orders_received_total[{RATE}])) * 60",
                    "received {{type}}",
                ),
            ),
            "opm",
        ),
        series(
            "Queue by status",
            "Orders by status (stacked). A band that keeps growing shows the stage that holds "
            "orders back: accepted/released (robots, stock), picking, at_station (operators).",
            targets(("sum by (status) (linectl_orders)", "{{status}}")),
            stack=True,
        ),
        series(
            "Safe-state entries",
            "Times per interval the conveyor went to its safe state (belts held), by reason: "
            "comms_lost, controller_silent (PLC watchdog), jam.",
            targets(
                (
                    f"sum by (conveyor, reason) (increase(linectl_conveyor_safe_state_total"
                    f"[{RATE}]))",
                    "{{conveyor}} {{reason}}",
                )
            ),
        ),
        timeline(
            "Holds",
            "What held the line over time, each on its own row: an operator's hold "
            "(linectl line hold until linectl line resume), a jammed zone (the PLC holds the "
            "zones upstream of it), the order store unable to write (no order released).",
            targets(
                ("max(linectl_line_held)", "operator"),
                # a zone's series appears with its first jam: none yet is no jam (while the
                # controller is scraped)
                (
                    'max(linectl_conveyor_zone_jammed) or max(up{job="linectl"} == 1) * 0',
                    "jam",
                ),
                ("1 - min(linectl_store_available)", "order store"),
            ),
            HELD,
        ),
        series(
            "Jammed zones",
            "Conveyor zones that report a jam (1). The zones upstream of a jammed zone hold.",
            targets(("linectl_conveyor_zone_jammed == 1", "{{conveyor}} {{zone}}")),
        ),
        series(
            "Orders finished by outcome",
            "Orders reaching a terminal state per minute: completed, cancelled, exception.",
            targets(
                (
                    f"sum by (outcome) (rate(linectl_orders_finished_total[{RATE}])) * 60",
                    "{{outcome}}",
                )
            ),
            "opm",
            stack=True,
        ),
    ]
    return dashboard(
        "linectl-line",
        "linectl / Line overview",
        "The line at a glance: conveyor PackML state, throughput, the order queue.",
        stats,
        rest,
    )
