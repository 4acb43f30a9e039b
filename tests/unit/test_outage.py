"""Outages are logged once when they start and once when they end, in JSON too."""

from __future__ import annotations

import io
import json
import logging

from devices.outage import Outage
from kernel.logs import JsonFormatter


class StepClock:
    """Line time set by the test (the outage log only reads ``now``)."""

    t = 0.0

    def now(self) -> float:
        return self.t


def json_lines(device: str, script: list[tuple[str, float]]) -> list[dict[str, object]]:
    """Run ``script`` (``("up"|"down", line time)``) and return the JSON log lines."""
    clock = StepClock()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger(f"test.outage.{device}")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    endpoint = {"endpoint": "opc.tcp://127.0.0.1:4840/"}
    outage = Outage(clock, log, device, endpoint)  # type: ignore[arg-type]
    for step, at in script:
        clock.t = at
        outage.up() if step == "up" else outage.down(f"attempt at {at}")
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_outage_with_many_retries_is_two_lines() -> None:
    script = [("up", 0.0), ("down", 10.0), ("down", 11.0), ("down", 13.0), ("up", 17.5)]
    lines = json_lines("conveyor", script)
    assert [line["msg"] for line in lines] == [
        "conveyor connected",
        "conveyor outage started",
        "conveyor outage ended",
    ]
    started, ended = lines[1], lines[2]
    assert started["outage"] == "started" and started["reason"] == "attempt at 10.0"
    assert started["level"] == "warning" and started["endpoint"] == "opc.tcp://127.0.0.1:4840/"
    assert ended["outage"] == "ended"
    assert ended["outage_seconds"] == 7.5 and ended["failed_attempts"] == 3


def test_a_link_that_never_came_up_starts_an_outage_and_reconnecting_says_connected_once() -> None:
    lines = json_lines("AS/RS", [("down", 0.0), ("down", 1.0), ("up", 2.0), ("up", 3.0)])
    assert [line["msg"] for line in lines] == ["AS/RS outage started", "AS/RS outage ended"]
    lines = json_lines("robot", [("up", 0.0), ("up", 1.0), ("down", 2.0), ("up", 3.0)])
    assert [line["msg"] for line in lines] == [
        "robot connected",
        "robot outage started",
        "robot outage ended",
    ]
