"""A controller that lost its lease sends nothing: every device adapter refuses a command before
it touches the broker or the OPC UA session once the fence is closed."""

from __future__ import annotations

from typing import Any

import pytest

from devices.errors import DeviceUnavailable
from devices.opcua.cranes.adapter import OpcUaCranes
from devices.opcua.sorter.adapter import OpcUaSorter
from devices.vda5050.master.output import MasterOutput
from devices.vda5050.master.state import MasterState
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from kernel.fence import Fence
from kernel.metrics import Metrics


class Untouchable:
    """A broker client or OPC UA session that fails the test when used at all."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a fenced controller used its device link: {name}")


def closed_fence() -> Fence:
    fence = Fence.leased()
    fence.grant(3, float("inf"))
    fence.revoke("another controller holds it now")
    return fence


async def test_no_vda5050_message_leaves_a_fenced_master(reference_line: LineConfig) -> None:
    state = MasterState.for_fleet(reference_line, ManualClock(), Metrics(), "uagv")
    state.fence = closed_fence()
    state.client = Untouchable()  # type: ignore[assignment]
    serial = reference_line.robots.fleet[0].serial
    message = state.builders[serial].instant_actions([])
    with pytest.raises(DeviceUnavailable, match="no longer holds the line's lease"):
        await MasterOutput(state).publish(serial, "instantActions", message)
    with pytest.raises(DeviceUnavailable, match="no longer holds the line's lease"):
        MasterOutput(state).post(serial, "order", {})  # refused before it is even looked at


async def test_no_divert_or_packml_command_leaves_a_fenced_sorter(
    reference_line: LineConfig,
) -> None:
    sorter = OpcUaSorter(reference_line, ManualClock(), Metrics(), fence=closed_fence())
    sorter._state.live = Untouchable()  # type: ignore[assignment]
    with pytest.raises(DeviceUnavailable, match="no longer holds"):
        await sorter.divert("T-1", "CH-DHL")
    with pytest.raises(DeviceUnavailable, match="no longer holds"):
        await sorter.command("Hold")
    with pytest.raises(DeviceUnavailable, match="no longer holds"):
        await sorter.jog("Z01", 0.2, 1.0)


async def test_no_crane_command_leaves_fenced_cranes(reference_line: LineConfig) -> None:
    cranes = OpcUaCranes(reference_line, ManualClock(), Metrics(), fence=closed_fence())
    cranes._state.live = Untouchable()  # type: ignore[assignment]
    aisle = reference_line.asrs.aisles[0].id
    with pytest.raises(DeviceUnavailable, match="no longer holds"):
        await cranes.clear_fault(aisle)
