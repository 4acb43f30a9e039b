"""The robots dashboard: VDA 5050 picking robots' state, battery, utilisation, trips, traffic
control and MQTT messages, per selected robot.
"""

from __future__ import annotations

from typing import Any

from controller.robots.activity import ROBOT_STATES
from dashboards.layout import dashboard, variable
from dashboards.panels import (
    RATE,
    bargauge,
    encode,
    series,
    stat,
    target,
    targets,
    timeline,
    value_map,
)


def robots() -> dict[str, Any]:
    sel = 'robot=~"$robot"'
    busy = f'sum by (robot) (linectl_robot_state{{state=~"driving|working",{sel}}})'
    stats = [
        stat(
            "Available",
            "Robots the controller can give work to.",
            'sum(linectl_robots{availability="available"})',
            thresholds=[(None, "red"), (1, "orange"), (4, "green")],
            no_value="unknown",
        ),
        stat(
            "Unavailable",
            "Robots offline, in fault, in manual mode or with stale state.",
            'sum(linectl_robots{availability="unavailable"})',
            thresholds=[(None, "green"), (1, "red")],
            no_value="unknown",
        ),
        stat(
            "Utilisation",
            "Share of time the selected robots were busy (driving or working) in the range.",
            f"avg(avg_over_time(({busy})[$__range:]))",
            "percentunit",
            thresholds=[(None, "blue")],
            no_value="unknown",
        ),
        stat(
            "In fault or offline",
            "Robots in the fault or offline state now.",
            f'sum(linectl_robot_state{{state=~"fault|offline",{sel}}})',
            thresholds=[(None, "green"), (1, "red")],
            no_value="unknown",
        ),
        stat(
            "Lowest battery",
            "The lowest battery charge of the selected robots (none reported yet: unknown).",
            f"min(linectl_robot_battery_ratio{{{sel}}})",
            "percentunit",
            thresholds=[(None, "red"), (0.2, "orange"), (0.4, "green")],
            no_value="unknown",
        ),
        stat(
            "Waiting in traffic",
            "Robots standing at a decision point, waiting for a node another robot holds.",
            "max(linectl_traffic_waiting_robots)",
            thresholds=[(None, "green"), (2, "orange")],
            no_value="unknown",
        ),
    ]
    rest = [
        timeline(
            "Robot state",
            "What each robot did over time: idle, driving, working (on a trip, standing: "
            "picking, dropping, waiting), charging, paused, fault, offline.",
            [target(encode("linectl_robot_state", "robot", ROBOT_STATES, sel), "{{robot}}")],
            value_map(ROBOT_STATES),
        ),
        series(
            "Utilisation",
            "Share of the last 15 minutes each robot was busy (driving or working).",
            targets((f"avg_over_time(({busy})[15m:])", "{{robot}}")),
            "percentunit",
            maximum=1,
        ),
        series(
            "Battery",
            "Battery charge of each robot.",
            targets((f"linectl_robot_battery_ratio{{{sel}}}", "{{robot}}")),
            "percentunit",
            maximum=1,
        ),
        bargauge(
            "Battery now",
            "Battery charge of each robot now.",
            targets((f"linectl_robot_battery_ratio{{{sel}}}", "{{robot}}")),
            "percentunit",
            [(None, "red"), (0.2, "orange"), (0.4, "green")],
            maximum=1,
        ),
        series(
            "Fleet by state",
            "Number of robots in each state (stacked).",
            targets((f"sum by (state) (linectl_robot_state{{{sel}}})", "{{state}}")),
            stack=True,
        ),
        series(
            "Trips",
            "Robot trips sent per minute by outcome (sent, send_failed).",
            targets(
                (f"sum by (outcome) (rate(linectl_robot_trips_total[{RATE}])) * 60", "{{outcome}}")
            ),
            "opm",
        ),
        series(
            "Traffic control",
            "Per interval: routes re-planned (by reason), idle robots sent out of the way, wait "
            "cycles ended by cancelling a trip (deadlocks).",
            targets(
                (
                    f"sum by (reason) (increase(linectl_traffic_reroutes_total[{RATE}]))",
                    "reroute {{reason}}",
                ),
                (f"sum(increase(linectl_traffic_evacuations_total[{RATE}]))", "evacuations"),
                (f"sum(increase(linectl_traffic_deadlocks_total[{RATE}]))", "deadlocks"),
            ),
        ),
        series(
            "VDA 5050 messages",
            "MQTT messages per second by direction, topic and result; rejected or "
            "unknown_robot results point at a robot's software or configuration.",
            targets(
                (
                    "sum by (direction, topic, result) (rate(linectl_mqtt_messages_total"
                    f"[{RATE}]))",
                    "{{direction}} {{topic}} {{result}}",
                )
            ),
            "ops",
        ),
    ]
    return dashboard(
        "linectl-robots",
        "linectl / Robots",
        "VDA 5050 picking robots: state, battery, utilisation, traffic.",
        stats,
        rest,
        [variable("robot", "Robot", "linectl_robot_state", "robot")],
    )
