"""The terminal picture of the line from hand-built views: what an operator must not miss."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from controller.app.line_render import render, robot_state


def shown(view: dict[str, Any], plan: dict[str, Any] | None = None) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(render(view, plan))
    return console.export_text()


def robot(serial: str, **state: Any) -> dict[str, Any]:
    return {
        "serial": serial,
        "connection": "ONLINE",
        "operating_mode": "AUTOMATIC",
        "available": True,
        "busy": False,
        "driving": False,
        "battery": 80.0,
        "charging": False,
        "paused": False,
        "errors": [],
        "factsheet_problems": [],
        "last_node_id": "P1",
        "traffic": None,
        "carrying": [],
        **state,
    }


def zone(zone_id: str, **state: Any) -> dict[str, Any]:
    return {
        "zone_id": zone_id,
        "running": True,
        "occupied": False,
        "item_id": None,
        "tote": None,
        "order_id": None,
        "chute": None,
        "jammed": False,
        "held": False,
        **state,
    }


VIEW: dict[str, Any] = {
    "line_id": "L1",
    "conveyors": [
        {
            "conveyor_id": "C1",
            "connected": True,
            "state": "Execute",
            "available": True,
            "chutes": [
                {"chute_id": "CH-A", "full": True, "enabled": True, "count": 10},
                {"chute_id": "CH-B", "full": False, "enabled": False, "count": 0},
            ],
            "jammed_zones": ["Z03"],
            "zones": [
                zone("Z01"),
                zone("Z02", held=True, occupied=True, item_id="I7", tote="T7", order_id="O7"),
                zone("Z03", jammed=True, held=True, running=False),
                zone("Z04"),
            ],
        }
    ],
    "cranes": [
        {
            "crane": "CR1",
            "aisle": "A1",
            "connected": True,
            "state": "Fault",
            "x": 3.0,
            "y": 1.5,
            "current_command": "",
            "queue_length": 2,
            "fault": "hoist overload",
            "pd_input": ["AS-1"],
            "transports": {
                "waiting_stores": 1,
                "waiting_retrieves": 2,
                "sent": 1,
                "pending": 0,
                "check": 1,
                "fault_hold": True,
            },
        }
    ],
    "robots": [
        robot(
            "R01",
            busy=True,
            driving=True,
            battery=15.0,
            carrying=[{"order_id": f"O{i}", "tote": f"T{i}"} for i in range(1, 4)],
            traffic={
                "known": True,
                "base": ["N1", "N2", "N3", "N4"],
                "horizon": ["N5", "N6"],
                "waiting_for": {"node": "N7", "holder": "R02", "seconds": 4.2},
            },
        ),
        robot("R02", attention="stands off its last node: move it onto a node"),
        robot("R03", connection="CONNECTIONBROKEN"),
        robot("R04", paused=True, errors=["[noRoute]"]),
    ],
    "orders_queued": 1,
    "orders": {
        "by_status": {"accepted": 1, "completed": 5, "failed": 1},
        "counted_at": "2026-01-01T10:00:02Z",
        "queued": 1,
        "oldest_waiting": [
            {
                "order_id": "W1",
                "type": "b2b",
                "priority": 3,
                "due_at": "2026-01-01T16:00:00Z",
                "created_at": "2026-01-01T09:58:00+00:00",
                "destination": "CUST-[ACME]",
                "waiting_reason": "outside_delivery_window",
            }
        ],
    },
    "held": {"by": "shift-lead", "since": "2026-01-01T09:59:30Z"},
    "store_hold": "the order store cannot write: disk full",
    "controller": {
        "role": "active",
        "failover": False,
        "instance": None,
        "term": None,
        "active": None,
    },
}
PLAN = {
    "conveyor": {
        "chutes": [
            {"id": "CH-A", "kind": "carrier", "capacity": 10},
            {"id": "CH-B", "kind": "b2b", "capacity": 40},
        ]
    }
}


def test_a_line_in_trouble() -> None:
    text = shown(VIEW, PLAN)
    lines = text.splitlines()
    assert lines[0].startswith(
        "line L1  HELD by shift-lead since 09:59:30  STORE HOLD: the order store cannot write: "
        "disk full  controller active"
    )
    assert lines[1] == "conveyor C1  Execute  jams: Z03  held zones: Z02, Z03  occupied zones: 1/4"
    z02 = next(line for line in lines if line.strip().startswith("Z02"))
    assert z02.split() == ["Z02", "I7", "T7", "O7", "-", "held"]
    assert next(line for line in lines if line.strip().startswith("Z03")).split()[-3:] == [
        "JAM",
        "held",
        "stopped",
    ]
    assert "CH-A carrier 10/10 FULL" in text and "CH-B b2b 0/40 disabled" in text
    cr1 = next(line for line in lines if "CR1 (A1)" in line)
    assert cr1.split()[2:] == [
        "Fault",
        "3.0,",
        "1.5",
        "-",
        "2",
        "1",
        "1/2",
        "1",
        "hoist",
        "overload;",
        "1",
        "lost",
        "to",
        "a",
        "power",
        "loss,",
        "to",
        "check;",
        "fault",
        "hold",
    ]
    r01 = next(line for line in lines if line.strip().startswith("R01"))
    assert "driving" in r01 and "15 %" in r01
    assert "N1 > N2 > N3 (+1), 2 planned; waits for N7 (R02, 4 s)" in r01
    assert "O1, O2 (+1)" in r01
    assert "needs operator" in text and "stands off its last node" in text
    assert "connectionbroken" in text
    r04 = next(line for line in lines if line.strip().startswith("R04"))
    assert "paused" in r04 and "[noRoute]" in r04  # brackets from the API are text
    orders = next(line for line in lines if line.startswith("orders"))
    assert orders.split() == [
        "orders",
        "accepted",
        "1",
        "completed",
        "5",
        "failed",
        "1",
        "queued",
        "1",
        "(counted",
        "10:00:02)",
    ]
    w1 = next(line for line in lines if line.strip().startswith("W1"))
    assert w1.split() == [
        "W1",
        "b2b",
        "3",
        "09:58:00",
        "16:00:00",
        "CUST-[ACME]",
        "outside_delivery_window",
    ]


def test_without_the_plan_the_chutes_show_their_count() -> None:
    assert "CH-A 10 FULL" in shown(VIEW)


def test_a_standby_points_to_the_active_controller() -> None:
    active = {"instance": "ctl-a", "term": 4, "api_url": "http://10.1.0.5:8080", "live": True}
    view: dict[str, Any] = {
        "line_id": "L1",
        "conveyors": [],
        "cranes": [],
        "robots": [],
        "orders_queued": 0,
        "orders": None,
        "held": None,
        "store_hold": None,
        "controller": {
            "role": "standby",
            "failover": True,
            "instance": "ctl-b",
            "term": 4,
            "active": active,
        },
    }
    lines = shown(view).splitlines()
    assert lines[0].startswith("line L1  RUNNING  controller standby")
    assert lines[1] == (
        "ctl-b is the standby (term 4); the line is commanded by ctl-a at http://10.1.0.5:8080: "
        "linectl line status --api http://10.1.0.5:8080"
    )
    view["controller"]["active"] = None
    assert shown(view).splitlines()[1] == (
        "ctl-b is the standby (term 4); no controller holds the line's lease yet."
    )


def test_robot_states_in_one_word() -> None:
    assert robot_state(robot("R", connection="OFFLINE")) == ("offline", "bold red")
    assert robot_state(robot("R", operating_mode="MANUAL"))[0] == "manual"
    assert robot_state(robot("R", charging=True))[0] == "charging"
    assert robot_state(robot("R", busy=True))[0] == "busy"
    assert robot_state(robot("R"))[0] == "idle"
    assert robot_state(robot("R", available=False))[0] == "unavailable"
