"""The line the conveyor contract runs on: the reference line, tuned for short cases."""

from __future__ import annotations

from controller.linefile.loader import load_reference
from kernel.config.model import LineConfig

TIME_SCALE = 100.0  # a loop of the reference line takes 18 line seconds, 0.18 wall seconds
KEEPING_CHUTE = "VAS-2"  # keeps what it gets: its count only rises during a module
SMALL_CHUTE = "CH-POST"  # capacity 1, keeps what it gets: full by count after one tote
REFUSING_CHUTE = "CH-DHL"  # forced full or disabled to refuse a divert
LEVEL_CHUTE = "CH-GLS"  # its Full and Enabled levels are toggled
PLAIN_CHUTE = "VAS-1"
USED_CHUTES = {KEEPING_CHUTE, SMALL_CHUTE, REFUSING_CHUTE, LEVEL_CHUTE, PLAIN_CHUTE}


def contract_line() -> LineConfig:
    """The reference line with two chutes that keep their totes and a watchdog that never trips
    (the adapter of one case stops writing the counter when the case ends)."""
    line = load_reference(env={})
    conveyor = line.conveyor
    missing = USED_CHUTES - {c.id for c in conveyor.sorter.chutes}
    if missing:
        raise ValueError(f"the reference line lacks chutes the contract uses: {sorted(missing)}")
    chutes = []
    for chute in conveyor.sorter.chutes:
        if chute.id == KEEPING_CHUTE:
            chute = chute.model_copy(update={"drain_seconds": 1e9})
        elif chute.id == SMALL_CHUTE:
            chute = chute.model_copy(update={"drain_seconds": 1e9, "capacity": 1})
        chutes.append(chute)
    sorter = conveyor.sorter.model_copy(update={"chutes": chutes})
    watchdog = conveyor.watchdog.model_copy(update={"timeout": 3600.0})
    conveyor = conveyor.model_copy(update={"sorter": sorter, "watchdog": watchdog})
    return line.model_copy(update={"conveyor": conveyor})
