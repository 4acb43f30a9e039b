"""Fault scripts: validation with one clear line per problem, and playing them in line time."""

from __future__ import annotations

import asyncio

import pytest

from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from simulators.robots import RobotFleetSimulator
from simulators.robots.script import (
    DropConnection,
    FaultScriptError,
    SetOperatingMode,
    load_script,
    parse_script,
    play,
)

SERIALS = ["R01", "R02"]


def test_a_valid_script() -> None:
    script = parse_script(
        """
- {at: 30, robot: R02, fault: drop_connection, for: 20}
- at: 50
  robot: R01
  fault: set_operating_mode
  mode: MANUAL
""",
        "f.yaml",
        SERIALS,
    )
    assert script == [
        DropConnection(at=30, robot="R02", fault="drop_connection", duration=20),
        SetOperatingMode(at=50, robot="R01", fault="set_operating_mode", mode="MANUAL"),
    ]
    assert parse_script("", "empty.yaml", SERIALS) == []


def test_every_problem_is_reported_with_its_line() -> None:
    text = """- {at: 30, robot: R02, fault: drop_connection, for: 20}
- {at: -1, robot: R09, fault: freeze_state}
- {at: 3, robot: R01, fault: set_battery, percent: 120, colour: red}
- {at: 3, robot: R01, fault: explode}
- {at: 5, robot: R01, fault: set_operating_mode, mode: manual}
"""
    with pytest.raises(FaultScriptError) as caught:
        parse_script(text, "f.yaml", SERIALS)
    assert caught.value.problems == [
        "f.yaml:2: [1].robot: no robot 'R09' in the fleet (R01, R02)",
        "f.yaml:2: [1].at: Input should be greater than or equal to 0 (got -1)",
        "f.yaml:2: [1].for: required field is missing",
        "f.yaml:3: [2].percent: Input should be less than or equal to 100 (got 120)",
        "f.yaml:3: [2].colour: unknown field (check the spelling)",
        "f.yaml:4: [3].fault: unknown fault 'explode'; one of drop_connection, freeze_state, "
        "fatal_error, clear_error, fail_next_action, fail_action, set_battery, "
        "set_operating_mode",
        "f.yaml:5: [4].mode: Input should be 'AUTOMATIC', 'SEMIAUTOMATIC', 'MANUAL', 'SERVICE' "
        "or 'TEACHIN' (got 'manual')",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("at: 3", "f.yaml:1: the document must be a list of faults"),
        ("- [unclosed", "f.yaml:1: not valid YAML: expected ',' or ']', but got '<stream end>'"),
    ],
)
def test_documents_that_are_not_lists(text: str, problem: str) -> None:
    with pytest.raises(FaultScriptError) as caught:
        parse_script(text, "f.yaml", SERIALS)
    assert caught.value.problems == [problem]


def test_a_missing_file() -> None:
    with pytest.raises(FaultScriptError, match="cannot read the fault script"):
        load_script("/nonexistent/faults.yaml", SERIALS)


async def test_play_injects_each_fault_at_its_line_time(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    fleet = RobotFleetSimulator(reference_line, manual_clock, "mqtt://127.0.0.1:1")
    script = parse_script(
        """
- {at: 20, robot: R01, fault: set_battery, percent: 40}
- {at: 10, robot: R02, fault: drop_connection, for: 30}
- {at: 20, robot: R01, fault: fatal_error, error_type: driveFault}
""",
        "f.yaml",
        [r.serial for r in reference_line.robots.fleet],
    )
    async with asyncio.TaskGroup() as tg:
        tg.create_task(play(fleet, script, manual_clock), name="test.play")
        await asyncio.sleep(0)  # let the player take its start time
        await manual_clock.advance(9)
        assert not fleet.peers["R02"].link_cut.active
        await manual_clock.advance(1)
        assert fleet.peers["R02"].link_cut.remaining() == pytest.approx(30)
        assert fleet.robots["R01"].battery.charge == 100
        await manual_clock.advance(10)
    r01 = fleet.robots["R01"]
    assert r01.battery.charge == 40
    assert [(e.error_type, e.level) for e in r01.all_errors()] == [("driveFault", "FATAL")]
    await manual_clock.advance(20)
    assert not fleet.peers["R02"].link_cut.active
