"""The effect of the predefined ``pick`` and ``drop`` actions on the loads a robot carries."""

from __future__ import annotations

from typing import Any

from devices.vda5050.messages import Load


def apply_load_action(
    loads: dict[str, Load], kind: str, params: dict[str, Any], capacity: int
) -> str | None:
    """Pick or drop per the action's parameters, changing ``loads`` in place; returns why it
    cannot be done, or None when it was done."""
    load_id = params.get("loadId")
    if kind == "pick":
        if load_id is not None and str(load_id) in loads:
            return None  # more units into a tote the robot already carries
        if len(loads) >= capacity:
            return "no free load position"
        key = str(load_id) if load_id is not None else f"load-{len(loads) + 1}"
        lhd = params.get("lhd")
        load_type = params.get("loadType")
        loads[key] = Load(
            key,
            None if load_type is None else str(load_type),
            None if lhd is None else str(lhd),
        )
        return None
    if load_id is None:
        if not loads:
            return "no load to drop"
        loads.pop(next(iter(loads)))
        return None
    if str(load_id) not in loads:
        return f"load {load_id!r} is not on the vehicle"
    del loads[str(load_id)]
    return None
