"""The AS/RS dashboard: crane state, cycles and cycle time, open transports, crane commands,
case totes and replenishment, per selected aisle.
"""

from __future__ import annotations

from typing import Any

from dashboards.layout import dashboard, variable
from dashboards.panels import (
    RATE,
    encode,
    flag_map,
    not_standby,
    series,
    share,
    share_of_some,
    stat,
    target,
    targets,
    timeline,
    value_map,
)
from devices.opcua.cranes.state import STATES as CRANE_STATES


def asrs() -> dict[str, Any]:
    sel = 'aisle=~"$aisle"'
    stats = [
        stat(
            "AS/RS link",
            "1 while the active controller's OPC UA session to the AS/RS cranes is up.",
            f"min({not_standby('linectl_asrs_opcua_connected')})",
            mappings=flag_map("up", "down"),
            no_value="unknown",
        ),
        stat(
            "Cycles per hour",
            "Crane cycles per hour over the range (selected aisles).",
            f"sum(increase(linectl_asrs_cycles_total{{{sel}}}[$__range])) / ($__range_s / 3600)",
            decimals=0,
            zero=True,
        ),
        stat(
            "Mean cycle time",
            "Mean line seconds of a crane cycle in the range (selected aisles).",
            share_of_some(
                f"sum(increase(linectl_asrs_cycle_seconds_sum{{{sel}}}[$__range]))",
                f"sum(increase(linectl_asrs_cycle_seconds_count{{{sel}}}[$__range]))",
            ),
            "s",
            no_value="no cycles",
        ),
        stat(
            "Cranes in fault",
            "Cranes reporting the Fault state now.",
            f'sum(linectl_asrs_crane_state{{state="Fault",{sel}}})',
            thresholds=[(None, "green"), (1, "red")],
            no_value="unknown",
        ),
        stat(
            "Open transports",
            "AS/RS transports not finished (waiting, pending, sent, check).",
            f"sum(linectl_asrs_open{{{sel}}})",
            no_value="unknown",
        ),
        stat(
            "Failed commands",
            "Crane commands that failed or were rejected in the range.",
            'sum(increase(linectl_asrs_commands_total{outcome=~"failed|rejected"}[$__range]))',
            thresholds=[(None, "green"), (1, "orange")],
            decimals=0,
            zero=True,
        ),
    ]
    rest = [
        timeline(
            "Crane state",
            "Each aisle's crane over time: Idle, Moving, PickingUp, Depositing, Fault, Unknown "
            "(no OPC UA session).",
            [target(encode("linectl_asrs_crane_state", "aisle", CRANE_STATES, sel), "{{aisle}}")],
            value_map(CRANE_STATES),
        ),
        series(
            "Cycles",
            "Crane cycles per minute by aisle and kind (single_store, single_retrieve, dual).",
            targets(
                (
                    f"sum by (aisle, kind) (rate(linectl_asrs_cycles_total{{{sel}}}[{RATE}])) * 60",
                    "{{aisle}} {{kind}}",
                )
            ),
            "opm",
        ),
        series(
            "Cycle time",
            "Mean line seconds per cycle by aisle and kind; compare with `linectl asrs "
            "estimate` for the rack.",
            targets(
                (
                    share(
                        f"sum by (aisle, kind) (rate(linectl_asrs_cycle_seconds_sum{{{sel}}}"
                        f"[{RATE}]))",
                        f"sum by (aisle, kind) (rate(linectl_asrs_cycle_seconds_count{{{sel}}}"
                        f"[{RATE}]))",
                    ),
                    "{{aisle}} {{kind}}",
                )
            ),
            "s",
        ),
        series(
            "Open transports",
            "Transports not finished by aisle and state; many in check after a power loss "
            "wait for the racks' contents.",
            targets((f"sum by (aisle, state) (linectl_asrs_open{{{sel}}})", "{{aisle}} {{state}}")),
            stack=True,
        ),
        series(
            "Commands",
            "Crane commands per interval by kind and outcome.",
            targets(
                (
                    f"sum by (kind, outcome) (increase(linectl_asrs_commands_total[{RATE}]))",
                    "{{kind}} {{outcome}}",
                )
            ),
        ),
        series(
            "Case totes and replenishment",
            "Per interval: AS/RS totes for B2B case picks by stage, replenishments of robot "
            "pick locations by stage.",
            targets(
                (
                    f"sum by (stage) (increase(linectl_case_totes_total[{RATE}]))",
                    "case tote {{stage}}",
                ),
                (
                    f"sum by (stage) (increase(linectl_replenishments_total[{RATE}]))",
                    "replenishment {{stage}}",
                ),
            ),
        ),
    ]
    return dashboard(
        "linectl-asrs",
        "linectl / AS/RS",
        "AS/RS cranes: state, cycles, cycle time, transports.",
        stats,
        rest,
        [variable("aisle", "Aisle", "linectl_asrs_crane_state", "aisle")],
    )
