"""Driving the conveyor's motion model in unit tests."""

from __future__ import annotations

from simulators.conveyor.motion import LoopModel


def run(model: LoopModel, until: float, step: float = 0.1) -> list[object]:
    """Step the model to line time ``until`` in steps of ``step``; every fact, in order."""
    facts: list[object] = []
    t = model.now
    while t < until - 1e-9:
        t = min(until, t + step)
        facts += model.step(t)
    return facts
